//! Resource counts and the building blocks every layer formula uses: memories (BRAM_18K or
//! LUTRAM by size and shape), multipliers (DSP or LUTs by operand width), conversions, process
//! control, FIFOs (flip-flops, SRL, LUTRAM, BRAM or URAM).
//! Every constant is an assumption with a source and an expected error, listed in
//! docs/explanation/estimate-constants.md; where sources disagree, the higher figure is used until a
//! synthesis report says otherwise. Each layer kind's formula (`hw/<kind>.rs`) is built from these.

use serde::Serialize;
use std::ops::{Add, AddAssign};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Resources {
    pub bram_18k: u64,
    pub dsp: u64,
    pub ff: u64,
    pub lut: u64,
    pub uram: u64,
    /// Of `lut`, those used as memory (LUTRAM and shift registers): only SLICEM LUTs can be,
    /// so this is checked against the part's SLICEM LUTs, not its LUTs.
    pub lut_mem: u64,
}

impl Add for Resources {
    type Output = Resources;
    fn add(self, o: Resources) -> Resources {
        Resources {
            bram_18k: self.bram_18k + o.bram_18k,
            dsp: self.dsp + o.dsp,
            ff: self.ff + o.ff,
            lut: self.lut + o.lut,
            uram: self.uram + o.uram,
            lut_mem: self.lut_mem + o.lut_mem,
        }
    }
}

impl AddAssign for Resources {
    fn add_assign(&mut self, o: Resources) {
        *self = *self + o;
    }
}

impl Resources {
    pub fn lut(lut: u64) -> Self {
        Resources { lut, ..Default::default() }
    }
    pub fn logic(lut: u64, ff: u64) -> Self {
        Resources { lut, ff, ..Default::default() }
    }
    /// `lut` LUTs used as memory (LUTRAM or SRL: SLICEM only).
    pub fn lut_memory(lut: u64) -> Self {
        Resources { lut, lut_mem: lut, ..Default::default() }
    }
    /// Every count times `n`.
    pub fn times(self, n: u64) -> Self {
        Resources { bram_18k: self.bram_18k * n, dsp: self.dsp * n, ff: self.ff * n, lut: self.lut * n, uram: self.uram * n, lut_mem: self.lut_mem * n }
    }
    /// (name, value) in the order of Vitis reports.
    pub fn named(&self) -> [(&'static str, u64); 5] {
        [("BRAM_18K", self.bram_18k), ("DSP", self.dsp), ("FF", self.ff), ("LUT", self.lut), ("URAM", self.uram)]
    }
}

/// Arrays of at most this many bits per bank go to LUTRAM (or registers), as Vitis does by
/// default for small arrays; larger ones to BRAM_18K.
pub const LUTRAM_MAX_BITS: u64 = 1024;

/// The BRAM_18K aspect ratios (width, depth) of the notes.
const BRAM_SHAPES: [(u64, u64); 6] = [(1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512)];

/// BRAM_18K blocks of one memory of `entries` words of `width` bits: the cheapest shape.
pub fn bram_blocks(entries: u64, width: u64) -> u64 {
    BRAM_SHAPES.iter().map(|&(w, d)| width.div_ceil(w) * entries.div_ceil(d)).min().expect("shapes")
}

/// A read-write memory of `entries` words of `width` bits split into `banks` independent banks
/// (array partitioning): per bank the cheapest BRAM_18K shape, or LUTRAM when small (a SLICEM
/// LUT6 holds 64 bits).
pub fn memory(entries: u64, width: u64, banks: u64) -> Resources {
    if entries == 0 || width == 0 {
        return Resources::default();
    }
    let banks = banks.max(1);
    let per_bank = entries.div_ceil(banks);
    if per_bank * width <= LUTRAM_MAX_BITS {
        return Resources::lut_memory(banks * width * per_bank.div_ceil(64));
    }
    Resources { bram_18k: banks * bram_blocks(per_bank, width), ..Default::default() }
}

/// A ROM of `entries` words of `width` bits (one word read per cycle) bound to `storage`:
/// BRAM_18K blocks by shape, or LUTs — a ROM in LUTs is logic (a LUT6 is a 64×1 ROM), so it
/// needs no SLICEM. `Auto` follows Vitis's default: LUTs up to [`LUTRAM_MAX_BITS`].
pub fn rom(storage: crate::Storage, entries: u64, width: u64) -> Resources {
    use crate::Storage;
    if entries == 0 || width == 0 {
        return Resources::default();
    }
    let in_luts = match storage {
        Storage::Auto => entries * width <= LUTRAM_MAX_BITS,
        Storage::Lutram => true,
        Storage::Bram => false,
    };
    if in_luts {
        Resources::lut(width * entries.div_ceil(64))
    } else {
        Resources { bram_18k: bram_blocks(entries, width), ..Default::default() }
    }
}

/// The DSP slice of a part family: its multiplier's port widths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DspKind {
    /// 7-series: 25×18.
    Dsp48E1,
    /// UltraScale(+): 27×18.
    Dsp48E2,
}

