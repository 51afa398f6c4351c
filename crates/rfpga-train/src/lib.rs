//! rfpga-train: training on libtorch through tch — the only crate of the workspace that links
//! libtorch. The model is built from a [`rfpga_core::ModelSpec`]; its tensors go to and from
//! strictly checked safetensors files ([`rfpga_core::TensorFile`]).

pub mod fused;
pub mod malloc;
pub mod net;
pub mod optim;
pub mod quant;
pub mod resnet;
pub mod trainer;

pub use net::Net;
pub use optim::{Schedule, Sgd};
pub use trainer::{eval_run, evaluate, parse_device, Accuracy, EpochMetrics, Summary, TrainConfig, Trainer};

/// Re-exported so the CLI uses the same tch without naming it.
pub use tch;
