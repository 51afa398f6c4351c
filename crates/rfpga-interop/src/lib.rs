//! rfpga-interop: rfpga and the tools around it, without libtorch.
//! - [`onnx`]: a run's float network exported as ONNX (`rfpga export onnx`).
//! - [`torch`]: a PyTorch CIFAR ResNet state dict (safetensors) imported as a run (`rfpga import torch`).

pub mod onnx;
pub mod torch;
