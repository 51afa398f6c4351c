//! The dataflow model against cycle counts derived by hand: each layer kind alone (fed by a DMA
//! that always has the next word, read by one that always takes it), a two-layer chain with the
//! slower stage second and first, and a skip connection whose FIFO is too shallow.

use rfpga_core::fixed::FixedFormat;
use rfpga_core::frozen::{AvgPool, Dense, PadShortcut, Port};
use rfpga_hls::dataflow::{min_depth, simulate, simulate_with, size_fifos};
use rfpga_hls::hw::{conv, dense, pad, pixel_loop, pool, Design, Op, Process, Role, Stream};

fn stream(name: &str, role: Role, elements: usize) -> Stream {
    Stream { name: name.into(), ty: String::new(), bits: 8, depth: 2, role, elements, writer: None, reader: None, storage: None }
}

fn process(name: &str, ops: Vec<Op>, inputs: Vec<usize>, outputs: Vec<usize>) -> Process {
    Process { name: name.into(), kind: "test", call: String::new(), inputs, outputs, ops, resources: Default::default(), detail: String::new() }
}

/// One process between the DMA's input (`ins` streams of `in_elems` elements per image) and the
/// output (`out_elems`): returns the cycle of each image's last output word over 3 images.
fn alone(ops: Vec<Op>, ins: usize, in_elems: usize, out_elems: usize) -> Vec<u64> {
    let mut streams: Vec<Stream> = (0..ins).map(|i| stream(&format!("in{i}"), Role::Input, in_elems)).collect();
    streams.push(stream("out", Role::Output, out_elems));
    let d = Design::from_processes(vec![process("p", ops, (0..ins).collect(), vec![ins])], streams).unwrap();
    let o = simulate(&d, 3);
    assert!(o.deadlock.is_none());
    o.done
}

fn port(h: usize, w: usize, c: usize) -> Port {
    Port { shape: [h, w, c], format: FixedFormat::parse("ap_fixed<8,3>").unwrap() }
}

#[test]
fn convolutions_alone_by_hand() {
    // 3×3, stride 1, 8×8×4 → 8 channels, one lane: 10×10 padded slots of one cycle; each of the
    // 64 windows takes 8 lane groups × 36 taps + 8 cycles. Its last window is the last slot.
    let done = alone(conv::schedule(8, 8, 3, 1, 1, 1, 8 * 36, 8), 1, 64, 64);
    let cycles = 100 + 64 * (8 * 36 + 8);
    assert_eq!(done, [cycles, 2 * cycles, 3 * cycles]);
    // Two lanes: 4 lane groups.
    assert_eq!(alone(conv::schedule(8, 8, 3, 1, 1, 1, 4 * 36, 8), 1, 64, 64)[0], 100 + 64 * (4 * 36 + 8));
    // Stride 2: windows end at padded slots 2, 4, 6, 8 of each axis (16 of them); after the
    // last one, slot (8, 9) and the padding row 9 (10 slots) remain.
    let done = alone(conv::schedule(8, 8, 3, 2, 1, 1, 8 * 36, 8), 1, 64, 16);
    let cycles = 100 + 16 * (8 * 36 + 8);
    assert_eq!(done, [cycles - 11, 2 * cycles - 11, 3 * cycles - 11]);
    // 1×1, stride 1, 16 → 8 channels: 64 slots, each a window of 8 groups × 16 taps.
    assert_eq!(alone(conv::schedule(8, 8, 1, 1, 1, 1, 8 * 16, 8), 1, 64, 64)[1], 2 * (64 + 64 * (8 * 16 + 8)));
    // 1×1, stride 2 (the option-B projection): 16 windows; after the last, (6, 7) and row 7.
    let cycles = 64 + 16 * (8 * 16 + 8);
    assert_eq!(alone(conv::schedule(8, 8, 1, 2, 1, 1, 8 * 16, 8), 1, 64, 16), [cycles - 9, 2 * cycles - 9, 3 * cycles - 9]);
}

#[test]
fn add_pad_pool_dense_alone_by_hand() {
    // add: 64 pixels, one per cycle, both inputs read each cycle; the pipeline drains 3 cycles.
    let done = alone(pixel_loop(64, &[0, 1], |_| vec![0]), 2, 64, 64);
    assert_eq!(done, [63, 67 + 63, 2 * 67 + 63]);
    // Option-A shortcut, 8×8×16 → 32, stride 2, whole pixels in and out: per pixel a read loop
    // (a cycle and 2 of overhead), and for the 16 at even rows and columns a write loop (the
    // same); the last written is pixel (6, 6), after 54 pixels of which 15 were written:
    // 54·3 + 15·3 + 3 = 210. 64·3 + 16·3 = 240 cycles in all.
    let l = PadShortcut { name: "pad".into(), input: "x".into(), stride: 2, out_ch: 32 };
    let p = pad::process(&l, &port(8, 8, 16), 16, 32, String::new());
    assert_eq!(p.cycles(), 240);
    assert_eq!(alone(p.ops, 1, 64, 16), [210, 240 + 210, 2 * 240 + 210]);
    // Narrower words (4 in, 8 out): 4 reads and 4 writes per kept pixel, 4 reads otherwise.
    let p = pad::process(&l, &port(8, 8, 16), 4, 8, String::new());
    assert_eq!(p.cycles(), 64 * (4 + 2) + 16 * (4 + 2));
    // Global average pooling over 64 pixels: 64 cycles, the drain, one cycle for the means.
    let f = FixedFormat::parse("ap_fixed<16,9>").unwrap();
    let l = AvgPool { name: "pool".into(), input: "x".into(), sum: f, output: f };
    let p = pool::process(&l, &port(8, 8, 16), 16, String::new());
    assert_eq!(alone(p.ops, 1, 64, 1), [68, 2 * 68, 3 * 68]);
    // Dense 64 → 10: one read, 640 products one per cycle, the MAC pipeline's 10 (at 10 ns), one write.
    let l = Dense { name: "fc".into(), input: "x".into(), in_features: 64, out_features: 10, weight: f, bias: f, accum: f, output: f };
    let p = dense::process(&l, "fc", &port(1, 1, 64), false, rfpga_hls::hw::DspKind::Dsp48E1, 10.0, ("a", "b"));
    assert_eq!(alone(p.ops, 1, 1, 1), [651, 2 * 651, 3 * 651]);
}

