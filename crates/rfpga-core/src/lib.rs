//! rfpga-core: what every stage shares, with no libtorch: the model description, strict tensor
//! files (safetensors), atomic file writes and the ap_fixed arithmetic (`fixed`).

pub mod error;
pub mod fixed;
pub mod formats;
pub mod frozen;
pub mod io;
pub mod model;
pub mod skips;
pub mod tensors;

pub use error::{Error, Result};
pub use fixed::{FixedFormat, Overflow, Rounding};
pub use model::{BlockPos, BlockSpec, ModelSpec, Shortcut, Skip, TensorSpec};
pub use tensors::{IntTensorFile, NamedTensor, TensorFile};
