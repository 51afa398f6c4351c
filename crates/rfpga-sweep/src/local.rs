//! `--engine local`: the runs of a sweep on this machine, at most `jobs` at a time, each a
//! child `rfpga sweep exec` process; a student starts when its teacher has finished. Finished
//! runs are skipped, so a killed sweep resumes where it stopped.

use crate::plan::{run_dir, Run};
use crate::run::{is_done, log_path};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct LocalReport {
    /// Finished before this invocation.
    pub skipped: Vec<String>,
    pub finished: Vec<String>,
    pub failed: Vec<String>,
    /// Not started because their teacher failed.
    pub blocked: Vec<String>,
}

enum State {
    Waiting,
    Running(Child, Instant),
    Finished,
    Failed,
    Blocked,
}

/// Runs `runs` (a subset of the plan, teachers included where needed) with at most `jobs`
/// processes. `exec_args` makes the child command: `rfpga sweep exec FILE --out OUT --run ID`.
/// `rerun`: run the finished ones again too.
pub fn run_local(exe: &Path, exec_args: &dyn Fn(&str) -> Vec<String>, out: &Path, runs: &[Run], all: &[Run], jobs: usize, rerun: bool) -> Result<LocalReport> {
    let mut report = LocalReport::default();
    let mut state: HashMap<&str, State> = HashMap::new();
    for r in runs {
        if !rerun && is_done(out, r) {
            report.skipped.push(r.id.clone());
            state.insert(&r.id, State::Finished);
        } else {
            state.insert(&r.id, State::Waiting);
        }
    }
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let bar = ProgressBar::new(runs.len() as u64);
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} runs  {msg}  [{elapsed_precise}]").expect("valid template"));
    bar.set_position(report.skipped.len() as u64);
    if !report.skipped.is_empty() {
        bar.suspend(|| println!("{} of {} runs already finished: skipped", report.skipped.len(), runs.len()));
    }
    // A teacher outside `runs` (e.g. with --only) must already be finished; checked once.
    let outside: HashMap<&str, bool> = runs
        .iter()
        .filter_map(|r| r.teacher.as_deref())
        .filter(|t| !runs.iter().any(|r| r.id == *t))
        .map(|t| (t, all.iter().find(|r| r.id == t).is_some_and(|r| is_done(out, r))))
        .collect();
    let teacher_done = |id: &str, state: &HashMap<&str, State>| match state.get(id) {
        Some(State::Finished) => Some(true),
        Some(State::Failed) | Some(State::Blocked) => Some(false),
        Some(_) => None,
        None => Some(outside.get(id).copied().unwrap_or(false)),
    };
    loop {
        // Reap.
        for r in runs {
            let Some(State::Running(child, started)) = state.get_mut(r.id.as_str()) else { continue };
            if let Some(code) = child.try_wait().with_context(|| format!("waiting for run {}", r.id))? {
                let secs = started.elapsed().as_secs_f64();
                if code.success() && is_done(out, r) {
                    bar.suspend(|| println!("done    {} ({secs:.0} s)", r.id));
                    report.finished.push(r.id.clone());
                    state.insert(&r.id, State::Finished);
                } else {
                    bar.suspend(|| println!("FAILED  {} ({code}); log: {}", r.id, log_path(out, &r.id).display()));
                    report.failed.push(r.id.clone());
                    state.insert(&r.id, State::Failed);
                }
                bar.inc(1);
            }
        }
        // Block students of failed teachers; start what is ready.
        let mut running = state.values().filter(|s| matches!(s, State::Running(..))).count();
        for r in runs {
            if !matches!(state.get(r.id.as_str()), Some(State::Waiting)) {
                continue;
            }
            let ready = match &r.teacher {
                None => Some(true),
                Some(t) => teacher_done(t, &state),
            };
            match ready {
                Some(false) => {
                    bar.suspend(|| println!("blocked {} (its teacher {} did not finish)", r.id, r.teacher.as_deref().unwrap_or("")));
                    report.blocked.push(r.id.clone());
                    state.insert(&r.id, State::Blocked);
                    bar.inc(1);
                }
                Some(true) if running < jobs => {
                    let log = logs.join(format!("{}.txt", r.id));
                    let file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
                    let child = Command::new(exe)
                        .args(exec_args(&r.id))
                        .stdin(Stdio::null())
                        .stdout(file.try_clone()?)
                        .stderr(file)
                        .spawn()
                        .with_context(|| format!("starting {}", exe.display()))?;
                    bar.suspend(|| println!("start   {} → {}", r.id, run_dir(out, &r.id).display()));
                    state.insert(&r.id, State::Running(child, Instant::now()));
                    running += 1;
                }
                _ => {}
            }
        }
        let count = |f: fn(&State) -> bool| state.values().filter(|s| f(s)).count();
        let (done, failed, waiting) = (count(|s| matches!(s, State::Finished)), count(|s| matches!(s, State::Failed | State::Blocked)), count(|s| matches!(s, State::Waiting)));
        bar.set_message(format!("done {done} · running {running} · failed {failed} · waiting {waiting}"));
        if running == 0 && waiting == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bar.finish_and_clear();
    Ok(report)
}

/// The runs chosen by `--only`: run ids (any of them) and KEY=VALUE filters on depth, shortcut,
/// seed, format (or its short spelling, e.g. fx8.3), skips and kd (all of them), plus the
/// unfinished teachers the chosen students need. No selectors: every run.
pub fn select(all: &[Run], only: &[String], out: &Path) -> Result<Vec<Run>> {
    if only.is_empty() {
        return Ok(all.to_vec());
    }
    let (filters, ids): (Vec<&String>, Vec<&String>) = only.iter().partition(|s| s.contains('='));
    for id in &ids {
        if !all.iter().any(|r| &&r.id == id) {
            let known: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
            anyhow::bail!("--only {id}: no such run in the sweep (runs: {})", known.join(", "));
        }
    }
    let mut conditions = Vec::new();
    for f in &filters {
        let (key, value) = f.split_once('=').expect("partitioned on '='");
        if !["depth", "shortcut", "seed", "format", "skips", "kd"].contains(&key) {
            anyhow::bail!("--only {f}: unknown key `{key}` (expected depth, shortcut, seed, format, skips or kd)");
        }
        conditions.push((key, value));
    }
    let matches = |r: &Run| {
        let c = &r.config;
        conditions.iter().all(|&(key, value)| match key {
            "depth" => c.depth.to_string() == value,
            "shortcut" => c.shortcut == value,
            "seed" => c.seed.to_string() == value,
            "format" => c.format == value || crate::plan::format_slug(&c.format) == value,
            "skips" => c.skips == value,
            _ => c.kd.as_deref() == Some(value),
        })
    };
    let chosen: Vec<&Run> = all.iter().filter(|r| (ids.is_empty() || ids.contains(&&r.id)) && matches(r)).collect();
    if chosen.is_empty() {
        anyhow::bail!("--only {}: matches no run of the sweep", only.join(" --only "));
    }
    let needed = |r: &Run| {
        chosen.iter().any(|c| c.id == r.id)
            || (!is_done(out, r) && chosen.iter().any(|c| c.teacher.as_deref() == Some(r.id.as_str())))
    };
    Ok(all.iter().filter(|r| needed(r)).cloned().collect())
}

/// Absolute form of a path, for commands that run elsewhere (Slurm jobs, other folders).
pub fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir().context("reading the current directory")?.join(p))
    }
}
