//! A cycle-level simulation of a generated design ([`crate::hw::Design`]): every process runs
//! its schedule, every stream holds at most its depth, over back-to-back images.
//!
//! Stream semantics (those of an RTL FIFO between two processes): an element written in cycle
//! t can be read from cycle t + 1; a slot freed by a read in cycle t can be written from cycle
//! t + 1; a process that reads an empty stream or writes a full one stalls until it can.
//! Reads (or writes) of one cycle happen together: none before all can, as in one pipeline
//! stage (the split's two writes, the add's two reads); the threaded C-sim does the same
//! (`rfpga::write_both`, `rfpga::read_both`). The
//! top function's input is a DMA that always has the next word; its output is always taken.
//!
//! Every event's cycle follows from max-plus recurrences (a read of element k happens at
//! max(the reader's own time, write_k + 1); a write of element k at max(the writer's time,
//! read_{k−depth} + 1)), so processes are advanced one at a time until they block, in any
//! order: the result is the same. When every unfinished process is blocked the design
//! deadlocks; that does not depend on timing either, only on the order of each process's
//! reads and writes — the same order as the generated C++, which is why the threaded C-sim
//! and this model agree on the smallest depth that completes.

use crate::hw::{Design, Op, Role};
use std::fmt::Write as _;

/// What a simulation found.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub images: usize,
    /// Cycle at which each image's last output word was written.
    pub done: Vec<u64>,
    /// Per stream: the most elements it held at once.
    pub peak: Vec<usize>,
    /// Set when the design deadlocked: each blocked process and the stream it waits on.
    pub deadlock: Option<Vec<Blocked>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub process: String,
    pub stream: String,
    /// Waiting to write a full stream (true) or to read an empty one.
    pub writing: bool,
    pub fill: usize,
    pub depth: usize,
}

impl Outcome {
    /// Cycles between the last two images (the steady-state interval); None with one image
    /// or a deadlock.
    pub fn interval(&self) -> Option<u64> {
        if self.deadlock.is_some() || self.done.len() < 2 {
            return None;
        }
        Some(self.done[self.done.len() - 1] - self.done[self.done.len() - 2])
    }
    /// Cycles from the first input word to the first image's last output word.
    pub fn latency(&self) -> Option<u64> {
        self.done.first().copied().filter(|_| self.deadlock.is_none())
    }
    pub fn deadlock_report(&self) -> Option<String> {
        let b = self.deadlock.as_ref()?;
        let mut s = String::from("deadlock: every unfinished process is blocked");
        for x in b {
            if x.writing {
                let _ = write!(s, "; {} waits to write {} (full: {} of {})", x.process, x.stream, x.fill, x.depth);
            } else {
                let _ = write!(s, "; {} waits to read {} (empty)", x.process, x.stream);
            }
        }
        Some(s)
    }
}

/// Runs `images` images back to back through `design` at its stream depths.
pub fn simulate(design: &Design, images: usize) -> Outcome {
    let depths: Vec<usize> = design.streams.iter().map(|s| s.depth).collect();
    simulate_with(design, &depths, images)
}

