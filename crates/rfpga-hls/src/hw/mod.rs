//! The generated hardware, described once. [`Design::build`] turns a frozen model and the
//! design choices into processes (one per layer, plus the skip splits and the two AXI-stream
//! ports) and the streams between them. Each layer kind's module (`conv.rs`, `add.rs`, …) says
//! what its hardware is: the C++ call the code generator emits, its schedule (the order in
//! which it reads and writes its streams and the cycles in between, per image) and its
//! resources. The code generator renders this description, the estimate sums it, and the
//! dataflow simulation (`crate::dataflow`) runs it — so the three cannot drift apart.

pub mod add;
pub mod axis;
pub mod conv;
pub mod dense;
pub mod fifo;
pub mod pad;
pub mod pool;
pub mod resources;
pub mod split;

use anyhow::{bail, ensure, Result};
use rfpga_core::fixed::FixedFormat;
use rfpga_core::frozen::{Analysis, FrozenModel, Layer};
use std::collections::BTreeMap;

pub use resources::{DspKind, Resources};

use crate::{ident, raw_ctype, ConvCfg, DenseCfg, Multipliers, Options, TypeDef};
pub use resources::FifoImpl;

/// One step of a process's schedule. Reads and writes take no time of their own (they happen
/// in the cycle the process has reached); `Wait` advances it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Read the next element of input `i`; stalls while the stream is empty.
    Read(u8),
    /// Write an element to output `i`; stalls while the stream is full.
    Write(u8),
    Wait(u32),
}

/// Cycles a pipelined II = 1 loop takes to drain after its last iteration (an assumption).
pub const PIPELINE_DRAIN: u32 = 3;

/// The schedule of a loop pipelined at II = 1 over `n` iterations: each reads the inputs
/// `reads`, writes the outputs `writes(i)`, and takes a cycle; then the pipeline drains.
pub fn pixel_loop(n: usize, reads: &[u8], writes: impl Fn(usize) -> Vec<u8>) -> Vec<Op> {
    let mut ops = Vec::with_capacity(n * (reads.len() + 2) + 1);
    for i in 0..n {
        ops.extend(reads.iter().map(|&r| Op::Read(r)));
        ops.extend(writes(i).into_iter().map(Op::Write));
        ops.push(Op::Wait(1));
    }
    ops.push(Op::Wait(PIPELINE_DRAIN));
    ops
}

/// A dataflow process: a layer, a skip split or an AXI-stream port.
#[derive(Debug, Clone)]
pub struct Process {
    /// The layer's name; `PORT.split` for a split; `axis_in`, `axis_out`.
    pub name: String,
    pub kind: &'static str,
    /// The C++ call in the generated top function.
    pub call: String,
    /// Streams read and written, by the index `Op::Read`/`Op::Write` use.
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    /// One image's schedule.
    pub ops: Vec<Op>,
    pub resources: Resources,
    pub detail: String,
}

impl Process {
    /// Cycles per image when it never waits for a stream.
    pub fn cycles(&self) -> u64 {
        self.ops.iter().map(|op| if let Op::Wait(n) = op { *n as u64 } else { 0 }).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The top function's AXI-stream input (fed by a DMA) and output: not FIFOs of the design.
    Input,
    Output,
    /// A stream between two processes.
    Stream,
    /// A stream into an add that holds the skip branch while the other branch computes.
    Skip,
}

#[derive(Debug, Clone)]
pub struct Stream {
    pub name: String,
    /// The C++ element type.
    pub ty: String,
    /// Bits per element.
    pub bits: u64,
    pub depth: usize,
    pub role: Role,
    /// Elements per image.
    pub elements: usize,
    pub writer: Option<usize>,
    pub reader: Option<usize>,
    /// Storage asked for (`--fifo-storage`, a design file's `fifo_storage`); else the default
    /// rule of [`resources::FifoImpl::of`] at the stream's depth.
    pub storage: Option<resources::FifoImpl>,
}

impl Stream {
    pub fn is_fifo(&self) -> bool {
        matches!(self.role, Role::Stream | Role::Skip)
    }
    /// What the FIFO is built from: as asked, else by depth and width.
    pub fn imp(&self) -> resources::FifoImpl {
        self.storage.unwrap_or_else(|| resources::FifoImpl::of(self.depth as u64, self.bits))
    }
    /// The BIND_STORAGE `impl` codegen gives this FIFO: what its resources count.
    pub fn storage_impl(&self) -> &'static str {
        self.imp().pragma()
    }
    pub fn resources(&self) -> Resources {
        if self.is_fifo() {
            fifo::resources(self.depth as u64, self.bits, self.imp())
        } else {
            Resources::default()
        }
    }
}

