//! A sweep file expanded into runs: one teacher per (depth, shortcut, seed), trained with
//! `rfpga train`, and one student per further (format, skips, kd) combination, distilled from
//! its teacher with `rfpga distill`. Every run then goes through `rfpga freeze`, `rfpga sim`
//! and `rfpga estimate` (one per part). A run is exactly the ordinary commands; [`Run::steps`]
//! lists them.

use crate::spec::{Stage, SweepFile};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What distinguishes one run from another: the grid point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunConfig {
    pub depth: usize,
    pub shortcut: String,
    pub seed: u64,
    /// "float" or the QAT weight format.
    pub format: String,
    /// keep, remove or shorten.
    pub skips: String,
    /// The distillation loss (students only).
    pub kd: Option<String>,
}

impl RunConfig {
    /// The configuration without its seed: runs that differ only in seed are aggregated.
    pub fn group(&self) -> String {
        let kd = self.kd.as_deref().map_or(String::new(), |k| format!(", KD {k}"));
        format!("ResNet-{}{} {} skips {}{kd}", self.depth, self.shortcut, self.format, self.skips)
    }
}

#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    pub config: RunConfig,
    /// The teacher run (of this sweep) this one distills from.
    pub teacher: Option<String>,
    /// Or a finished run folder outside the sweep (`[teacher] run`).
    pub external_teacher: Option<PathBuf>,
    /// A digest of everything that determines the run's outputs: a changed sweep file reruns
    /// exactly the runs whose settings changed (and their students).
    pub digest: String,
}

/// A short, file-name-safe spelling of a format: "ap_fixed<8,3>" → "fx8.3",
/// "ap_fixed<8,3,AP_RND,AP_SAT>" → "fx8.3-rnd-sat".
pub fn format_slug(format: &str) -> String {
    if format == "float" {
        return "float".into();
    }
    let inner = format.trim_start_matches("ap_").replace("ufixed<", "ufx").replace("fixed<", "fx").replace('>', "");
    let mut parts = inner.split(',').map(str::trim);
    let head = parts.next().unwrap_or_default().to_string();
    let width_int = parts.next().map_or(head.clone(), |i| format!("{head}.{i}"));
    let modes: Vec<String> = parts.map(|m| m.trim_start_matches("AP_").to_ascii_lowercase()).collect();
    std::iter::once(width_int).chain(modes).collect::<Vec<_>>().join("-")
}

