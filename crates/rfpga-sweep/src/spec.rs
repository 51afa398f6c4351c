//! The sweep file (TOML, `rfpga-sweep` version 1): a grid of pipeline runs. See docs/howto/slurm-sweep.md.

use anyhow::{bail, Context, Result};
use rfpga_core::fixed::FixedFormat;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const SWEEP_FORMAT: &str = "rfpga-sweep";
pub const SWEEP_VERSION: u32 = 1;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    pub format: String,
    pub version: u32,
    pub name: String,
    /// Output folder of the sweep (relative to the current directory); `--out` overrides it.
    pub out: Option<PathBuf>,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// libtorch / simulator threads of each run.
    #[serde(default = "one")]
    pub threads: usize,
    /// Parts every frozen model is estimated on.
    #[serde(default)]
    pub parts: Vec<String>,
    /// Simulate the first N test images only (default: all).
    pub sim_limit: Option<usize>,
    /// Also generate each frozen model's HLS project (for the first part) and C-simulate it,
    /// threaded, against the simulator on this many test images (default: none).
    pub csim_images: Option<usize>,
    /// The ap_types headers for the C simulation.
    #[serde(default = "default_ap_types")]
    pub ap_types: PathBuf,
    /// The weight format float-trained runs are frozen at (QAT runs use their own).
    #[serde(default = "default_float_freeze")]
    pub float_freeze_weights: String,
    pub grid: Grid,
    pub teacher: Stage,
    #[serde(default)]
    pub student: Stage,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data/cifar-10-batches-bin")
}

fn default_ap_types() -> PathBuf {
    PathBuf::from("third_party/ap_types")
}

fn default_float_freeze() -> String {
    "ap_fixed<16,6,AP_RND,AP_SAT>".into()
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    pub depth: Vec<usize>,
    #[serde(default = "shortcut_a")]
    pub shortcut: Vec<String>,
    #[serde(default = "seed_0")]
    pub seed: Vec<u64>,
    /// "float" or a QAT weight format such as "ap_fixed<8,3>".
    #[serde(default = "float")]
    pub format: Vec<String>,
    /// keep, remove or shorten (the skips while the student trains), none (a skipless student
    /// from random weights), short (short skips from the start, from the teacher's weights: the
    /// form that folds into a skipless network) or short-random (short skips, random weights).
    #[serde(default = "keep")]
    pub skips: Vec<String>,
    /// Distillation loss of the students: hinton or mse, or none (the student trained alone,
    /// `rfpga train`, with the same settings: the without-KD baseline).
    #[serde(default = "hinton")]
    pub kd: Vec<String>,
}

fn shortcut_a() -> Vec<String> {
    vec!["A".into()]
}
fn seed_0() -> Vec<u64> {
    vec![0]
}
fn float() -> Vec<String> {
    vec!["float".into()]
}
fn keep() -> Vec<String> {
    vec!["keep".into()]
}
fn hinton() -> Vec<String> {
    vec!["hinton".into()]
}

/// Settings of one kind of training command (`rfpga train` for teachers, `rfpga distill` for
/// students); unset fields take the command's defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub lr: Option<f64>,
    pub schedule: Option<String>,
    pub weight_decay: Option<f64>,
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
    /// Students: epochs between two skip changes, and fine-tuning epochs after the last.
    pub every: Option<usize>,
    pub finetune: Option<usize>,
    /// Students: QAT activation format (with a QAT weight format).
    pub act_format: Option<String>,
    /// Further arguments passed to the command as they are.
    #[serde(default)]
    pub args: Vec<String>,
    /// [teacher] only: a finished run folder (trained elsewhere, e.g. by `make deck-teacher` or
    /// `rfpga import torch`) that every student distills from, instead of teachers trained by
    /// the sweep; the students' seeds then vary only the students.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<PathBuf>,
}