/// The whole design, what codegen, estimate and the dataflow simulation read.
#[derive(Debug, Clone)]
pub struct Design {
    pub processes: Vec<Process>,
    pub streams: Vec<Stream>,
    pub types: Vec<TypeDef>,
    pub convs: Vec<ConvCfg>,
    pub denses: Vec<DenseCfg>,
    /// AXI-stream word widths, the input's element width, pixels, channels, and classes.
    pub in_word: u32,
    pub out_word: u32,
    pub in_t: String,
    pub out_t: String,
    pub out_signed: bool,
    pub in_pixels: usize,
    pub in_channels: usize,
    pub classes: usize,
    /// Every convolution's PE (output channels per cycle, and channels per output word).
    pub lanes: BTreeMap<String, usize>,
    /// Every convolution's SIMD (input channels per cycle).
    pub simd: BTreeMap<String, usize>,
}

impl Design {
    /// The design `rfpga codegen` generates for `model` with `opts`; `source` names the model
    /// in errors, `dsp` is the part's DSP slice (for resources only).
    pub fn build(model: &FrozenModel, a: &Analysis, opts: &Options, dsp: DspKind, source: &str) -> Result<Design> {
        for (option, names) in [
            ("--parallelism", opts.parallelism.keys().collect::<Vec<_>>()),
            ("--simd", opts.simd.keys().collect()),
            ("--weight-storage", opts.storage.keys().collect()),
            ("--multipliers", opts.multipliers.keys().collect()),
        ] {
            for name in names {
                if model.layers.iter().any(|l| matches!(l, Layer::Add(x) if &x.name == name)) {
                    bail!("{option}: `{name}` is an add; an add takes its inputs' channels per word (the PE of the convolution feeding it), so it has no parallelism of its own");
                }
                if !model.layers.iter().any(|l| matches!(l, Layer::Conv(c) if &c.name == name)) {
                    bail!("{option}: `{name}` is not a convolution of {source}");
                }
            }
        }
        ensure!(opts.default_parallelism >= 1, "--parallelism: expected ≥ 1");
        refuse_unsupported(model, a, source)?;

        // Port 0 is the input, port i+1 layer i's output.
        let port_id = |p: usize| if p == 0 { "input".to_string() } else { ident(model.layers[p - 1].name()) };
        let mut types = Vec::new();
        let mut ty = |name: String, f: &FixedFormat| {
            types.push(TypeDef { name: name.clone(), cpp: f.to_string() });
            name
        };
        let port_t: Vec<String> = a.ports.iter().enumerate().map(|(p, port)| ty(format!("{}_t", port_id(p)), &port.format)).collect();
        // Each port's channels per stream word (what its producer makes per cycle).
        let width = port_widths(model, a, opts, source)?;
        let word = |p: usize| format!("rfpga::pixel<{}, {}>", port_t[p], width[p]);
        let word_bits = |p: usize| (width[p] as u32 * a.ports[p].format.width) as u64;
        let pixels = |p: usize| a.ports[p].shape[0] * a.ports[p].shape[1];
        let words = |p: usize| pixels(p) * a.ports[p].shape[2] / width[p];
        let last = a.ports.len() - 1;

        let mut streams: Vec<Stream> = Vec::new();
        let mut processes: Vec<Process> = Vec::new();
        let new_stream = |streams: &mut Vec<Stream>, name: String, ty: String, bits: u64, role: Role, elements: usize| {
            streams.push(Stream { name, ty, bits, depth: 2, role, elements, writer: None, reader: None, storage: None });
            streams.len() - 1
        };

        // The AXI-stream ports: words packing a pixel (in) or one logit (out).
        let [ih, iw, ic] = a.ports[0].shape;
        let in_word = axis::word_bits(ic as u32 * a.ports[0].format.width);
        let classes = a.ports[last].shape[2];
        let out_format = a.ports[last].format;
        let out_word = axis::output_word_bits(out_format.width);
        let s_in = new_stream(&mut streams, "in_words".into(), "input_word_t".into(), in_word as u64, Role::Input, ih * iw);
        let s_out = new_stream(&mut streams, "out_words".into(), "output_word_t".into(), out_word as u64, Role::Output, classes);
        let s_frames = new_stream(&mut streams, axis::FRAMES.into(), axis::FRAME_TYPE.into(), axis::FRAME_BITS, Role::Stream, 1);

        // Each port's stream, and the streams its readers read (a split when there are two).
        let readers = crate::readers(a);
        let mut port_stream = vec![usize::MAX; a.ports.len()];
        let mut read_from: BTreeMap<(usize, usize), usize> = BTreeMap::new(); // (layer, port) → stream
        let mut splits: Vec<Option<Process>> = vec![None; a.ports.len()];
        for (p, rs) in readers.iter().enumerate() {
            let name = format!("s_{}", port_id(p));
            let s = new_stream(&mut streams, name.clone(), word(p), word_bits(p), Role::Stream, words(p));
            port_stream[p] = s;
            match (rs.len(), p == last) {
                (0, true) => {}
                (0, false) => bail!("{source}: the output of `{}` is never used", port_id(p)),
                (1, false) => {
                    read_from.insert((rs[0], p), s);
                }
                (2, false) => {
                    let (sa, sb) = (format!("{name}_a"), format!("{name}_b"));
                    let call = format!("rfpga::split<{}, {}>({name}, {sa}, {sb})", word(p), words(p));
                    let mut proc_ = split::process(&port_id(p), words(p), call);
                    let ia = new_stream(&mut streams, sa, word(p), word_bits(p), Role::Stream, words(p));
                    let ib = new_stream(&mut streams, sb, word(p), word_bits(p), Role::Stream, words(p));
                    read_from.insert((rs[0], p), ia);
                    read_from.insert((rs[1], p), ib);
                    proc_.inputs = vec![s];
                    proc_.outputs = vec![ia, ib];
                    splits[p] = Some(proc_);
                }
                (n, _) => bail!("{source}: `{}` feeds {n} layers{}; at most 2 are supported", port_id(p), if p == last { " and is the output" } else { "" }),
            }
        }

        let mut axis_in = axis::input(
            ih * iw,
            in_word,
            format!("rfpga::axis_to_pixels<{}, {ic}, {}, {in_word}>(in_words, {}, {})", ih * iw, port_t[0], streams[port_stream[0]].name, axis::FRAMES),
        );
        axis_in.inputs = vec![s_in];
        axis_in.outputs = vec![port_stream[0], s_frames];
        processes.push(axis_in);
        if let Some(s) = splits[0].take() {
            processes.push(s);
        }

        let mut convs = Vec::new();
        let mut denses = Vec::new();
        let mut lanes_by_layer = BTreeMap::new();
        let mut simd_by_layer = BTreeMap::new();
        for (i, layer) in model.layers.iter().enumerate() {
            let id = ident(layer.name());
            let p_out = i + 1;
            let ins = &a.inputs[i];
            let in_streams: Vec<usize> = ins.iter().map(|&q| read_from[&(i, q)]).collect();
            let input = |k: usize| streams[in_streams[k]].name.clone();
            let output = streams[port_stream[p_out]].name.clone();
            let in_port = &a.ports[ins[0]];
            // An add's skip FIFO: the input that arrives first, and its depth (in words).
            let skip = if let Layer::Add(_) = layer {
                crate::skip_fifo(model, a, &readers, ins).map(|(q, d)| (q, d * a.ports[q].shape[2] / width[q]))
            } else {
                None
            };
            let mut process = match layer {
                Layer::Conv(c) => {
                    ty(format!("{id}_weight_t"), &c.weight);
                    ty(format!("{id}_bias_t"), &c.bias);
                    ty(format!("{id}_accum_t"), &c.accum);
                    let product = in_port.format.try_product(&c.weight).map_err(|e| anyhow::anyhow!("{source}: `{}`: the product type: {e}", c.name))?;
                    ty(format!("{id}_product_t"), &product);
                    let [h, w, cin] = in_port.shape;
                    let [oh, ow, _] = a.ports[p_out].shape;
                    let pe = width[p_out];
                    let simd = opts.simd_of(&c.name);
                    ensure!(simd >= 1 && cin % simd == 0, "--simd {simd} for `{}`: must divide its {cin} input channels", c.name);
                    ensure!(
                        simd == 1 || conv::simd_ok(&c.accum, &in_port.format, &c.weight),
                        "--simd {simd} for `{}`: its accumulator {} rounds or saturates every addition, so SIMD products cannot be added as a tree in one cycle; SIMD > 1 needs an accumulator that wraps and keeps the products' fraction bits (--accum auto)",
                        c.name,
                        c.accum
                    );
                    let in_g = width[ins[0]];
                    let banks = conv::banks(simd, in_g);
                    ensure!(
                        banks % simd.min(in_g) == 0,
                        "--simd {simd} for `{}`: its input arrives {in_g} channels per word; the line buffer needs one of the two to divide the other",
                        c.name
                    );
                    let storage = opts.storage.get(&c.name).copied().unwrap_or(crate::Storage::Auto);
                    let taps = c.kernel * c.kernel * cin;
                    let cfg = ConvCfg {
                        id: id.clone(),
                        h,
                        w,
                        cin,
                        cout: c.out_ch,
                        k: c.kernel,
                        stride: c.stride,
                        pad: c.kernel / 2,
                        oh,
                        ow,
                        relu: c.relu,
                        pe,
                        simd,
                        in_g,
                        banks,
                        groups: c.out_ch / pe,
                        steps: taps / simd,
                        storage,
                        mul_in_dsp: opts.multipliers.get(&c.name).copied().unwrap_or(Multipliers::Auto).in_dsp(in_port.format.width, c.weight.width),
                        in_t: port_t[ins[0]].clone(),
                        w_raw: raw_ctype(&c.weight),
                        b_raw: raw_ctype(&c.bias),
                    };
                    let process = conv::process(c, &cfg, in_port, storage, dsp, opts.clock_ns, (&input(0), &output));
                    lanes_by_layer.insert(c.name.clone(), pe);
                    simd_by_layer.insert(c.name.clone(), simd);
                    convs.push(cfg);
                    process
                }
                Layer::Add(l) => {
                    let sum = ty(format!("{id}_sum_t"), &l.sum);
                    let g = width[p_out];
                    let call = format!(
                        "rfpga::add<{}, {g}, {}, {}, {}, {sum}, {}>({}, {}, {output})",
                        words(p_out),
                        l.relu,
                        port_t[ins[0]],
                        port_t[ins[1]],
                        port_t[p_out],
                        input(0),
                        input(1)
                    );
                    let skip_input = skip.map(|(q, _)| if q == ins[0] { 0 } else { 1 });
                    add::process(l, in_port, &a.ports[ins[1]], g, skip_input, call)
                }
                Layer::PadShortcut(l) => {
                    let [h, w, c] = in_port.shape;
                    let (gi, go) = (width[ins[0]], width[p_out]);
                    let call = format!("rfpga::pad_shortcut<{h}, {w}, {c}, {}, {}, {gi}, {go}, {}>({}, {output})", l.out_ch, l.stride, port_t[ins[0]], input(0));
                    pad::process(l, in_port, gi, go, call)
                }
                Layer::AvgPool(l) => {
                    let [_, _, c] = in_port.shape;
                    let n = pixels(ins[0]);
                    let g = width[ins[0]];
                    let sum = ty(format!("{id}_sum_t"), &l.sum);
                    let mean = ty(format!("{id}_mean_t"), &FixedFormat { int: l.sum.int - n.trailing_zeros() as i32, ..l.sum });
                    let call = format!("rfpga::avg_pool<{n}, {c}, {g}, {}, {sum}, {mean}, {}>({}, {output})", port_t[ins[0]], port_t[p_out], input(0));
                    pool::process(l, in_port, g, call)
                }
                Layer::Dense(d) => {
                    ty(format!("{id}_weight_t"), &d.weight);
                    ty(format!("{id}_bias_t"), &d.bias);
                    ty(format!("{id}_accum_t"), &d.accum);
                    let product = in_port.format.try_product(&d.weight).map_err(|e| anyhow::anyhow!("{source}: `{}`: the product type: {e}", d.name))?;
                    ty(format!("{id}_product_t"), &product);
                    // The dense layer's one multiplier follows the default rule.
                    let in_dsp = Multipliers::Auto.in_dsp(in_port.format.width, d.weight.width);
                    denses.push(DenseCfg {
                        id: id.clone(),
                        mul_in_dsp: in_dsp,
                        inputs: d.in_features,
                        outputs: d.out_features,
                        in_t: port_t[ins[0]].clone(),
                        w_raw: raw_ctype(&d.weight),
                        b_raw: raw_ctype(&d.bias),
                    });
                    dense::process(d, &id, in_port, in_dsp, dsp, opts.clock_ns, (&input(0), &output))
                }
            };
            process.inputs = in_streams.clone();
            process.outputs = vec![port_stream[p_out]];
            processes.push(process);
            if let Some(s) = splits[p_out].take() {
                processes.push(s);
            }
            // The input that arrives first waits in its stream for the other branch.
            if let Some((q, depth)) = skip {
                let s = &mut streams[read_from[&(i, q)]];
                s.role = Role::Skip;
                s.depth = depth;
            }
        }
        let mut axis_out = axis::output(
            classes,
            out_word,
            format!("rfpga::pixels_to_axis<{classes}, {}, {}, {out_word}>({}, {}, out_words)", port_t[last], out_format.signed, streams[port_stream[last]].name, axis::FRAMES),
        );
        axis_out.inputs = vec![port_stream[last], s_frames];
        axis_out.outputs = vec![s_out];
        processes.push(axis_out);

        let mut design = Design {
            processes,
            streams,
            types,
            convs,
            denses,
            in_word,
            out_word,
            in_t: port_t[0].clone(),
            out_t: port_t[last].clone(),
            out_signed: out_format.signed,
            in_pixels: ih * iw,
            in_channels: ic,
            classes,
            lanes: lanes_by_layer,
            simd: simd_by_layer,
        };
        design.connect()?;
        design.set_depths(&opts.fifo_depths)?;
        design.set_storage(&opts.fifo_storage)?;
        Ok(design)
    }

