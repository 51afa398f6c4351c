//! rfpga-core: what every stage shares, with no libtorch: the model description, strict tensor
//! files (safetensors) and atomic file writes.

pub mod error;
pub mod io;
pub mod model;
pub mod tensors;

pub use error::{Error, Result};
pub use model::{BlockPos, BlockSpec, ModelSpec, Shortcut, Skip, TensorSpec};
pub use tensors::{NamedTensor, TensorFile};