impl SweepFile {
    /// Reads and validates a sweep file; every error names the file and the field.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the sweep file {}", path.display()))?;
        let sweep: SweepFile = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
        sweep.validate().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(sweep)
    }

    fn validate(&self) -> Result<()> {
        if self.format != SWEEP_FORMAT {
            bail!("format: expected \"{SWEEP_FORMAT}\", found \"{}\"", self.format);
        }
        if self.version != SWEEP_VERSION {
            bail!("version: expected {SWEEP_VERSION}, found {}", self.version);
        }
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            bail!("name: expected letters, digits, '-' or '_', found \"{}\"", self.name);
        }
        if self.threads == 0 {
            bail!("threads: expected ≥ 1, found 0");
        }
        for (i, p) in self.parts.iter().enumerate() {
            if p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                bail!("parts[{i}]: expected a part or board name, found \"{p}\"");
            }
            rfpga_estimate::parts::find(p).map_err(|e| anyhow::anyhow!("parts[{i}]: {}", e.to_string().trim_start_matches("--part: ")))?;
        }
        let g = &self.grid;
        let nonempty = |name: &str, len: usize| if len == 0 { bail!("grid.{name}: expected at least one value, found none") } else { Ok(()) };
        nonempty("depth", g.depth.len())?;
        nonempty("shortcut", g.shortcut.len())?;
        nonempty("seed", g.seed.len())?;
        nonempty("format", g.format.len())?;
        nonempty("skips", g.skips.len())?;
        nonempty("kd", g.kd.len())?;
        for (i, &d) in g.depth.iter().enumerate() {
            if d < 8 || (d - 2) % 6 != 0 {
                bail!("grid.depth[{i}]: expected 6n+2 with n ≥ 1 (8, 14, 20, 32, 56, 110, …), found {d}");
            }
        }
        for (i, s) in g.shortcut.iter().enumerate() {
            if s != "A" && s != "B" {
                bail!("grid.shortcut[{i}]: expected \"A\" or \"B\", found \"{s}\"");
            }
        }
        for (i, f) in g.format.iter().enumerate() {
            if f != "float" {
                FixedFormat::parse(f).map_err(|e| anyhow::anyhow!("grid.format[{i}]: expected \"float\" or an ap_fixed format, found \"{f}\" ({e})"))?;
            }
        }
        for (i, s) in g.skips.iter().enumerate() {
            if !["keep", "remove", "shorten", "none", "short", "short-random"].contains(&s.as_str()) {
                bail!("grid.skips[{i}]: expected \"keep\", \"remove\", \"shorten\", \"none\", \"short\" or \"short-random\", found \"{s}\"");
            }
        }
        for (i, k) in g.kd.iter().enumerate() {
            if !["hinton", "mse", "none"].contains(&k.as_str()) {
                bail!("grid.kd[{i}]: expected \"hinton\", \"mse\" or \"none\", found \"{k}\"");
            }
        }
        if g.kd.iter().any(|k| k == "none") {
            if let Some(s) = g.skips.iter().find(|s| *s == "remove" || *s == "shorten") {
                bail!("grid.kd: \"none\" trains a student alone (rfpga train), which cannot {s} skips while it trains; put \"{s}\" and kd \"none\" in separate sweep files");
            }
        }
        for (list, name) in [(&g.depth.iter().map(|d| d.to_string()).collect::<Vec<_>>(), "depth"), (&g.shortcut, "shortcut"), (&g.format, "format"), (&g.skips, "skips"), (&g.kd, "kd")] {
            if let Some(dup) = list.iter().enumerate().find(|(i, v)| list[..*i].contains(v)) {
                bail!("grid.{name}[{}]: \"{}\" appears twice", dup.0, dup.1);
            }
        }
        // Two spellings of one format would share a run id (and folder).
        let slugs: Vec<String> = g.format.iter().map(|f| crate::plan::format_slug(f)).collect();
        if let Some((i, s)) = slugs.iter().enumerate().find(|(i, s)| slugs[..*i].contains(s)) {
            let j = slugs.iter().position(|x| x == s).expect("found before");
            bail!("grid.format[{i}]: \"{}\" is \"{}\" (grid.format[{j}]) spelled differently: both would be runs `…-{s}-…`", g.format[i], g.format[j]);
        }
        if let Some(dup) = g.seed.iter().enumerate().find(|(i, v)| g.seed[..*i].contains(v)) {
            bail!("grid.seed[{}]: {} appears twice", dup.0, dup.1);
        }
        for (stage, s) in [("teacher", &self.teacher), ("student", &self.student)] {
            let positive = |field: &str, v: Option<usize>| match v {
                Some(0) => bail!("{stage}.{field}: expected ≥ 1, found 0"),
                _ => Ok(()),
            };
            positive("epochs", s.epochs)?;
            positive("batch_size", s.batch_size)?;
            positive("limit_train", s.limit_train)?;
            positive("limit_test", s.limit_test)?;
            positive("every", s.every)?;
            if let Some(lr) = s.lr {
                if !(lr > 0.0 && lr.is_finite()) {
                    bail!("{stage}.lr: expected a positive number, found {lr}");
                }
            }
            if let Some(f) = &s.act_format {
                FixedFormat::parse(f).map_err(|e| anyhow::anyhow!("{stage}.act_format: expected an ap_fixed format, found \"{f}\" ({e})"))?;
            }
        }
        if self.teacher.every.is_some() || self.teacher.finetune.is_some() || self.teacher.act_format.is_some() {
            bail!("teacher: every, finetune and act_format belong to [student]");
        }
        if self.student.run.is_some() {
            bail!("student.run: only [teacher] takes a finished run");
        }
        if let Some(run) = &self.teacher.run {
            let t = &self.teacher;
            if t.epochs.is_some() || t.batch_size.is_some() || t.lr.is_some() || t.schedule.is_some() || t.weight_decay.is_some() || t.limit_train.is_some() || t.limit_test.is_some() || !t.args.is_empty() {
                bail!("teacher.run: a finished teacher takes no training settings (found them beside run = \"{}\")", run.display());
            }
            if g.depth.len() != 1 || g.shortcut.len() != 1 {
                bail!("teacher.run: one teacher, so one grid.depth and one grid.shortcut (found {} and {})", g.depth.len(), g.shortcut.len());
            }
            if g.format.iter().any(|f| f == "float") && g.skips.iter().any(|s| s == "keep") && g.kd.iter().any(|k| k == "none") {
                bail!("teacher.run: a float student keeping its skips without KD is the teacher's own training; drop one of those grid values");
            }
        }
        FixedFormat::parse(&self.float_freeze_weights)
            .map_err(|e| anyhow::anyhow!("float_freeze_weights: expected an ap_fixed format, found \"{}\" ({e})", self.float_freeze_weights))?;
        if self.sim_limit == Some(0) {
            bail!("sim_limit: expected ≥ 1, found 0");
        }
        if self.csim_images == Some(0) {
            bail!("csim_images: expected ≥ 1, found 0");
        }
        if self.csim_images.is_some() && self.parts.is_empty() {
            bail!("csim_images: the HLS project needs a part: set parts");
        }
        Ok(())
    }

    /// The output folder: `--out`, else the file's `out`, else `sweeps/NAME`.
    pub fn out_dir(&self, cli: Option<&Path>) -> PathBuf {
        cli.map(Path::to_path_buf).or_else(|| self.out.clone()).unwrap_or_else(|| PathBuf::from("sweeps").join(&self.name))
    }
}