    /// [`Design::build`] with its streams at `opts.fifo_depths`, or, when none are given, at the
    /// depths [`crate::dataflow::size_fifos`] finds — what `rfpga codegen` generates.
    pub fn build_sized(model: &FrozenModel, a: &Analysis, opts: &Options, dsp: DspKind, source: &str) -> Result<Design> {
        let mut design = Design::build(model, a, opts, dsp, source)?;
        if opts.fifo_depths.is_empty() {
            design.set_sized_depths(crate::dataflow::size_fifos(&design, crate::dataflow::SIZING_IMAGES)?);
        }
        Ok(design)
    }

    /// A design of processes and streams alone (no C++ around them): for the dataflow model's
    /// own tests and experiments. Each stream's writer and reader are the processes naming it.
    pub fn from_processes(processes: Vec<Process>, streams: Vec<Stream>) -> Result<Design> {
        let mut d = Design {
            processes,
            streams,
            types: vec![],
            convs: vec![],
            denses: vec![],
            in_word: 8,
            out_word: 8,
            in_t: String::new(),
            out_t: String::new(),
            out_signed: true,
            in_pixels: 0,
            in_channels: 0,
            classes: 0,
            lanes: BTreeMap::new(),
            simd: BTreeMap::new(),
        };
        d.connect()?;
        Ok(d)
    }