/// As [`simulate`], with `depths[s]` in place of each stream's depth.
pub fn simulate_with(design: &Design, depths: &[usize], images: usize) -> Outcome {
    let ns = design.streams.len();
    let np = design.processes.len();
    let mut writes: Vec<Vec<u64>> = design.streams.iter().map(|s| Vec::with_capacity(s.elements * images)).collect();
    let mut reads: Vec<Vec<u64>> = design.streams.iter().map(|s| Vec::with_capacity(s.elements * images)).collect();
    // Per process: next op, image, local cycle, finished, the stream it is blocked on.
    let mut pc = vec![0usize; np];
    let mut image = vec![0usize; np];
    let mut time = vec![0u64; np];
    let mut finished = vec![images == 0; np];
    let mut blocked: Vec<Option<(usize, bool)>> = vec![None; np];
    let mut done = Vec::with_capacity(images);
    let out_port = design.streams.iter().position(|s| s.role == Role::Output);
    let mut work: Vec<usize> = (0..np).rev().collect();
    while let Some(p) = work.pop() {
        if finished[p] {
            continue;
        }
        blocked[p] = None;
        let proc_ = &design.processes[p];
        let mut t = time[p];
        loop {
            if pc[p] == proc_.ops.len() {
                pc[p] = 0;
                image[p] += 1;
                if image[p] == images {
                    finished[p] = true;
                    break;
                }
            }
            // Consecutive reads (or writes) with no wait between them are one pipeline stage:
            // in RTL none of them happens before all can (a split's two writes, an add's two
            // reads), so the group waits for its latest stream and then takes all at once.
            let op = proc_.ops[pc[p]];
            if let Op::Wait(n) = op {
                t += n as u64;
                pc[p] += 1;
                continue;
            }
            let writing = matches!(op, Op::Write(_));
            let run = proc_.ops[pc[p]..].iter().take_while(|o| matches!((o, writing), (Op::Write(_), true) | (Op::Read(_), false))).count();
            let mut at = t;
            let mut stuck = None;
            for o in &proc_.ops[pc[p]..pc[p] + run] {
                match *o {
                    Op::Read(i) => {
                        let s = proc_.inputs[i as usize];
                        if design.streams[s].role == Role::Input {
                            continue;
                        }
                        match writes[s].get(reads[s].len()) {
                            Some(&w) => at = at.max(w + 1),
                            None => {
                                stuck = Some((s, false));
                                break;
                            }
                        }
                    }
                    Op::Write(i) => {
                        let s = proc_.outputs[i as usize];
                        let (k, d) = (writes[s].len(), depths[s].max(1));
                        if design.streams[s].role == Role::Output || k < d {
                            continue;
                        }
                        match reads[s].get(k - d) {
                            Some(&r) => at = at.max(r + 1),
                            None => {
                                stuck = Some((s, true));
                                break;
                            }
                        }
                    }
                    Op::Wait(_) => unreachable!("runs hold reads or writes only"),
                }
            }
            if let Some(b) = stuck {
                blocked[p] = Some(b);
                break;
            }
            t = at;
            for o in &proc_.ops[pc[p]..pc[p] + run] {
                match *o {
                    Op::Read(i) => {
                        let s = proc_.inputs[i as usize];
                        reads[s].push(t);
                        if let Some(w) = design.streams[s].writer {
                            if blocked[w] == Some((s, true)) {
                                work.push(w);
                            }
                        }
                    }
                    Op::Write(i) => {
                        let s = proc_.outputs[i as usize];
                        writes[s].push(t);
                        if Some(s) == out_port && writes[s].len() % design.streams[s].elements == 0 {
                            done.push(t);
                        }
                        if let Some(r) = design.streams[s].reader {
                            if blocked[r] == Some((s, false)) {
                                work.push(r);
                            }
                        }
                    }
                    Op::Wait(_) => unreachable!(),
                }
            }
            pc[p] += run;
        }
        time[p] = t;
    }
    let deadlock = (!finished.iter().all(|&f| f)).then(|| {
        (0..np)
            .filter_map(|p| {
                let (s, writing) = blocked[p]?;
                Some(Blocked {
                    process: design.processes[p].name.clone(),
                    stream: design.streams[s].name.clone(),
                    writing,
                    fill: writes[s].len() - reads[s].len(),
                    depth: depths[s],
                })
            })
            .collect()
    });
    // Peak occupancy: after write k at cycle w_k, the elements written minus those whose
    // slot was freed by then (read at r with r + 1 ≤ w_k).
    let peak = (0..ns)
        .map(|s| {
            let (w, r) = (&writes[s], &reads[s]);
            let mut freed = 0;
            let mut best = 0;
            for (k, &wk) in w.iter().enumerate() {
                while freed < r.len() && r[freed] < wk {
                    freed += 1;
                }
                best = best.max(k + 1 - freed.min(k + 1));
            }
            best
        })
        .collect();
    Outcome { images, done, peak, deadlock }
}

