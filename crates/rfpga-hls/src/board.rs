//! The board package of a generated project (`rfpga board`): what takes the HLS IP to a running
//! board — the Vivado block design (the processing system, an AXI DMA in simple mode, the core,
//! a reset the driver can pull), one script from Vitis HLS export to the bitstream and hardware
//! handoff, a PYNQ driver that packs images exactly as the core reads them, and a validation
//! script. The stream layout the driver follows is written once, in `rfpga_board.json`, from the
//! same design the code generator rendered.

use anyhow::{bail, ensure, Context, Result};
use askama::Template;
use rfpga_core::fixed::FixedFormat;
use rfpga_core::frozen::FrozenModel;
use rfpga_core::io::write_atomic;
use std::path::Path;

use crate::hw;

/// A board the package can target: its part and the Vivado pieces that differ between boards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Board {
    pub name: &'static str,
    /// The part of its FPGA (package and speed grade), what codegen's `--part` must have been.
    pub part: &'static str,
    /// The board-file name Vivado knows it by (its preset configures the PS).
    pub board_part: &'static str,
    /// The fabric clock the PS gives the core, MHz.
    pub fclk_mhz: u32,
    /// Zynq UltraScale+ (zynq_ultra_ps_e) rather than Zynq-7000 (processing_system7).
    pub mpsoc: bool,
}

impl Board {
    /// The PS's block-design cell, fabric clock and reset pins, register master and memory slave.
    pub fn ps(&self) -> [&'static str; 5] {
        if self.mpsoc {
            ["ps", "pl_clk0", "pl_resetn0", "M_AXI_HPM0_FPD", "S_AXI_HP0_FPD"]
        } else {
            ["ps7", "FCLK_CLK0", "FCLK_RESET0_N", "M_AXI_GP0", "S_AXI_HP0"]
        }
    }
    /// The DMA's address width: 64 on Zynq UltraScale+, whose DDR reaches above 4 GB (PYNQ 3.1
    /// hands out buffers there), 32 on Zynq-7000.
    pub fn dma_address_bits(&self) -> u32 {
        if self.mpsoc {
            64
        } else {
            32
        }
    }
}

/// The boards with a package: the Pynq-Z2 (Zynq-7000), the ZCU104 and the KV260 (Zynq
/// UltraScale+); board parts as hls4ml's and FINN's flows name them.
pub const BOARDS: &[Board] = &[
    Board { name: "pynq-z2", part: "xc7z020clg400-1", board_part: "tul.com.tw:pynq-z2:part0:1.0", fclk_mhz: 100, mpsoc: false },
    Board { name: "zcu104", part: "xczu7ev-ffvc1156-2-e", board_part: "xilinx.com:zcu104:part0:1.1", fclk_mhz: 100, mpsoc: true },
    Board { name: "kv260", part: "xck26-sfvc784-2LV-c", board_part: "xilinx.com:kv260_som:part0:1.3", fclk_mhz: 100, mpsoc: true },
];

pub fn board(name: &str) -> Result<&'static Board> {
    BOARDS
        .iter()
        .find(|b| b.name == name)
        .with_context(|| format!("--board {name}: expected one of {}", BOARDS.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")))
}

/// PG021: the DMA's buffer length register is 8 to 26 bits wide (at most 2^26 − 1 bytes a transfer).
pub const DMA_LENGTH_BITS: (u32, u32) = (8, 26);

/// The smallest buffer-length register that holds `bytes`, within PG021's range; None above it.
pub fn length_bits(bytes: u64) -> Option<u32> {
    let bits = (64 - bytes.leading_zeros()).max(DMA_LENGTH_BITS.0);
    (bits <= DMA_LENGTH_BITS.1).then_some(bits)
}

/// The expected results the validation script compares the board with: the simulator's raw
/// logits of the first test images, and their labels.
pub struct Expected<'a> {
    pub logits: &'a [Vec<i64>],
    pub labels: &'a [u8],
}

#[derive(Template)]
#[template(path = "board/block_design.tcl", escape = "none")]
struct BlockDesignTcl<'a> {
    board: &'a Board,
    ps: &'a str,
    clk: &'a str,
    rst: &'a str,
    reg_master: &'a str,
    mem_slave: &'a str,
    addr_bits: u32,
    top: &'a str,
    in_port: &'a str,
    out_port: &'a str,
    in_word: u32,
    out_word: u32,
    mm2s_width: u32,
    s2mm_width: u32,
    length_bits: u32,
}