/// One pipelined `a × b` multiplier, in LUTs (≈ a·b; public figures for 8×8 range from 41 LUT,
/// a Vitis estimate, to 88, FINN-R's formula: docs/explanation/estimate-sources.md) or in DSP slices tiling
/// the product by the DSP's port widths. Where it goes is the generated code's binding
/// ([`crate::Multipliers`]), not a guess.
pub fn multiplier(a_bits: u32, b_bits: u32, in_dsp: bool, dsp: DspKind) -> Resources {
    let (a, b) = (a_bits.max(b_bits) as u64, a_bits.min(b_bits) as u64);
    if !in_dsp {
        return Resources::logic(a * b, a + b);
    }
    let port_a = match dsp {
        DspKind::Dsp48E1 => 25,
        DspKind::Dsp48E2 => 27,
    };
    let dsps = a.div_ceil(port_a) * b.div_ceil(18);
    Resources { dsp: dsps, ff: a + b, lut: if dsps > 1 { a + b } else { 0 }, ..Default::default() }
}

/// An adder/accumulator of `bits`: one LUT per bit (carry chain), a register per bit.
pub fn accumulator(bits: u32) -> Resources {
    Resources::logic(bits as u64, bits as u64)
}

/// The deepest stream FIFO kept in shift registers (one SRL32 per bit); deeper ones are memories.
pub const SRL_MAX_DEPTH: u64 = 32;

/// What a stream FIFO is built from. Codegen binds every FIFO explicitly
/// (`#pragma HLS BIND_STORAGE type=fifo impl=…`): left to Vitis (`config_storage fifo`
/// defaults, UG1399: SRL only up to depth 2 and 1,024 bits) most of these FIFOs would become
/// memories, and the estimate would not describe the generated design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FifoImpl {
    /// Shift registers; at depth ≤ 2 Vivado builds them from flip-flops.
    Srl,
    Lutram,
    Bram,
    /// UltraRAM (UltraScale+ parts that have it): a FIFO needs no initial contents.
    Uram,
}

impl FifoImpl {
    /// The default choice: shift registers up to [`SRL_MAX_DEPTH`]; deeper, LUTRAM when small
    /// (≤ [`LUTRAM_MAX_BITS`]), else BRAM. URAM only when asked for (`--fifo-storage`, fit).
    pub fn of(depth: u64, width: u64) -> FifoImpl {
        if depth <= SRL_MAX_DEPTH {
            FifoImpl::Srl
        } else if depth * width <= LUTRAM_MAX_BITS {
            FifoImpl::Lutram
        } else {
            FifoImpl::Bram
        }
    }
    /// The `impl` value of the BIND_STORAGE pragma.
    pub fn pragma(self) -> &'static str {
        match self {
            FifoImpl::Srl => "srl",
            FifoImpl::Lutram => "lutram",
            FifoImpl::Bram => "bram",
            FifoImpl::Uram => "uram",
        }
    }
}

impl std::str::FromStr for FifoImpl {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "srl" => Ok(FifoImpl::Srl),
            "lutram" => Ok(FifoImpl::Lutram),
            "bram" => Ok(FifoImpl::Bram),
            "uram" => Ok(FifoImpl::Uram),
            _ => anyhow::bail!("FIFO storage: expected srl, lutram, bram or uram, found `{s}`"),
        }
    }
}

/// Read/write pointers, full/empty flags and handshake of a FIFO (docs/explanation/estimate-constants.md).
const FIFO_CONTROL: (u64, u64) = (12, 12);
/// The same for a FIFO in a memory, with its output register.
const MEMORY_FIFO_CONTROL: (u64, u64) = (30, 30);