/// The smallest depth of stream `s` (others as in `depths`) with which the design completes
/// `images` images, searched up to `max`; None if even `max` deadlocks.
pub fn min_depth(design: &Design, depths: &[usize], s: usize, images: usize, max: usize) -> Option<usize> {
    let mut d = depths.to_vec();
    let ok = |d: &mut Vec<usize>, v: usize| {
        d[s] = v;
        simulate_with(design, d, images).deadlock.is_none()
    };
    if !ok(&mut d, max) {
        return None;
    }
    let (mut lo, mut hi) = (1, max); // hi completes
    while lo < hi {
        let mid = (lo + hi) / 2;
        if ok(&mut d, mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(hi)
}

/// The result of [`size_fifos`].
#[derive(Debug, Clone)]
pub struct Sizing {
    /// Depth of every stream (ports included, unchanged).
    pub depths: Vec<usize>,
    /// The interval with every FIFO unbounded, and with the chosen depths.
    pub unbounded_interval: u64,
    pub interval: u64,
}

/// Back-to-back images the sizing simulates (the interval is taken between the last two).
pub const SIZING_IMAGES: usize = 3;

const SRL_DEPTH: usize = crate::hw::resources::SRL_MAX_DEPTH as usize;

/// How much [`size_fifos`] lets the interval grow, in all, to keep FIFOs in shift registers
/// (depth 32) instead of BRAM: 0.1 %. On ResNet-20 without skips it saves 24 of the xc7z020's
/// 280 BRAM_18K for 0.1 % of the images/s.
pub const SRL_TOLERANCE: f64 = 0.001;

/// The margin added to a FIFO the model sized above the default depth 2, for the model's
/// uncertainty in cycle counts: one eighth, at least one element — but not past 32 when the
/// sized depth fits in 32 (beyond, a FIFO moves from LUTs to BRAM; the margin is smaller there).
pub fn margin(depth: usize) -> usize {
    if depth <= 2 {
        2
    } else if depth <= SRL_DEPTH {
        (depth + depth.div_ceil(8)).min(SRL_DEPTH)
    } else {
        depth + depth.div_ceil(8)
    }
}

/// `images` back to back with every FIFO unbounded: the outcome (its peak occupancies) and the
/// interval, the target both sizings keep.
fn unbounded_run(design: &Design, images: usize) -> anyhow::Result<(Outcome, u64)> {
    let unbounded: Vec<usize> = design.streams.iter().map(|s| s.elements * images + 1).collect();
    let free = simulate_with(design, &unbounded, images);
    let Some(target) = free.interval() else {
        anyhow::bail!("the design deadlocks even with unbounded FIFOs: {}", free.deadlock_report().unwrap_or_default());
    };
    Ok((free, target))
}

/// A quick sizing for design searches: every FIFO at its peak occupancy with unbounded FIFOs
/// (which reproduces the unbounded schedule exactly) plus [`margin`]. One simulation instead
/// of [`size_fifos`]'s hundreds; never smaller than what [`size_fifos`] finds, so resources
/// counted with it err high.
pub fn size_fifos_by_peak(design: &Design, images: usize) -> anyhow::Result<Sizing> {
    let images = images.max(3);
    let (free, target) = unbounded_run(design, images)?;
    let depths: Vec<usize> = design.streams.iter().zip(&free.peak).map(|(s, &p)| if s.is_fifo() { margin(p.max(2)) } else { s.depth }).collect();
    Ok(Sizing { depths, unbounded_interval: target, interval: target })
}

/// Finds, stream by stream (the largest memories first), the smallest depth that neither
/// deadlocks nor lengthens the interval of `images` (≥ 3) back-to-back images beyond what
/// unbounded FIFOs give, then adds [`margin`] (which keeps the result ≥ the sized depth, so
/// neither property is lost); last, caps at 32 (shift registers, no BRAM) each FIFO that can
/// be capped with the interval within [`SRL_TOLERANCE`] of the unbounded one. Errors when the design deadlocks even with
/// unbounded FIFOs (it cannot: every schedule is feed-forward, but the check costs nothing).
pub fn size_fifos(design: &Design, images: usize) -> anyhow::Result<Sizing> {
    let images = images.max(3);
    let (free, target) = unbounded_run(design, images)?;
    // Depth = peak occupancy reproduces the unbounded schedule exactly.
    let mut depths: Vec<usize> = design.streams.iter().zip(&free.peak).map(|(s, &p)| if s.is_fifo() { p.max(2) } else { s.depth }).collect();
    let mut order: Vec<usize> = (0..design.streams.len()).filter(|&s| design.streams[s].is_fifo() && depths[s] > 2).collect();
    order.sort_by_key(|&s| std::cmp::Reverse(depths[s] as u64 * design.streams[s].bits));
    let meets = |d: &[usize]| simulate_with(design, d, images).interval().is_some_and(|i| i <= target);
    for s in order {
        let (mut lo, mut hi) = (2, depths[s]); // hi meets the target
        while lo < hi {
            let mid = (lo + hi) / 2;
            depths[s] = mid;
            if meets(&depths) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        depths[s] = hi;
    }
    for (s, st) in design.streams.iter().enumerate() {
        if st.is_fifo() {
            depths[s] = margin(depths[s]);
        }
    }
    // A FIFO deeper than 32 is a memory (BRAM_18K per 36 bits of width); at 32 it stays in
    // shift registers. Keep it at 32 where the whole interval stays within SRL_TOLERANCE.
    let limit = target + (target as f64 * SRL_TOLERANCE) as u64;
    let mut deep: Vec<usize> = (0..design.streams.len()).filter(|&s| design.streams[s].is_fifo() && depths[s] > SRL_DEPTH).collect();
    deep.sort_by_key(|&s| std::cmp::Reverse(depths[s] as u64 * design.streams[s].bits));
    for s in deep {
        // Capped only where the interval also holds at a margin below the cap, so the cap
        // keeps the margin every sized FIFO has.
        let old = depths[s];
        depths[s] = SRL_DEPTH - SRL_DEPTH / 8;
        let with_margin = simulate_with(design, &depths, images).interval().is_some_and(|i| i <= limit);
        depths[s] = if with_margin { SRL_DEPTH } else { old };
    }
    let interval = simulate_with(design, &depths, images).interval().expect("checked: no deadlock");
    Ok(Sizing { depths, unbounded_interval: target, interval })
}