    /// Sets each stream's writer and reader from the processes; one of each per stream.
    fn connect(&mut self) -> Result<()> {
        for s in &mut self.streams {
            (s.writer, s.reader) = (None, None);
        }
        for (k, p) in self.processes.iter().enumerate() {
            for &s in &p.inputs {
                ensure!(self.streams[s].reader.replace(k).is_none(), "stream {} has two readers", self.streams[s].name);
            }
            for &s in &p.outputs {
                ensure!(self.streams[s].writer.replace(k).is_none(), "stream {} has two writers", self.streams[s].name);
            }
        }
        for s in &self.streams {
            ensure!(s.role == Role::Input || s.writer.is_some(), "stream {} has no writer", s.name);
            ensure!(s.role == Role::Output || s.reader.is_some(), "stream {} has no reader", s.name);
        }
        Ok(())
    }

    /// Sets stream depths by name (a design file's `fifo_depths`).
    pub fn set_depths(&mut self, depths: &BTreeMap<String, usize>) -> Result<()> {
        for (name, &d) in depths {
            let Some(s) = self.streams.iter_mut().find(|s| &s.name == name && s.is_fifo()) else {
                let known: Vec<&str> = self.streams.iter().filter(|s| s.is_fifo()).map(|s| s.name.as_str()).collect();
                bail!("fifo_depths: `{name}` is not a stream of this design (its streams: {})", known.join(", "));
            };
            ensure!(d >= 1, "fifo_depths.{name}: expected a depth ≥ 1, found {d}");
            s.depth = d;
        }
        Ok(())
    }