fn digest_of(value: &serde_json::Value) -> String {
    let hash = Sha256::digest(value.to_string().as_bytes());
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// All runs of the sweep, teachers first.
pub fn plan(sweep: &SweepFile) -> Vec<Run> {
    let g = &sweep.grid;
    let mut common = serde_json::json!({
        "data_dir": sweep.data_dir, "threads": sweep.threads, "parts": sweep.parts, "sim_limit": sweep.sim_limit,
        "float_freeze_weights": sweep.float_freeze_weights,
    });
    // Only when set, so the runs of sweeps written before it keep their digests.
    if let Some(n) = sweep.csim_images {
        common["csim_images"] = n.into();
        common["ap_types"] = serde_json::json!(sweep.ap_types);
    }
    let mut teachers = Vec::new();
    let mut students = Vec::new();
    if let Some(path) = &sweep.teacher.run {
        // One teacher from outside: every grid point is a student (kd none: trained alone).
        for &depth in &g.depth {
            for shortcut in &g.shortcut {
                for &seed in &g.seed {
                    for format in &g.format {
                        for skips in &g.skips {
                            for kd in &g.kd {
                                let config = RunConfig { depth, shortcut: shortcut.clone(), seed, format: format.clone(), skips: skips.clone(), kd: Some(kd.clone()) };
                                let id = format!("r{depth}{shortcut}-s{seed}-{}-{skips}-{kd}", format_slug(format));
                                let digest = digest_of(&serde_json::json!({"config": config, "stage": sweep.student, "teacher": path, "common": common}));
                                let external_teacher = (kd != "none").then(|| path.clone());
                                students.push(Run { id, config, teacher: None, external_teacher, digest });
                            }
                        }
                    }
                }
            }
        }
        return students;
    }
    for &depth in &g.depth {
        for shortcut in &g.shortcut {
            for &seed in &g.seed {
                let config = RunConfig { depth, shortcut: shortcut.clone(), seed, format: "float".into(), skips: "keep".into(), kd: None };
                let id = format!("r{depth}{shortcut}-s{seed}-float-keep");
                let digest = digest_of(&serde_json::json!({"config": config, "stage": sweep.teacher, "common": common}));
                let teacher = Run { id, config, teacher: None, external_teacher: None, digest };
                for format in &g.format {
                    for skips in &g.skips {
                        if format == "float" && skips == "keep" {
                            continue; // the teacher itself
                        }
                        for kd in &g.kd {
                            let config = RunConfig { depth, shortcut: shortcut.clone(), seed, format: format.clone(), skips: skips.clone(), kd: Some(kd.clone()) };
                            let id = format!("r{depth}{shortcut}-s{seed}-{}-{skips}-{kd}", format_slug(format));
                            let digest = digest_of(&serde_json::json!({"config": config, "stage": sweep.student, "teacher": teacher.digest, "common": common}));
                            let teacher_id = (kd != "none").then(|| teacher.id.clone());
                            students.push(Run { id, config, teacher: teacher_id, external_teacher: None, digest });
                        }
                    }
                }
                teachers.push(teacher);
            }
        }
    }
    teachers.into_iter().chain(students).collect()
}

/// Where a run's files live.
pub fn run_dir(out: &Path, id: &str) -> PathBuf {
    out.join("runs").join(id)
}

fn stage_args(s: &Stage) -> Vec<String> {
    let mut a = Vec::new();
    let mut opt = |flag: &str, v: Option<String>| {
        if let Some(v) = v {
            a.push(flag.to_string());
            a.push(v);
        }
    };
    opt("--epochs", s.epochs.map(|v| v.to_string()));
    opt("--batch-size", s.batch_size.map(|v| v.to_string()));
    opt("--lr", s.lr.map(|v| v.to_string()));
    opt("--schedule", s.schedule.clone());
    opt("--weight-decay", s.weight_decay.map(|v| v.to_string()));
    opt("--train-images", s.limit_train.map(|v| v.to_string()));
    opt("--test-images", s.limit_test.map(|v| v.to_string()));
    a.extend(s.args.iter().cloned());
    a
}

impl Run {
    /// The `rfpga` command lines of this run, in order (arguments after the program name).
    pub fn steps(&self, sweep: &SweepFile, out: &Path) -> Vec<Vec<String>> {
        let dir = run_dir(out, &self.id);
        let p = |rel: &str| dir.join(rel).display().to_string();
        let data = sweep.data_dir.display().to_string();
        let threads = sweep.threads.to_string();
        let c = &self.config;
        let teacher_dir = match (&self.teacher, &self.external_teacher) {
            (Some(t), _) => Some(run_dir(out, t).join("train")),
            (None, Some(p)) => Some(p.clone()),
            (None, None) => None,
        };
        let student = self.config.kd.is_some();
        let mut train: Vec<String> = match &teacher_dir {
            None => {
                let mut v = vec!["train".into(), "--depth".into(), c.depth.to_string(), "--shortcut".into(), c.shortcut.clone()];
                if student {
                    // Trained alone with the students' settings: the without-KD baseline.
                    let skips = match c.skips.as_str() {
                        "none" => "none",
                        "short" | "short-random" => "short",
                        _ => "long",
                    };
                    v.extend(["--skips".into(), skips.into()]);
                    if c.format != "float" {
                        v.extend(["--weight-format".into(), c.format.clone()]);
                        if let Some(a) = &sweep.student.act_format {
                            v.extend(["--act-format".into(), a.clone()]);
                        }
                    }
                }
                v
            }
            Some(t) => {
                let mut v = vec!["distill".into(), "--teacher".into(), t.display().to_string()];
                v.extend(["--kd".into(), c.kd.clone().unwrap_or_else(|| "hinton".into())]);
                if c.skips == "none" {
                    // A skipless student from random weights, taught by the teacher.
                    v.extend(["--skips".into(), "none".into(), "--init".into(), "random".into()]);
                } else if c.skips == "short" {
                    // Short skips from the first epoch, from the teacher's weights.
                    v.extend(["--skips".into(), "short".into()]);
                } else if c.skips == "short-random" {
                    v.extend(["--skips".into(), "short".into(), "--init".into(), "random".into()]);
                } else {
                    v.extend(["--skip-policy".into(), c.skips.clone()]);
                }
                if c.skips == "remove" || c.skips == "shorten" {
                    if let Some(e) = sweep.student.every {
                        v.extend(["--every".into(), e.to_string()]);
                    }
                    if let Some(f) = sweep.student.finetune {
                        v.extend(["--finetune".into(), f.to_string()]);
                    }
                }
                if c.format != "float" {
                    v.extend(["--weight-format".into(), c.format.clone()]);
                    if let Some(a) = &sweep.student.act_format {
                        v.extend(["--act-format".into(), a.clone()]);
                    }
                }
                v
            }
        };
        let stage = if student { &sweep.student } else { &sweep.teacher };
        // Unset epochs: the command's own default (train 30; distill 30 with skips kept, every ·
        // changes + finetune with a skip policy).
        train.extend(stage_args(stage));
        train.extend(["--seed".into(), c.seed.to_string(), "--data-dir".into(), data.clone(), "--threads".into(), threads.clone(), "--quiet".into(), "--out".into(), p("train")]);
        let mut steps = vec![train];
        let mut quantize = vec!["freeze".into(), p("train"), "--out".into(), p("frozen"), "--data-dir".into(), data.clone()];
        if c.format == "float" {
            quantize.extend(["--weight-format".into(), sweep.float_freeze_weights.clone()]);
        }
        steps.push(quantize);
        let mut sim = vec!["sim".into(), p("frozen"), "--data-dir".into(), data, "--threads".into(), threads, "--json".into(), p("sim.json")];
        if let Some(n) = sweep.sim_limit {
            sim.extend(["--images".into(), n.to_string()]);
        }
        steps.push(sim);
        for part in &sweep.parts {
            steps.push(vec!["estimate".into(), p("frozen"), "--part".into(), part.clone(), "--json".into(), p(&format!("estimate-{part}.json"))]);
        }
        if let (Some(n), Some(part)) = (sweep.csim_images, sweep.parts.first()) {
            let data = sweep.data_dir.display().to_string();
            steps.push(vec!["codegen".into(), p("frozen"), "--out".into(), p("hls"), "--part".into(), part.clone(), "--images".into(), n.to_string(), "--data-dir".into(), data]);
            steps.push(vec!["csim".into(), p("hls"), "--ap-types".into(), sweep.ap_types.display().to_string(), "--threaded".into()]);
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(format_slug("float"), "float");
        assert_eq!(format_slug("ap_fixed<8,3>"), "fx8.3");
        assert_eq!(format_slug("ap_fixed<8,3,AP_RND,AP_SAT>"), "fx8.3-rnd-sat");
        assert_eq!(format_slug("ap_ufixed<8,0>"), "ufx8.0");
    }

    /// The short-skip students: distill with short skips from the start, from the teacher's
    /// weights (`short`) or random ones (`short-random`); never a skip policy.
    #[test]
    fn short_skip_students() {
        for (skips, init_random) in [("short", false), ("short-random", true)] {
            let text = format!(
                "format = \"rfpga-sweep\"\nversion = 1\nname = \"t\"\n[grid]\ndepth = [8]\nformat = [\"ap_fixed<8,3>\"]\nskips = [\"{skips}\"]\nkd = [\"mse\"]\n[teacher]\nrun = \"T\"\n"
            );
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.toml");
            std::fs::write(&path, text).unwrap();
            let sweep = SweepFile::load(&path).unwrap();
            let runs = plan(&sweep);
            assert_eq!(runs.len(), 1);
            let train = &runs[0].steps(&sweep, dir.path())[0];
            let has = |pair: [&str; 2]| train.windows(2).any(|w| w[0] == pair[0] && w[1] == pair[1]);
            assert_eq!(train[0], "distill");
            assert!(has(["--skips", "short"]), "{train:?}");
            assert_eq!(has(["--init", "random"]), init_random, "{train:?}");
            assert!(!train.iter().any(|a| a == "--skip-policy" || a == "--every"), "{train:?}");
        }
    }
}
