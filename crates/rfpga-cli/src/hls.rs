//! `rfpga codegen` and `rfpga csim`: the Vitis HLS project and its C simulation with g++.

use anyhow::{bail, Context, Result};
use clap::Args;
use rfpga_hls::Options;
use rfpga_sim::Simulator;
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::fixedpoint::{export_vectors, load_test, simulate};
pub use rfpga_estimate::design::{design_part, parse_multipliers, parse_parallelism, parse_simd, parse_storage, per_layer_map, read_design, simd_map};

#[derive(Args)]
pub struct CodegenArgs {
    /// Frozen model folder (rfpga quantize --out).
    frozen: PathBuf,
    /// Project folder to write.
    #[arg(long)]
    out: PathBuf,
    /// FPGA part or board for build.tcl's set_part (a device or board gets the catalog's package
    /// and speed grade; default: the --design file's, else xc7z020clg400-1).
    #[arg(long)]
    part: Option<String>,
    /// Clock period for build.tcl and the cycle model's pipeline depths (default: the --design
    /// file's, else 10).
    #[arg(long)]
    clock_ns: Option<f64>,
    /// PE: output channels each convolution computes per cycle (and channels per word of its
    /// output stream): N for all, or LAYER=N,… for some (e.g. `4` or `conv1=2,layer3.0.conv1=8`).
    /// Convolutions whose outputs meet at a skip add need the same PE.
    #[arg(long, default_value = "1")]
    parallelism: String,
    /// SIMD: input channels each convolution consumes per cycle per PE: N for all (where N
    /// does not divide a layer's input channels, the largest divisor below N), or LAYER=N,…
    /// (dividing its input channels).
    #[arg(long, default_value = "1")]
    simd: String,
    /// Where convolution weights live: auto (Vitis decides), bram, lutram, or LAYER=KIND,….
    #[arg(long, default_value = "auto")]
    weight_storage: String,
    /// Where convolution multipliers go: auto (LUTs up to 10-bit operands, else DSPs), fabric,
    /// dsp, or LAYER=KIND,…; the generated code binds them so (BIND_OP).
    #[arg(long, default_value = "auto")]
    multipliers: String,
    /// A design file written by `rfpga fit --out` (PE, SIMD, weight storage, multipliers per
    /// layer, and stream depths and storage); overrides --parallelism, --simd, --weight-storage
    /// and --multipliers.
    /// Without stream depths in it, codegen sizes them with the dataflow model.
    #[arg(long)]
    design: Option<PathBuf>,
    /// Test images whose inputs and expected logits (from the simulator) go into PROJECT/vectors.
    #[arg(long = "images", alias = "vectors", default_value_t = 100)]
    vectors: usize,
    /// Folder with the CIFAR-10 binary release (also read from RFPGA_DATA; a relative default
    /// missing here is looked up in the rfpga checkout).
    #[arg(long, env = "RFPGA_DATA", hide_env_values = true, default_value = rfpga_data::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

pub fn codegen(a: CodegenArgs) -> Result<()> {
    let (default_parallelism, mut parallelism) = parse_parallelism(&a.parallelism)?;
    let (default_simd, simd) = parse_simd(&a.simd)?;
    let (default_storage, storage) = parse_storage(&a.weight_storage)?;
    let (default_mult, multipliers) = parse_multipliers(&a.multipliers)?;
    let model = rfpga_core::frozen::FrozenModel::load(&a.frozen)?;
    let mut storage = per_layer_map(&model, default_storage, storage);
    let mut multipliers = per_layer_map(&model, default_mult, multipliers);
    let mut part = rfpga_estimate::parts::synthesis_part(a.part.as_deref().unwrap_or("xc7z020"))?;
    let mut simd = simd_map(&model, default_simd, simd);
    let (mut fifo_depths, mut fifo_storage) = (BTreeMap::new(), BTreeMap::new());
    let mut design_clock = None;
    if let Some(d) = &a.design {
        let design = read_design(d)?;
        design_clock = design.clock_ns;
        part = design_part(&design, a.part.as_deref(), d)?;
        (parallelism, simd, storage, multipliers, fifo_depths, fifo_storage) = (design.parallelism, design.simd, design.storage, design.multipliers, design.fifo_depths, design.fifo_storage);
    }
    let clock_ns = a.clock_ns.or(design_clock).unwrap_or(10.0);
    if !(clock_ns > 0.0) {
        bail!("--clock-ns: expected a positive period, found {clock_ns}");
    }
    let sized = fifo_depths.is_empty();
    let opts = Options { part, clock_ns, parallelism, default_parallelism, simd, storage, multipliers, fifo_depths, fifo_storage };
    let design = rfpga_hls::generate(&a.frozen, &a.out, &opts).with_context(|| format!("generating {}", a.out.display()))?;
    let deep: Vec<usize> = design.streams.iter().filter(|s| s.is_fifo() && s.depth > 2).map(|s| s.depth).collect();
    println!(
        "Wrote the Vitis HLS project {} (vitis_hls -f build.tcl); stream depths {}: {} of {} deeper than 2, the deepest {} (rfpga.json lists them)",
        a.out.display(),
        if sized { "sized by the dataflow model" } else { "from the design file" },
        deep.len(),
        design.streams.iter().filter(|s| s.is_fifo()).count(),
        deep.iter().max().unwrap_or(&2)
    );
    if a.vectors > 0 {
        let sim = Simulator::load(&a.frozen)?;
        let ds = load_test(&a.data_dir, Some(a.vectors))?;
        let (ev, _) = simulate(&sim, &ds);
        let dir = a.out.join("vectors");
        export_vectors(&sim, &ds, &ev, &dir)?;
        println!("Wrote {} test vectors to {} (simulated top-1 {:.2}%)", ev.labels.len(), dir.display(), ev.accuracy());
    }
    Ok(())
}

#[derive(Args)]
pub struct CsimArgs {
    /// Project folder (rfpga codegen --out).
    project: PathBuf,
    /// Folder of test vectors (default: PROJECT/vectors, written by codegen).
    #[arg(long = "vectors-dir", alias = "vectors")]
    vectors: Option<PathBuf>,
    /// Simulate the first N images only (default: every vector).
    #[arg(long = "images", alias = "limit")]
    limit: Option<usize>,
    /// The ap_types headers (`make setup-ap-types`; also read from RFPGA_AP_TYPES; a relative
    /// default missing here is looked up in the rfpga checkout).
    #[arg(long, env = "RFPGA_AP_TYPES", hide_env_values = true, default_value = "third_party/ap_types")]
    ap_types: PathBuf,
    /// Run each dataflow process in its own thread, each stream blocking at its generated depth
    /// (Vitis's C simulation runs them one after another and cannot see a deadlock); a deadlock
    /// is reported with the processes and the streams they wait on.
    #[arg(long = "threaded", alias = "threads")]
    threads: bool,
    /// Images per AXI-stream transfer (TLAST on the last word of each, and checked on the last
    /// logit of each); default: all in one transfer, as a DMA sends a batch.
    #[arg(long)]
    batch: Option<usize>,
    /// Send the first transfer's last image cut to this many words (an aborted transfer): its
    /// logits must be the partial-image marker and every later image exact.
    #[arg(long, value_name = "WORDS")]
    truncate: Option<usize>,
}

pub fn csim(a: CsimArgs) -> Result<()> {
    let vectors = a.vectors.unwrap_or_else(|| a.project.join("vectors"));
    let framing = rfpga_hls::Framing { batch: a.batch, truncate: a.truncate };
    let r = rfpga_hls::csim_framed(&a.project, &vectors, &rfpga_core::io::in_checkout(&a.ap_types), a.limit, a.threads, framing, &BTreeMap::new())?;
    print!("{}", r.output);
    if r.failed > 0 {
        bail!("C simulation of {} differs from the simulator on {} of {} images", a.project.display(), r.failed, r.passed + r.failed);
    }
    Ok(())
}

#[derive(Args)]
pub struct BoardArgs {
    /// Project folder (rfpga codegen --out), generated for the board's part.
    project: PathBuf,
    /// The board: pynq-z2 (Zynq-7000), zcu104 or kv260 (Zynq UltraScale+).
    #[arg(long, default_value = "pynq-z2")]
    board: String,
    /// Package folder to write.
    #[arg(long)]
    out: PathBuf,
    /// Images per DMA transfer (sizes the DMA's buffer-length register; the driver's largest batch).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Test images whose simulated logits go into the package, for validate.py to compare with.
    #[arg(long, default_value_t = 10_000)]
    images: usize,
    /// Folder with the CIFAR-10 binary release (also read from RFPGA_DATA; a relative default
    /// missing here is looked up in the rfpga checkout).
    #[arg(long, env = "RFPGA_DATA", hide_env_values = true, default_value = rfpga_data::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

pub fn board(a: BoardArgs) -> Result<()> {
    let board = rfpga_hls::board::board(&a.board)?;
    let info = rfpga_hls::project_info(&a.project)?;
    let sim = Simulator::load(&info.frozen)?;
    let ds = load_test(&a.data_dir, Some(a.images))?;
    let (ev, _) = simulate(&sim, &ds);
    let expected = rfpga_hls::board::Expected { logits: &ev.logits, labels: &ev.labels };
    rfpga_hls::board::write_package(&a.project, board, &a.out, a.batch, rfpga_data::normalization(), &expected)
        .with_context(|| format!("writing the board package {}", a.out.display()))?;
    println!(
        "Wrote the {} package {} (./build.sh makes rfpga.bit and rfpga.hwh; validate.py runs it), with the simulator's logits of {} test images (top-1 {:.2}%)",
        board.name,
        a.out.display(),
        ev.logits.len(),
        ev.accuracy()
    );
    Ok(())
}
