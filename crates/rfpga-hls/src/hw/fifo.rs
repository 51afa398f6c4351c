//! A stream between two processes (`hls::stream` with `#pragma HLS STREAM depth`): what it
//! costs. Its timing is the dataflow model's (`crate::dataflow`): a write needs a free slot, a
//! slot freed by a read is free the next cycle, an element written is readable the next cycle.

pub use super::resources::{fifo as resources, FifoImpl};