    /// Sets FIFO storage by stream name (a design file's `fifo_storage`).
    pub fn set_storage(&mut self, storage: &BTreeMap<String, resources::FifoImpl>) -> Result<()> {
        for (name, &imp) in storage {
            let Some(s) = self.streams.iter_mut().find(|s| &s.name == name && s.is_fifo()) else {
                bail!("fifo_storage: `{name}` is not a stream of this design");
            };
            s.storage = Some(imp);
        }
        Ok(())
    }

    /// FIFO storage asked for, by stream name.
    pub fn fifo_storage(&self) -> BTreeMap<String, resources::FifoImpl> {
        self.streams.iter().filter_map(|s| Some((s.name.clone(), s.storage?))).collect()
    }

    /// Every stream at the depth a sizing found (`crate::dataflow::size_fifos` or `size_fifos_by_peak`).
    pub fn set_sized_depths(&mut self, sizing: crate::dataflow::Sizing) {
        for (s, d) in self.streams.iter_mut().zip(sizing.depths) {
            s.depth = d;
        }
    }

    /// Every FIFO's depth by stream name.
    pub fn depths(&self) -> BTreeMap<String, usize> {
        self.streams.iter().filter(|s| s.is_fifo()).map(|s| (s.name.clone(), s.depth)).collect()
    }

