//! Resource counts and the building blocks every layer formula uses: memories (BRAM_18K or
//! LUTRAM by size and shape), multipliers (DSP or LUTs by operand width), FIFOs.
//! The constants are assumptions, documented in docs/estimate.md with their error ranges.
//! Each layer kind's formula (`hw/<kind>.rs`) is built from these.

use serde::Serialize;
use std::ops::{Add, AddAssign};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Resources {
    pub bram_18k: u64,
    pub dsp: u64,
    pub ff: u64,
    pub lut: u64,
    pub uram: u64,
}

impl Add for Resources {
    type Output = Resources;
    fn add(self, o: Resources) -> Resources {
        Resources { bram_18k: self.bram_18k + o.bram_18k, dsp: self.dsp + o.dsp, ff: self.ff + o.ff, lut: self.lut + o.lut, uram: self.uram + o.uram }
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

/// A memory of `entries` words of `width` bits split into `banks` independent banks (array
/// partitioning): per bank the cheapest BRAM_18K shape, or LUTRAM when small (a LUT6 holds 64
/// bits).
pub fn memory(entries: u64, width: u64, banks: u64) -> Resources {
    if entries == 0 || width == 0 {
        return Resources::default();
    }
    let banks = banks.max(1);
    let per_bank = entries.div_ceil(banks);
    if per_bank * width <= LUTRAM_MAX_BITS {
        return Resources::lut(banks * width * per_bank.div_ceil(64));
    }
    let blocks = BRAM_SHAPES.iter().map(|&(w, d)| width.div_ceil(w) * per_bank.div_ceil(d)).min().expect("shapes");
    Resources { bram_18k: banks * blocks, ..Default::default() }
}

/// A memory bound to a given kind (`set_directive_bind_storage`); `Auto` is [`memory`].
pub fn memory_as(storage: crate::Storage, entries: u64, width: u64, banks: u64) -> Resources {
    use crate::Storage;
    if entries == 0 || width == 0 {
        return Resources::default();
    }
    let banks = banks.max(1);
    let per_bank = entries.div_ceil(banks);
    match storage {
        Storage::Auto => memory(entries, width, banks),
        Storage::Lutram => Resources::lut(banks * width * per_bank.div_ceil(64)),
        Storage::Bram => {
            let blocks = BRAM_SHAPES.iter().map(|&(w, d)| width.div_ceil(w) * per_bank.div_ceil(d)).min().expect("shapes");
            Resources { bram_18k: banks * blocks, ..Default::default() }
        }
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
/// a Vitis estimate, to 88, FINN-R's formula: docs/estimate-sources.md) or in DSP slices tiling
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

/// What a stream FIFO is built from. Codegen binds every FIFO to this explicitly
/// (`#pragma HLS BIND_STORAGE type=fifo impl=…`): left to Vitis (`config_storage fifo`
/// defaults, UG1399: SRL only up to depth 2 and 1,024 bits) most of these FIFOs would become
/// memories, and the estimate would not describe the generated design.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FifoImpl {
    Srl,
    Lutram,
    Bram,
}

impl FifoImpl {
    /// Shift registers up to [`SRL_MAX_DEPTH`]; deeper, the memory [`memory`] would pick.
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
        }
    }
}

/// A stream FIFO of `depth` words of `width` bits, as [`FifoImpl::of`] builds it: shift
/// registers when shallow (a LUT holds two 16-deep or one 32-deep SRL per bit, UG949; FINN's
/// estimate counts the same), a memory when deep; plus its control.
pub fn fifo(depth: u64, width: u64) -> Resources {
    let control = Resources::logic(12, 12);
    match FifoImpl::of(depth, width) {
        FifoImpl::Srl if depth <= 16 => Resources::logic(width.div_ceil(2), width) + control,
        FifoImpl::Srl => Resources::logic(width, width) + control,
        // Read/write pointers and full/empty logic, and the output register.
        FifoImpl::Lutram => memory_as(crate::Storage::Lutram, depth, width, 1) + Resources::logic(30, 30 + width),
        FifoImpl::Bram => memory_as(crate::Storage::Bram, depth, width, 1) + Resources::logic(30, 30 + width),
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

/// Loop counters, address generation and handshakes of one dataflow stage.
pub fn stage_control() -> Resources {
    Resources::logic(120, 150)
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
        // 64×144 words of 8 bits in 16 banks: 576 words each → 16 blocks.
        assert_eq!(memory(9216, 8, 16).bram_18k, 16);
        // A 3-row line buffer of 32 pixels × 16 channels × 8 bits = 1,536 words: 1 block.
        assert_eq!(memory(3 * 32 * 16, 8, 1).bram_18k, 1);
        // Small: 16 biases of 16 bits = 256 bits → LUTRAM, 16 LUTs.
        assert_eq!(memory(16, 16, 1), Resources::lut(16));
        // A skip FIFO of 128 pixels of 16×8 bits: 36-wide shape, ⌈128/36⌉ = 4 blocks.
        assert_eq!(memory(128, 128, 1).bram_18k, 4);
    }

    #[test]
    fn bound_memories_by_hand() {
        use crate::Storage;
        // In LUTRAM: 8 bits × ⌈2304/64⌉ = 288 LUTs.
        assert_eq!(memory_as(Storage::Lutram, 2304, 8, 1), Resources::lut(288));
        // Forced to BRAM even when small.
        assert_eq!(memory_as(Storage::Bram, 16, 16, 1).bram_18k, 1);
    }

    #[test]
    fn fifos_by_hand() {
        // Depth 2 of 128 bits: SRL16s, two bits per LUT → 64 LUTs + 12 of control; a register per bit.
        assert_eq!(FifoImpl::of(2, 128), FifoImpl::Srl);
        assert_eq!(fifo(2, 128), Resources::logic(64 + 12, 128 + 12));
        // Depth 32: one SRL32 per bit.
        assert_eq!(FifoImpl::of(32, 512), FifoImpl::Srl);
        assert_eq!(fifo(32, 512), Resources::logic(512 + 12, 512 + 12));
        // Depth 77 of 128 bits (9,856 bits): a block RAM, 36-wide shape → ⌈128/36⌉ = 4 blocks.
        assert_eq!(FifoImpl::of(77, 128).pragma(), "bram");
        assert_eq!(fifo(77, 128).bram_18k, 4);
        // Depth 40 of 8 bits (320 bits): LUTRAM, 8 bits × ⌈40/64⌉ = 8 LUTs + 30 of control.
        assert_eq!(FifoImpl::of(40, 8).pragma(), "lutram");
        assert_eq!(fifo(40, 8), Resources::logic(8 + 30, 30 + 8));
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