#[derive(Template)]
#[template(path = "board/build.sh", escape = "none")]
struct BuildSh<'a> {
    board: &'a Board,
}

#[derive(Template)]
#[template(path = "board/README.md", escape = "none")]
struct Readme<'a> {
    board: &'a Board,
    reg_master: &'a str,
    mem_slave: &'a str,
    project: &'a str,
    model: &'a str,
    batch: usize,
    images: usize,
    in_word: u32,
    out_word: u32,
    pixels: usize,
    classes: usize,
    in_format: String,
    out_format: String,
}

const DRIVER_PY: &str = include_str!("../../../templates/board/rfpga_driver.py");
const VALIDATE_PY: &str = include_str!("../../../templates/board/validate.py");

/// The format and version of `rfpga_board.json`.
pub const BOARD_FORMAT: &str = "rfpga-board";
pub const BOARD_VERSION: u64 = 1;

fn format_json(f: &FixedFormat) -> serde_json::Value {
    serde_json::json!({
        "text": f.to_string(), "signed": f.signed, "width": f.width, "frac": f.frac(),
        "rounding": format!("{:?}", f.rounding), "overflow": format!("{:?}", f.overflow),
    })
}

/// Writes the board package for `project` into `out` (a folder this command creates or made
/// before). `batch`: images per DMA transfer, which sizes the DMA's buffer-length register.
/// `normalization`: the f32 scale and offset per channel (`rfpga_data::normalization`).
pub fn write_package(project: &Path, board: &Board, out: &Path, batch: usize, normalization: ([f32; 3], [f32; 3]), expected: &Expected) -> Result<()> {
    let info = crate::project_info(project)?;
    if info.part != board.part {
        bail!(
            "{}: generated for part {}, but the {} carries {}; run `rfpga codegen FROZEN --part {} …` again",
            project.join("rfpga.json").display(),
            info.part,
            board.name,
            board.part,
            board.name
        );
    }
    ensure!(batch >= 1, "--batch: expected at least 1 image per transfer");
    let fabric_ns = 1000.0 / board.fclk_mhz as f64;
    if info.clock_ns > fabric_ns + 1e-9 {
        bail!(
            "{}: generated for a {} ns clock, but the {} block design clocks the core at {} MHz ({fabric_ns} ns); run `rfpga codegen … --clock-ns {fabric_ns}` (or shorter) again",
            project.join("rfpga.json").display(),
            info.clock_ns,
            board.name,
            board.fclk_mhz
        );
    }
    ensure!(expected.logits.len() == expected.labels.len(), "expected logits and labels differ in count");
    let model = FrozenModel::load(&info.frozen)?;
    let a = model.analyze(&info.frozen.display().to_string())?;
    // The design as codegen built it (its depths do not matter here: only the ports).
    let opts = crate::Options {
        part: info.part.clone(),
        clock_ns: info.clock_ns,
        parallelism: info.parallelism.clone(),
        simd: info.simd.clone(),
        fifo_depths: info.fifo_depths.clone(),
        ..Default::default()
    };
    let design = hw::Design::build(&model, &a, &opts, hw::DspKind::Dsp48E1, &info.frozen.display().to_string())?;
    let (in_bytes, out_bytes) = (design.in_word as u64 / 8, design.out_word as u64 / 8);
    let image_in = design.in_pixels as u64 * in_bytes;
    let image_out = design.classes as u64 * out_bytes;
    let image = image_in.max(image_out);
    let Some(length_bits) = length_bits(batch as u64 * image) else {
        bail!(
            "--batch {batch}: {} bytes in one transfer, beyond the AXI DMA's 26-bit buffer length (PG021); at most {} images of {image} bytes",
            batch as u64 * image,
            ((1u64 << DMA_LENGTH_BITS.1) - 1) / image
        );
    };
    rfpga_core::io::claim_output_dir(out, "board", &["rfpga_board.json"])?;
    let in_format = a.ports[0].format;
    let out_format = a.ports[a.ports.len() - 1].format;
    let bits = |v: [f32; 3]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    let meta = serde_json::json!({
        "format": BOARD_FORMAT, "version": BOARD_VERSION,
        "board": board.name, "part": board.part, "clock_mhz": board.fclk_mhz,
        "project": std::fs::canonicalize(project).unwrap_or(project.to_path_buf()).display().to_string(),
        "top": "rfpga_top", "dma": "dma", "reset_gpio": "core_reset",
        "batch": batch, "buffer_length_bits": length_bits,
        "input": {
            "height": a.ports[0].shape[0], "width": a.ports[0].shape[1], "channels": a.ports[0].shape[2],
            "word_bits": design.in_word, "format": format_json(&in_format),
            "scale_f32_bits": bits(normalization.0), "offset_f32_bits": bits(normalization.1),
        },
        "output": {
            "classes": design.classes, "word_bits": design.out_word, "format": format_json(&out_format),
        },
        "expected": { "images": expected.logits.len(), "logits": "expected/logits.txt", "labels": "expected/labels.txt" },
    });
    let [ps, clk, rst, reg_master, mem_slave] = board.ps();
    let tcl = BlockDesignTcl {
        board,
        ps,
        clk,
        rst,
        reg_master,
        mem_slave,
        addr_bits: board.dma_address_bits(),
        top: "rfpga_top",
        in_port: "in_words",
        out_port: "out_words",
        in_word: design.in_word,
        out_word: design.out_word,
        // The memory side at least as wide as the stream (PG021), and at least 32 bits.
        mm2s_width: design.in_word.max(32),
        s2mm_width: design.out_word.max(32),
        length_bits,
    };
    let readme = Readme {
        board,
        reg_master,
        mem_slave,
        project: &project.display().to_string(),
        model: &model.model.name(),
        batch,
        images: expected.logits.len(),
        in_word: design.in_word,
        out_word: design.out_word,
        pixels: design.in_pixels,
        classes: design.classes,
        in_format: in_format.to_string(),
        out_format: out_format.to_string(),
    };
    let lines = |rows: &mut dyn Iterator<Item = String>| rows.map(|r| r + "\n").collect::<String>();
    let files: Vec<(&str, String)> = vec![
        ("block_design.tcl", tcl.render()?),
        ("build.sh", BuildSh { board }.render()?),
        ("rfpga_driver.py", DRIVER_PY.to_string()),
        ("validate.py", VALIDATE_PY.to_string()),
        ("README.md", readme.render()?),
        ("expected/logits.txt", lines(&mut expected.logits.iter().map(|r| r.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")))),
        ("expected/labels.txt", lines(&mut expected.labels.iter().map(u8::to_string))),
    ];
    std::fs::create_dir_all(out.join("expected")).with_context(|| format!("creating {}", out.join("expected").display()))?;
    for (name, text) in files {
        write_atomic(&out.join(name), text.as_bytes())?;
    }
    // The HLS sources travel with the package, so it builds on another machine.
    for dir in ["firmware", "tb"] {
        let (src, dst) = (project.join(dir), out.join("hls").join(dir));
        std::fs::create_dir_all(&dst).with_context(|| format!("creating {}", dst.display()))?;
        for entry in std::fs::read_dir(&src).with_context(|| format!("reading {}", src.display()))? {
            let path = entry?.path();
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            write_atomic(&dst.join(path.file_name().expect("a file")), &bytes)?;
        }
    }
    let build_tcl = std::fs::read(project.join("build.tcl")).with_context(|| format!("reading {}", project.join("build.tcl").display()))?;
    write_atomic(&out.join("hls/build.tcl"), &build_tcl)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(out.join("build.sh"), std::fs::Permissions::from_mode(0o755)).context("making build.sh executable")?;
    }
    // Last: its presence marks a complete package.
    write_atomic(&out.join("rfpga_board.json"), (serde_json::to_string_pretty(&meta)? + "\n").as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_length_register_by_hand() {
        // 16 KB = 2^14 needs 15 bits; 2^14 − 1 bytes fit in 14; PG021's floor is 8 bits.
        assert_eq!(length_bits(16384), Some(15));
        assert_eq!(length_bits(16383), Some(14));
        assert_eq!(length_bits(10), Some(8));
        // 1000 images of 1024 words of 8 bytes: 8,192,000 bytes < 2^23.
        assert_eq!(length_bits(1000 * 8192), Some(23));
        assert_eq!(length_bits((1 << 26) - 1), Some(26));
        assert_eq!(length_bits(1 << 26), None);
        assert!(board("zcu102").unwrap_err().to_string().contains("expected one of pynq-z2, zcu104, kv260"));
    }
}