    pub fn stream(&self, name: &str) -> Option<usize> {
        self.streams.iter().position(|s| s.name == name)
    }

    /// The slowest process (the most cycles per image when never stalled).
    pub fn slowest(&self) -> &Process {
        self.processes.iter().max_by_key(|p| p.cycles()).expect("a design has processes")
    }
}

/// The ports joined by adds (an add's two inputs and its output carry the same channels per
/// word), as a representative port per port.
fn add_joined(model: &FrozenModel, a: &Analysis) -> Vec<usize> {
    let mut root: Vec<usize> = (0..a.ports.len()).collect();
    fn find(root: &mut [usize], p: usize) -> usize {
        let mut p = p;
        while root[p] != p {
            root[p] = root[root[p]];
            p = root[p];
        }
        p
    }
    for (i, l) in model.layers.iter().enumerate() {
        if let Layer::Add(_) = l {
            for &q in &a.inputs[i] {
                let (x, y) = (find(&mut root, q), find(&mut root, i + 1));
                root[x] = y;
            }
        }
    }
    (0..a.ports.len()).map(|p| find(&mut root, p)).collect()
}

/// The convolutions whose PE must be equal (their outputs meet, through adds, at an add), each
/// class in layer order; every convolution is in exactly one class.
pub fn pe_classes(model: &FrozenModel, a: &Analysis) -> Vec<Vec<String>> {
    let root = add_joined(model, a);
    let mut classes: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut order = Vec::new();
    for (i, l) in model.layers.iter().enumerate() {
        if let Layer::Conv(c) = l {
            let r = root[i + 1];
            if !classes.contains_key(&r) {
                order.push(r);
            }
            classes.entry(r).or_default().push(c.name.clone());
        }
    }
    order.into_iter().map(|r| classes.remove(&r).expect("listed")).collect()
}