/// A stream FIFO of `depth` words of `width` bits built as `imp`: at depth ≤ 2 flip-flops
/// (Vivado maps such shallow shift registers to registers; a read mux of one LUT per 2 bits);
/// shift registers (a SLICEM LUT holds two 16-deep or one 32-deep SRL per bit, UG474/UG949;
/// FINN's estimate counts the same); LUTRAM (64 bits per SLICEM LUT); BRAM_18K by shape; URAM
/// (4K × 72 per block); plus control.
pub fn fifo(depth: u64, width: u64, imp: FifoImpl) -> Resources {
    let (cl, cf) = FIFO_CONTROL;
    let (ml, mf) = MEMORY_FIFO_CONTROL;
    match imp {
        FifoImpl::Srl if depth <= 2 => Resources::logic(width.div_ceil(2) + cl, depth * width + cf),
        FifoImpl::Srl if depth <= 16 => Resources::lut_memory(width.div_ceil(2)) + Resources::logic(cl, width + cf),
        FifoImpl::Srl => Resources::lut_memory(width * depth.div_ceil(32)) + Resources::logic(cl, width + cf),
        FifoImpl::Lutram => Resources::lut_memory(width * depth.div_ceil(64)) + Resources::logic(ml, mf + width),
        FifoImpl::Bram => Resources { bram_18k: bram_blocks(depth, width), ..Default::default() } + Resources::logic(ml, mf + width),
        FifoImpl::Uram => Resources { uram: width.div_ceil(72) * depth.div_ceil(4096), ..Default::default() } + Resources::logic(ml, mf + width),
    }
}

/// LUTs of a select of one of `ways` words of `bits` bits (a LUT6 is a 4:1 mux of one bit;
/// UG474's F7/F8 muxes join them without LUTs).
pub fn select(bits: u64, ways: u64) -> u64 {
    if ways <= 1 {
        0
    } else {
        bits * ways.div_ceil(4)
    }
}

/// LUTs per output bit of a conversion that rounds (AP_RND*: an incrementer over the kept bits
/// and its carry-out) and that saturates (AP_SAT*: overflow detection over the dropped
/// integer bits and the clamp mux): together 7.5 per bit, i.e. 60 LUT for an 8-bit output, the
/// upper end of the review's 45-60 (docs/explanation/estimate-constants.md).
pub const ROUND_LUT_PER_BIT: f64 = 3.5;
pub const SATURATE_LUT_PER_BIT: f64 = 4.0;

/// LUTs of one conversion from `src` into `dst` (ap_fixed assignment): wiring when no bit is
/// dropped; rounding when `dst` has fewer fraction bits and rounds; saturation when it has
/// fewer integer bits (or drops the sign) and saturates.
pub fn conversion(src: &rfpga_core::fixed::FixedFormat, dst: &rfpga_core::fixed::FixedFormat) -> u64 {
    use rfpga_core::fixed::{Overflow, Rounding};
    let w = dst.width as f64;
    let rounds = dst.frac() < src.frac() && dst.rounding != Rounding::Trn;
    let saturates = (dst.int < src.int || (src.signed && !dst.signed)) && dst.overflow != Overflow::Wrap;
    (w * (if rounds { ROUND_LUT_PER_BIT } else { 0.0 } + if saturates { SATURATE_LUT_PER_BIT } else { 0.0 })).ceil() as u64
}

