//! rfpga-sweep: experiment sweeps. A sweep file (TOML) names a grid of pipeline runs; each run
//! is the ordinary `rfpga` commands (train or distill → freeze → sim → estimate), executed by
//! `rfpga sweep exec` on this machine (`--engine local`, a bounded pool) or as Slurm job arrays
//! (`--engine slurm`). Finished runs carry checksummed outputs and are never run twice;
//! `rfpga summarize` turns the runs into tables and figures. No libtorch here: the runs are
//! child processes.

pub mod local;
pub mod plan;
pub mod run;
pub mod slurm;
pub mod spec;
pub mod summary;

pub use plan::{plan, Run, RunConfig};
pub use spec::SweepFile;