/// Each port's channels per stream word: the input's whole pixel; a convolution's PE (its
/// `--parallelism`); an add's and a pad's those of the ports the add joins (a convolution's
/// PE, which must agree across the join); a pad feeding no add keeps its input's; a pool's and
/// a dense layer's a whole pixel.
pub fn port_widths(model: &FrozenModel, a: &Analysis, opts: &Options, source: &str) -> Result<Vec<usize>> {
    let n = a.ports.len();
    let mut w: Vec<Option<usize>> = vec![None; n];
    w[0] = Some(a.ports[0].shape[2]);
    let root = add_joined(model, a);
    let mut by_root: BTreeMap<usize, (usize, String)> = BTreeMap::new();
    for (i, l) in model.layers.iter().enumerate() {
        let p = i + 1;
        match l {
            Layer::Conv(c) => {
                let pe = opts.lanes(&c.name);
                ensure!(pe >= 1 && c.out_ch % pe == 0, "--parallelism {pe} for `{}`: must divide its {} output channels", c.name, c.out_ch);
                w[p] = Some(pe);
                if let Some((other, name)) = by_root.get(&root[p]) {
                    if *other != pe {
                        let class = pe_classes(model, a).into_iter().find(|k| k.contains(&c.name)).unwrap_or_default();
                        bail!(
                            "--parallelism: `{}` ({pe}) and `{name}` ({other}) of {source} meet at a skip add, which takes both at one width: convolutions {} need the same PE",
                            c.name,
                            class.join(", ")
                        );
                    }
                } else {
                    by_root.insert(root[p], (pe, c.name.clone()));
                }
            }
            Layer::AvgPool(_) | Layer::Dense(_) => w[p] = Some(a.ports[p].shape[2]),
            Layer::Add(_) | Layer::PadShortcut(_) => {}
        }
    }
    for (i, l) in model.layers.iter().enumerate() {
        let p = i + 1;
        if w[p].is_none() {
            w[p] = match by_root.get(&root[p]) {
                Some((g, _)) => Some(*g),
                None if matches!(l, Layer::PadShortcut(_)) => w[a.inputs[i][0]],
                None => bail!("{source}: the channels per word of `{}` follow from no convolution", l.name()),
            };
        }
    }
    let w: Vec<usize> = w.into_iter().map(|x| x.expect("every port set")).collect();
    for (i, l) in model.layers.iter().enumerate() {
        if let Layer::Add(_) = l {
            for &q in &a.inputs[i] {
                ensure!(w[q] == w[i + 1], "{source}: `{}` reads {} channels per word from one input and {} from the other", l.name(), w[q], w[i + 1]);
            }
        }
    }
    for (p, &g) in w.iter().enumerate() {
        ensure!(a.ports[p].shape[2] % g == 0, "{source}: port {p} carries {} channels, not a multiple of its {g} per word", a.ports[p].shape[2]);
    }
    Ok(w)
}

/// What the templates cannot express, refused up front with the layer named.
fn refuse_unsupported(model: &FrozenModel, a: &Analysis, source: &str) -> Result<()> {
    let mut ids = std::collections::HashMap::new();
    for (i, l) in model.layers.iter().enumerate() {
        if let Some(other) = ids.insert(ident(l.name()), l.name()) {
            bail!("{source}: layers `{other}` and `{}` have the same C name `{}`", l.name(), ident(l.name()));
        }
        let ins = &a.inputs[i];
        match l {
            Layer::Add(_) if ins[0] == ins[1] => bail!("{source}: `{}` adds a value to itself; the HLS library needs two streams", l.name()),
            Layer::Dense(_) if a.ports[ins[0]].shape[0] * a.ports[ins[0]].shape[1] != 1 => {
                bail!("{source}: `{}` reads a {:?} feature map; dense layers read one pixel (after pooling)", l.name(), a.ports[ins[0]].shape)
            }
            _ => {}
        }
        // A conversion the C-sim headers would abort on (see FixedFormat::assignment_asserts_in_cpp).
        let conversions: Vec<(FixedFormat, FixedFormat)> = match l {
            Layer::Conv(c) => vec![(c.bias, c.accum), (c.accum, c.output)],
            Layer::Dense(d) => vec![(d.bias, d.accum), (d.accum, d.output)],
            // The exact sum a + b converted into `sum` (the analysis checked that it exists).
            Layer::Add(s) => vec![(a.ports[ins[0]].format.try_sum(&a.ports[ins[1]].format).unwrap_or(s.sum), s.sum), (s.sum, s.output)],
            Layer::AvgPool(p) => {
                let n = a.ports[ins[0]].shape[0] * a.ports[ins[0]].shape[1];
                vec![(FixedFormat { int: p.sum.int - n.trailing_zeros() as i32, ..p.sum }, p.output)]
            }
            Layer::PadShortcut(_) => vec![],
        };
        if let Some((src, dst)) = conversions.iter().find(|(src, dst)| dst.assignment_asserts_in_cpp(src)) {
            bail!(
                "{source}: `{}` converts {src} to {dst}, which drops more fraction bits than the source has while rounding; the ap_fixed headers assert on it in C simulation. Choose formats closer together.",
                l.name()
            );
        }
    }
    Ok(())
}