/// DMA → conv A → (depth-2 stream) → conv B → output.
fn chain(a: Vec<Op>, b: Vec<Op>) -> Design {
    let streams = vec![stream("in", Role::Input, 64), stream("mid", Role::Stream, 64), stream("out", Role::Output, 64)];
    Design::from_processes(vec![process("a", a, vec![0], vec![1]), process("b", b, vec![1], vec![2])], streams).unwrap()
}

#[test]
fn a_two_layer_chain_runs_at_its_slower_stage() {
    let fast = || conv::schedule(8, 8, 3, 1, 1, 1, 4 * 36, 8); // 100 + 64·152 cycles
    let slow = || conv::schedule(8, 8, 3, 1, 1, 1, 8 * 36, 8); // 100 + 64·296 cycles
    let slow_cycles = 100 + 64 * 296;
    // The consumer is slower. Within an image it never waits (the producer is ahead), but its
    // first window of the next image needs W + 2 = 10 pixels at once, and the producer can
    // only be ahead by what the stream holds plus the one pixel waiting in its blocked write:
    // the interval is the consumer's cycles from a depth of W + 1 = 9 on, longer below.
    let d = chain(fast(), slow());
    let interval = |d: &Design, depth: usize| simulate_with(d, &[2, depth, 2], 3).interval().unwrap();
    assert_eq!(interval(&d, 9), slow_cycles);
    assert!(interval(&d, 8) > slow_cycles && interval(&d, 2) > interval(&d, 8));
    assert!((2..20).all(|k| interval(&d, k) >= interval(&d, k + 1)), "a deeper stream is never slower");
    // The producer is slower: at depth 2 it stalls at each image's start (the consumer still
    // computes the previous image's last rows, which need no input), so the interval exceeds
    // its cycles; a few more slots give them back.
    let d = chain(slow(), fast());
    assert!(interval(&d, 2) > slow_cycles);
    // Sizing finds, for both, the unbounded interval: the slower stage's cycles exactly.
    for d in [chain(fast(), slow()), chain(slow(), fast())] {
        let s = size_fifos(&d, 3).unwrap();
        assert_eq!((s.unbounded_interval, s.interval), (slow_cycles, slow_cycles));
        assert!(interval(&d, s.depths[1]) == slow_cycles && s.depths[1] <= 9 + 2, "{:?}", s.depths);
    }
}

/// input → split → (a) 3×3 conv → add ← (b, the skip FIFO) split; add → output. 8×8 pixels.
fn skip_block(skip_depth: usize) -> Design {
    let mut streams = vec![
        stream("in", Role::Input, 64),
        stream("a", Role::Stream, 64),
        stream("skip", Role::Skip, 64),
        stream("conv_out", Role::Stream, 64),
        stream("out", Role::Output, 64),
    ];
    streams[2].depth = skip_depth;
    let split = process("split", pixel_loop(64, &[0], |_| vec![0, 1]), vec![0], vec![1, 2]);
    let c = process("conv", conv::schedule(8, 8, 3, 1, 1, 1, 4 * 36, 8), vec![1], vec![3]);
    let add = process("add", pixel_loop(64, &[0, 1], |_| vec![0]), vec![3, 2], vec![4]);
    Design::from_processes(vec![split, c, add], streams).unwrap()
}

#[test]
fn a_shallow_skip_fifo_deadlocks_and_the_report_names_it() {
    // The add waits for the convolution's first output, which needs input pixel (1, 1), the
    // 10th (W + 2). The split writes each pixel to both streams in one cycle (one pipeline
    // stage: in RTL neither write happens before both can), so the convolution gets pixel 10
    // only once the skip FIFO takes it too: W + 2 = 10 must fit (at each row's start the lag
    // is the same). Writing one stream after the other would need one slot less than the RTL.
    let d = skip_block(64);
    let min = min_depth(&d, &d.streams.iter().map(|s| s.depth).collect::<Vec<_>>(), 2, 3, 64);
    assert_eq!(min, Some(10));
    let o = simulate(&skip_block(9), 3);
    let report = o.deadlock_report().expect("a deadlock");
    assert!(report.contains("split waits to write skip (full: 9 of 9)"), "{report}");
    assert!(report.contains("add waits to read conv_out (empty)"), "{report}");
    assert!(simulate(&skip_block(10), 3).deadlock.is_none());
}