/// Loop counters, address generation, handshakes and the FSM of one dataflow process, by kind.
/// A convolution's (several nested loops, stride phases, line-buffer row, window and weight
/// addresses) is the review's 250-600 LUT taken at 400 with its counters narrowed to ap_uint;
/// the single-loop processes (add, split, pad, pool, ports) keep 150 LUT / 150 FF.
pub fn control(kind: &str) -> Resources {
    match kind {
        "conv" | "dense" => Resources::logic(400, 300),
        _ => Resources::logic(150, 150),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_by_hand() {
        // 16×144 8-bit weights (2,304 words, 18,432 bits): 9-wide shape → 1 × ⌈2304/2048⌉ = 2.
        assert_eq!(memory(2304, 8, 1).bram_18k, 2);
        // Four banks of 576 words: each 1 × ⌈576/2048⌉ = 1 block.
        assert_eq!(memory(2304, 8, 4).bram_18k, 4);
        // A 3-row line buffer of 32 pixels × 16 channels × 8 bits = 1,536 words: 1 block.
        assert_eq!(memory(3 * 32 * 16, 8, 1).bram_18k, 1);
        // Small: 16 words of 16 bits = 256 bits → LUTRAM, 16 SLICEM LUTs.
        assert_eq!(memory(16, 16, 1), Resources::lut_memory(16));
    }

    #[test]
    fn roms_by_hand() {
        use crate::Storage;
        // In LUTs: 8 bits × ⌈2304/64⌉ = 288 LUTs of logic (a ROM needs no SLICEM).
        assert_eq!(rom(Storage::Lutram, 2304, 8), Resources::lut(288));
        // Forced to BRAM even when small.
        assert_eq!(rom(Storage::Bram, 16, 16).bram_18k, 1);
        // Auto: LUTs up to 1,024 bits, else BRAM by shape (144 words of 128 bits: 4 blocks).
        assert_eq!(rom(Storage::Auto, 16, 16), Resources::lut(16));
        assert_eq!(rom(Storage::Auto, 144, 128).bram_18k, 4);
    }

    #[test]
    fn fifos_by_hand() {
        // Depth 2 of 128 bits: flip-flops (2 × 128 + 12 of control) and a read mux of one LUT
        // per 2 bits + 12 of control.
        assert_eq!(FifoImpl::of(2, 128), FifoImpl::Srl);
        assert_eq!(fifo(2, 128, FifoImpl::Srl), Resources::logic(64 + 12, 256 + 12));
        // Depth 16: SRL16s, two bits per SLICEM LUT; an output register per bit.
        assert_eq!(fifo(16, 128, FifoImpl::Srl), Resources { lut: 64 + 12, lut_mem: 64, ff: 128 + 12, ..Default::default() });
        // Depth 32: one SRL32 per bit.
        assert_eq!(FifoImpl::of(32, 512), FifoImpl::Srl);
        assert_eq!(fifo(32, 512, FifoImpl::Srl), Resources { lut: 512 + 12, lut_mem: 512, ff: 512 + 12, ..Default::default() });
        // Depth 77 of 128 bits (9,856 bits): a block RAM, 36-wide shape → ⌈128/36⌉ = 4 blocks.
        assert_eq!(FifoImpl::of(77, 128).pragma(), "bram");
        assert_eq!(fifo(77, 128, FifoImpl::Bram).bram_18k, 4);
        // Depth 40 of 8 bits (320 bits): LUTRAM, 8 bits × ⌈40/64⌉ = 8 SLICEM LUTs + 30 of control.
        assert_eq!(FifoImpl::of(40, 8).pragma(), "lutram");
        assert_eq!(fifo(40, 8, FifoImpl::Lutram), Resources { lut: 8 + 30, lut_mem: 8, ff: 30 + 8, ..Default::default() });
        // URAM: 4K × 72 per block: 1,749 words of 16 bits take one.
        assert_eq!(fifo(1749, 16, FifoImpl::Uram).uram, 1);
    }

    #[test]
    fn conversions_by_hand() {
        let f = |s: &str| rfpga_core::fixed::FixedFormat::parse(s).unwrap();
        // A 22-bit accumulator into <8,3,AP_RND,AP_SAT>: rounds and saturates, 8 × 7.5 = 60.
        assert_eq!(conversion(&f("ap_fixed<22,8>"), &f("ap_fixed<8,3,AP_RND,AP_SAT>")), 60);
        // Truncating and wrapping: wiring.
        assert_eq!(conversion(&f("ap_fixed<22,8>"), &f("ap_fixed<8,3>")), 0);
        // Saturating only (no fraction bit dropped): 8 × 4 = 32.
        assert_eq!(conversion(&f("ap_fixed<10,8>"), &f("ap_fixed<8,3,AP_RND,AP_SAT>")), 32);
        // Nothing dropped: wiring.
        assert_eq!(conversion(&f("ap_fixed<8,3>"), &f("ap_fixed<16,8,AP_RND,AP_SAT>")), 0);
    }

    #[test]
    fn multipliers_by_hand() {
        assert_eq!(multiplier(8, 8, false, DspKind::Dsp48E1), Resources::logic(64, 16));
        assert_eq!(multiplier(8, 8, true, DspKind::Dsp48E1).dsp, 1);
        assert_eq!(multiplier(16, 16, true, DspKind::Dsp48E1).dsp, 1);
        assert_eq!(multiplier(16, 16, false, DspKind::Dsp48E1), Resources::logic(256, 32));
        assert_eq!(multiplier(27, 18, true, DspKind::Dsp48E2).dsp, 1);
        assert_eq!(multiplier(27, 18, true, DspKind::Dsp48E1).dsp, 2);
    }
}
