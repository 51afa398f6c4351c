//! `rfpga sweep` and `rfpga summarize`: a grid of pipeline runs on this machine or a Slurm
//! cluster (crates/rfpga-sweep), and its tables and figures.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use rfpga_sweep::local::{absolute, run_local, select};
use rfpga_sweep::slurm::{self, SlurmOptions};
use rfpga_sweep::{plan, SweepFile};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// A bounded pool of processes on this machine.
    Local,
    /// Slurm job arrays through sbatch (students depend on their teachers' array).
    Slurm,
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    command: Option<SweepCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum SweepCommand {
    /// Each run's state: done, pending, running, failed, lost or not submitted (from Slurm for
    /// submitted runs, else from the run folders).
    Status(StatusArgs),
    /// Execute one run of a sweep (what both engines start; not for direct use).
    #[command(hide = true)]
    Exec(ExecArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The sweep file (TOML; see docs/howto/slurm-sweep.md).
    #[arg(required = true)]
    file: Option<PathBuf>,
    /// Where the runs execute: local (here, --jobs at a time) or slurm (one job per run).
    #[arg(long, value_enum, default_value = "local")]
    engine: Engine,
    /// Runs at a time (local engine).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Output folder (default: the file's `out`, else sweeps/NAME).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only these runs: run ids, or KEY=VALUE filters (depth, shortcut, seed, format, skips, kd;
    /// all must hold); unfinished teachers they need come along. Repeatable.
    #[arg(long)]
    only: Vec<String>,
    /// Slurm partition.
    #[arg(long)]
    partition: Option<String>,
    /// GPUs per array task (Slurm; runs then use --device auto via the sweep file's args).
    #[arg(long)]
    gpus_per_job: Option<u32>,
    /// Time limit per array task, e.g. 04:00:00 (Slurm).
    #[arg(long)]
    time: Option<String>,
    /// Further sbatch arguments, e.g. --sbatch-arg=--account=proj (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    sbatch_arg: Vec<String>,
    /// Slurm: after submitting, wait until no run is pending or running.
    #[arg(long)]
    wait: bool,
    /// Run the selected runs again even if finished (a finished run is otherwise never rerun,
    /// not even after rfpga itself changed).
    #[arg(long)]
    rerun: bool,
    /// Print the runs and their commands; run nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
struct StatusArgs {
    /// The sweep file.
    file: PathBuf,
    /// Output folder (default: the file's `out`, else sweeps/NAME).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct ExecArgs {
    /// The sweep file.
    file: PathBuf,
    /// The sweep's output folder.
    #[arg(long)]
    out: PathBuf,
    /// The run's name.
    #[arg(long)]
    run: String,
    /// Run it again even if finished.
    #[arg(long)]
    force: bool,
}

pub fn sweep(a: SweepArgs) -> Result<()> {
    match a.command {
        Some(SweepCommand::Status(s)) => status(s),
        Some(SweepCommand::Exec(e)) => exec(e),
        None => run(a.run),
    }
}

fn load(file: &Path, out: Option<&Path>) -> Result<(SweepFile, PathBuf, Vec<rfpga_sweep::Run>)> {
    let sweep = SweepFile::load(file)?;
    let out = absolute(&sweep.out_dir(out))?;
    let runs = plan(&sweep);
    Ok((sweep, out, runs))
}

/// The file that marks a folder as a sweep's output (and names the sweep file it ran).
const SWEEP_MARKER: &str = "sweep.json";
const SWEEP_OUTPUT_FORMAT: &str = "rfpga-sweep-output";
const SWEEP_OUTPUT_VERSION: u64 = 1;

/// A sweep writes into a folder it created (marked by sweep.json) or a new or empty one.
fn claim_sweep_dir(out: &Path, sweep: &SweepFile, file: &Path) -> Result<()> {
    rfpga_core::io::claim_output_dir(out, "sweep", &[SWEEP_MARKER])?;
    let marker = serde_json::json!({
        "format": SWEEP_OUTPUT_FORMAT, "version": SWEEP_OUTPUT_VERSION, "name": sweep.name, "file": file.display().to_string(),
        "teacher": sweep.teacher.run.as_ref().map(|t| absolute(t)).transpose()?.map(|t| t.display().to_string()),
    });
    rfpga_core::io::write_json_atomic(&out.join(SWEEP_MARKER), &marker)?;
    Ok(())
}

fn exe() -> Result<PathBuf> {
    std::env::current_exe().context("locating the rfpga executable")
}

fn run(a: RunArgs) -> Result<()> {
    let file = absolute(a.file.as_deref().expect("clap requires FILE"))?;
    let (sweep, out, all) = load(&file, a.out.as_deref())?;
    let runs = select(&all, &a.only, &out)?;
    if a.jobs == 0 {
        bail!("--jobs: expected ≥ 1, found 0");
    }
    if a.engine == Engine::Local && (a.partition.is_some() || a.gpus_per_job.is_some() || a.time.is_some() || !a.sbatch_arg.is_empty() || a.wait) {
        bail!("--partition, --gpus-per-job, --time, --sbatch-arg and --wait belong to --engine slurm");
    }
    if a.dry_run {
        for r in &runs {
            println!("# {}{}", r.id, r.teacher.as_ref().map_or(String::new(), |t| format!(" (after {t})")));
            for step in r.steps(&sweep, &out) {
                println!("rfpga {}", step.iter().map(|s| rfpga_sweep::run::shell_quote(s)).collect::<Vec<_>>().join(" "));
            }
        }
        return Ok(());
    }
    claim_sweep_dir(&out, &sweep, &file)?;
    println!("sweep {}: {} runs ({} selected) → {}", sweep.name, all.len(), runs.len(), out.display());
    let exe = exe()?;
    let rerun = a.rerun;
    let exec_args = |id: &str| {
        let mut v = vec!["sweep".into(), "exec".into(), file.display().to_string(), "--out".into(), out.display().to_string(), "--run".into(), id.to_string()];
        if rerun {
            v.push("--force".into());
        }
        v
    };
    match a.engine {
        Engine::Local => {
            let report = run_local(&exe, &exec_args, &out, &runs, &all, a.jobs, a.rerun)?;
            println!(
                "{} finished now, {} already finished, {} failed, {} blocked by a failed teacher",
                report.finished.len(),
                report.skipped.len(),
                report.failed.len(),
                report.blocked.len()
            );
            if !report.failed.is_empty() || !report.blocked.is_empty() {
                bail!("{} runs did not finish: {}", report.failed.len() + report.blocked.len(), report.failed.iter().chain(&report.blocked).cloned().collect::<Vec<_>>().join(", "));
            }
            Ok(())
        }
        Engine::Slurm => {
            let opts = SlurmOptions { partition: a.partition, gpus_per_job: a.gpus_per_job, time: a.time, sbatch_args: a.sbatch_arg, cpus_per_task: sweep.threads };
            let mut exec = vec![exe.display().to_string()];
            exec.extend(exec_args("$ID"));
            let workdir = std::env::current_dir().context("reading the current directory")?;
            let subs = slurm::submit(&out, &runs, &exec, &opts, &workdir, a.rerun)?;
            if subs.is_empty() {
                println!("nothing to submit: every selected run is finished or pending/running in Slurm");
            }
            for s in &subs {
                println!("submitted {} ({} array tasks): job {}", s.level, s.runs.len(), s.job_id);
            }
            if a.wait {
                let last = std::cell::RefCell::new(String::new());
                let rows = slurm::wait(&out, &runs, std::time::Duration::from_secs(2), &|rows| {
                    let line = counts(rows);
                    if *last.borrow() != line {
                        println!("{line}");
                        *last.borrow_mut() = line;
                    }
                })?;
                let bad: Vec<&str> = rows.iter().filter(|r| r.state != "done").map(|r| r.id.as_str()).collect();
                if !bad.is_empty() {
                    bail!("{} runs did not finish: {} (see `rfpga sweep status {}`)", bad.len(), bad.join(", "), file.display());
                }
            }
            Ok(())
        }
    }
}

fn counts(rows: &[slurm::RunStatus]) -> String {
    let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in rows {
        *by.entry(r.state.as_str()).or_default() += 1;
    }
    by.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(" · ")
}

fn status(a: StatusArgs) -> Result<()> {
    let (_, out, all) = load(&a.file, a.out.as_deref())?;
    let (rows, note) = slurm::status(&out, &all)?;
    let width = rows.iter().map(|r| r.id.len()).max().unwrap_or(3).max(3);
    println!("{:<width$}  {:<14} {:<12} detail", "run", "state", "slurm task");
    for r in &rows {
        println!("{:<width$}  {:<14} {:<12} {}", r.id, r.state, r.task.as_deref().unwrap_or("—"), r.detail);
    }
    println!("{}", counts(&rows));
    let done: std::collections::HashSet<&str> = rows.iter().filter(|r| r.state == "done").map(|r| r.id.as_str()).collect();
    if let Some(left) = rfpga_sweep::run::training_left(&out, &all, |r| done.contains(r.id.as_str())) {
        println!("{left}");
    }
    if let Some(n) = note {
        println!("note: {n}");
    }
    Ok(())
}

fn exec(a: ExecArgs) -> Result<()> {
    let (sweep, out, all) = load(&a.file, Some(&a.out))?;
    let run = all.iter().find(|r| r.id == a.run).with_context(|| format!("{}: no run `{}` in this sweep", a.file.display(), a.run))?;
    rfpga_sweep::run::exec(&sweep, &out, run, &all, &exe()?, a.force)
}

#[derive(Args)]
pub struct SummarizeArgs {
    /// A sweep's output folder (its runs/*/result.json).
    runs_dir: PathBuf,
    /// Where to write summary.md, summary.csv and the figures (default: RUNS_DIR).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The teacher's test accuracy (%) as the figures' reference: the finished teacher the sweep
/// names (its summary.json), else the sweep's own float teachers (mean over seeds). A sweep
/// file that is not an rfpga sweep output is an error; a named teacher that cannot be read (a
/// folder moved since) is said once on stderr and the line left out.
fn teacher_reference(runs_dir: &Path, s: &rfpga_sweep::summary::Summary) -> Result<Option<(String, f64)>> {
    let marker_path = runs_dir.join(SWEEP_MARKER);
    if marker_path.exists() {
        let marker = rfpga_core::io::read_json_with_header(&marker_path, SWEEP_OUTPUT_FORMAT, SWEEP_OUTPUT_VERSION)?;
        if let Some(t) = marker["teacher"].as_str() {
            let path = Path::new(t).join("summary.json");
            let reference = rfpga_core::io::read_json::<serde_json::Value>(&path).map_err(anyhow::Error::from).and_then(|summary| {
                let acc = summary["final_test_acc"].as_f64().with_context(|| format!("{}: field `final_test_acc`: expected a number", path.display()))?;
                let epochs = summary["epochs"].as_u64().map_or(String::new(), |e| format!(", {e} epochs"));
                Ok((format!("teacher ({}, float{epochs})", summary["model"].as_str().unwrap_or("?")), 100.0 * acc))
            });
            return Ok(match reference {
                Ok(r) => Some(r),
                Err(e) => {
                    eprintln!("summarize: no teacher reference line in the figure: {e:#}");
                    None
                }
            });
        }
    }
    let g = s.groups.iter().find(|g| g.config.format == "float" && g.config.skips == "keep" && g.config.kd.is_none());
    Ok(g.map(|g| (format!("teachers (float, n={})", g.trained.n), g.trained.mean)))
}

/// The students that changed no skip (`keep` with KD): the baseline a removal or shortening
/// curve is compared with, drawn beside the teacher as reference lines.
fn kept_skip_references(groups: &[rfpga_sweep::summary::Group]) -> Vec<(String, f64)> {
    groups
        .iter()
        .filter(|g| g.config.skips == "keep" && g.config.kd.is_some())
        .map(|g| (format!("{} (n={})", g.config.group(), g.trained.n), g.trained.mean))
        .collect()
}

/// A configuration's label under a bar: what varies within a sweep.
fn short_group(c: &rfpga_sweep::RunConfig) -> String {
    let format = if c.format == "float" { "float".to_string() } else { rfpga_sweep::plan::format_slug(&c.format) };
    let kd = c.kd.as_deref().map_or("teacher".to_string(), |k| if k == "none" { "no KD".into() } else { format!("KD {k}") });
    format!("R{}{} {format} skips {} {kd}", c.depth, c.shortcut, c.skips)
}

pub fn summarize(a: SummarizeArgs) -> Result<()> {
    let s = rfpga_sweep::summary::summarize(&a.runs_dir)?;
    let out = a.out.unwrap_or_else(|| a.runs_dir.clone());
    rfpga_core::io::claim_output_dir(&out, "summarize", &["summary.md", SWEEP_MARKER])?;
    let md = s.markdown();
    print!("{md}");
    rfpga_core::io::write_atomic(&out.join("summary.md"), md.as_bytes())?;
    rfpga_core::io::write_atomic(&out.join("summary.csv"), s.csv().as_bytes())?;
    rfpga_core::io::write_atomic(&out.join("timing.md"), s.timing_markdown().as_bytes())?;
    let mut written = vec![out.join("summary.md"), out.join("summary.csv"), out.join("timing.md")];
    let curves: Vec<(String, Vec<(usize, f64, f64, f64)>)> =
        s.groups
            .iter()
            .filter(|g| g.skip_curve.len() > 1)
            .map(|g| (format!("{} (n={})", g.config.group(), g.trained.n), g.skip_curve.iter().map(|(k, st)| (*k, st.mean, st.min, st.max)).collect()))
            .collect();
    if !curves.is_empty() {
        let svg = out.join("accuracy-vs-skips.svg");
        let references: Vec<(String, f64)> = teacher_reference(&a.runs_dir, &s)?.into_iter().chain(kept_skip_references(&s.groups)).collect();
        crate::plot::plot_skip_summary(&curves, &references, &svg)?;
        written.push(svg);
    }
    let bars: Vec<(String, [f64; 3], [f64; 3])> =
        s.groups.iter().map(|g| (short_group(&g.config), [g.trained.mean, g.trained.min, g.trained.max], [g.frozen.mean, g.frozen.min, g.frozen.max])).collect();
    let svg = out.join("accuracy.svg");
    crate::plot::plot_accuracy_bars(&bars, &svg)?;
    written.push(svg);
    let parts: Vec<(String, String)> = s.groups.first().map_or(Vec::new(), |g| g.parts.iter().map(|p| (p.part.clone(), p.device.clone())).collect());
    for (k, (part, device)) in parts.iter().enumerate() {
        let bars: Vec<(String, [f64; 5])> = s.groups.iter().map(|g| (g.config.group(), g.parts[k].utilization)).collect();
        let svg = out.join(format!("utilization-{part}.svg"));
        crate::plot::plot_utilization(&bars, device, &svg)?;
        written.push(svg);
    }
    println!("\nWrote {}", written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rfpga_sweep::summary::{Group, Stat};

    fn group(skips: &str, kd: Option<&str>, accs: &[f64]) -> Group {
        let config = rfpga_sweep::RunConfig { depth: 20, shortcut: "A".into(), seed: 0, format: "ap_fixed<8,3,AP_RND,AP_SAT>".into(), skips: skips.into(), kd: kd.map(Into::into) };
        let stat = Stat::of(accs);
        Group { config, runs: vec![], trained: stat, frozen: stat, frozen_images: 0, test_images: 0, parts: vec![], train_minutes: None, skip_curve: vec![] }
    }

    #[test]
    fn the_skip_figure_compares_with_the_students_that_kept_their_skips() {
        let groups = [group("keep", None, &[90.0]), group("keep", Some("mse"), &[88.0, 87.0]), group("remove", Some("mse"), &[86.0, 85.0])];
        let refs = kept_skip_references(&groups);
        assert_eq!(refs, vec![("ResNet-20A ap_fixed<8,3,AP_RND,AP_SAT> skips keep, KD mse (n=2)".to_string(), 87.5)]);
    }
}
