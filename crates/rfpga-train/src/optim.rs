//! SGD with momentum (optionally Nesterov) and PyTorch-style (coupled, L2) weight
//! decay, written over tch tensors so that its state (the momentum buffers) can be saved in a
//! checkpoint and restored exactly: libtorch's own optimizer state is not reachable from tch,
//! and an exact `--resume` needs it.
//!
//! Also the learning-rate schedules.

use serde::{Deserialize, Serialize};
use tch::Tensor;

pub struct Param {
    pub name: String,
    pub tensor: Tensor,
    pub decay: bool,
    pub momentum: Tensor,
}

pub struct Sgd {
    pub params: Vec<Param>,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

impl Sgd {
    /// `params`: (name, variable, whether weight decay applies).
    pub fn new(params: Vec<(String, Tensor, bool)>, momentum: f64, nesterov: bool, weight_decay: f64) -> Self {
        let params = params
            .into_iter()
            .map(|(name, tensor, decay)| {
                let momentum = tch::no_grad(|| tensor.zeros_like());
                Param { name, tensor, decay, momentum }
            })
            .collect();
        Sgd { params, momentum, nesterov, weight_decay }
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.tensor.zero_grad();
        }
    }

    /// One step, exactly PyTorch's `torch.optim.SGD` (dampening 0):
    /// d = g + wd·p; buf = μ·buf + d; p -= lr·(nesterov ? d + μ·buf : buf).
    pub fn step(&mut self, lr: f64) {
        let (mu, wd, nesterov) = (self.momentum, self.weight_decay, self.nesterov);
        tch::no_grad(|| {
            for p in &mut self.params {
                let g = p.tensor.grad();
                if !g.defined() {
                    continue;
                }
                let d = if p.decay && wd != 0.0 { g + &p.tensor * wd } else { g };
                if mu == 0.0 {
                    let _ = p.tensor.g_add_(&(d * -lr));
                    continue;
                }
                let _ = p.momentum.g_mul_scalar_(mu).g_add_(&d);
                let update = if nesterov { d + &p.momentum * mu } else { p.momentum.shallow_clone() };
                let _ = p.tensor.g_add_(&(update * -lr));
            }
        });
    }
}

/// Learning rate as a function of the step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Schedule {
    /// He et al.: the rate is divided by `1/gamma` at each milestone epoch.
    MultiStep { milestones: Vec<usize>, gamma: f64 },
    /// Cosine from the peak to 0 after a linear warm-up of `warmup_epochs`.
    Cosine { warmup_epochs: f64 },
    /// One cycle: linear warm-up over `warmup_frac` of all steps, then cosine to 0.
    OneCycle { warmup_frac: f64 },
}

impl Schedule {
    /// The rate at `step` (0-based) of `total` steps, `per_epoch` steps an epoch.
    pub fn lr(&self, peak: f64, step: usize, total: usize, per_epoch: usize) -> f64 {
        let cosine = |t: f64| 0.5 * (1.0 + (std::f64::consts::PI * t.clamp(0.0, 1.0)).cos());
        match self {
            Schedule::MultiStep { milestones, gamma } => {
                let epoch = step / per_epoch.max(1);
                peak * gamma.powi(milestones.iter().filter(|&&m| epoch >= m).count() as i32)
            }
            Schedule::Cosine { warmup_epochs } => {
                let warm = (warmup_epochs * per_epoch as f64).round() as usize;
                if step < warm {
                    peak * (step + 1) as f64 / warm as f64
                } else {
                    peak * cosine((step - warm) as f64 / (total - warm).max(1) as f64)
                }
            }
            Schedule::OneCycle { warmup_frac } => {
                let warm = ((warmup_frac * total as f64).round() as usize).max(1);
                if step < warm {
                    peak * (step + 1) as f64 / warm as f64
                } else {
                    peak * cosine((step - warm) as f64 / (total - warm).max(1) as f64)
                }
            }
        }
    }

    /// Parses `multistep:100,150[,gamma=0.1]`, `cosine[:warmup=1]`, `onecycle[:0.15]`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (kind, args) = s.split_once(':').unwrap_or((s, ""));
        let bad = |why: &str| format!("--schedule `{s}`: {why} (expected multistep:E1,E2[,gamma=G], cosine[:warmup=E] or onecycle[:FRAC])");
        match kind {
            "multistep" => {
                let mut milestones = Vec::new();
                let mut gamma = 0.1;
                for a in args.split(',').filter(|a| !a.is_empty()) {
                    if let Some(g) = a.strip_prefix("gamma=") {
                        gamma = g.parse().map_err(|_| bad("gamma is not a number"))?;
                    } else {
                        milestones.push(a.parse().map_err(|_| bad("a milestone is not an epoch number"))?);
                    }
                }
                Ok(Schedule::MultiStep { milestones, gamma })
            }
            "cosine" => {
                let w = args.strip_prefix("warmup=").unwrap_or(if args.is_empty() { "0" } else { args });
                Ok(Schedule::Cosine { warmup_epochs: w.parse().map_err(|_| bad("warmup is not a number"))? })
            }
            "onecycle" => {
                let f: f64 = if args.is_empty() { 0.15 } else { args.parse().map_err(|_| bad("not a fraction"))? };
                if !(0.0..1.0).contains(&f) {
                    return Err(bad("the warm-up fraction must be in [0, 1)"));
                }
                Ok(Schedule::OneCycle { warmup_frac: f })
            }
            _ => Err(bad("unknown kind")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let m = Schedule::parse("multistep:2,3").unwrap();
        assert_eq!(m.lr(0.1, 0, 40, 10), 0.1);
        assert!((m.lr(0.1, 25, 40, 10) - 0.01).abs() < 1e-12);
        assert!((m.lr(0.1, 39, 40, 10) - 0.001).abs() < 1e-12);
        let o = Schedule::parse("onecycle:0.25").unwrap();
        assert!((o.lr(0.2, 9, 40, 10) - 0.2).abs() < 1e-12); // end of warm-up
        assert!((o.lr(0.2, 0, 40, 10) - 0.02).abs() < 1e-12);
        assert!(o.lr(0.2, 39, 40, 10) < 1e-3);
        assert!(Schedule::parse("cosine:warmup=x").is_err());
        assert!(Schedule::parse("linear").unwrap_err().contains("unknown kind"));
    }

    #[test]
    fn sgd_matches_the_pytorch_update_rule() {
        // Hand-derived: p=1, g=0.5, wd=0.1, μ=0.9, lr=0.1, Nesterov.
        // step 1: d=0.6, buf=0.6, upd=0.6+0.54=1.14, p=0.886
        // step 2: g=0.5 again, d=0.5+0.0886=0.5886, buf=0.54+0.5886=1.1286, upd=0.5886+1.01574=1.60434, p=0.725566
        let p = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
        let mut sgd = Sgd::new(vec![("p".into(), p.shallow_clone(), true)], 0.9, true, 0.1);
        for want in [0.886f32, 0.725566] {
            sgd.zero_grad();
            (&p * 0.5).sum(tch::Kind::Float).backward();
            sgd.step(0.1);
            assert!((p.double_value(&[0]) as f32 - want).abs() < 1e-6, "{} vs {want}", p.double_value(&[0]));
        }
    }
}
