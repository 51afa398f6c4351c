//! Executing one run (`rfpga sweep exec`, what both engines start) and knowing whether a run is
//! finished: `done.json`, written last and atomically, holds the SHA-256 of every output file
//! and the run's settings digest. A run counts as finished only if all of them still match.

use crate::plan::{run_dir, Run};
use crate::spec::SweepFile;
use anyhow::{bail, Context, Result};
use rfpga_core::io::{read_json, write_json_atomic};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub const DONE_FORMAT: &str = "rfpga-sweep-done";
pub const RESULT_FORMAT: &str = "rfpga-sweep-result";
/// The version of done.json and of result.json.
pub const DONE_VERSION: u32 = 1;
pub const RESULT_VERSION: u64 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Done {
    pub format: String,
    pub version: u32,
    pub run: String,
    pub digest: String,
    /// Output files (relative to the run folder) and their SHA-256.
    pub files: BTreeMap<String, String>,
    /// A student's input: the SHA-256 of its teacher's weights when it was distilled (a
    /// teacher trained again makes its students unfinished).
    #[serde(default)]
    pub teacher_weights: Option<String>,
}

/// The SHA-256 of a teacher run's weights, if present.
fn teacher_weights(out: &Path, run: &Run) -> Option<String> {
    match (&run.teacher, &run.external_teacher) {
        (Some(t), _) => sha256_file(&run_dir(out, t).join("train/weights.safetensors")).ok(),
        (None, Some(p)) => sha256_file(&p.join("weights.safetensors")).ok(),
        (None, None) => None,
    }
}

/// Whether the files a `done.json` lists all still have their recorded SHA-256.
pub fn outputs_intact(dir: &Path, done: &Done) -> bool {
    !done.files.is_empty() && done.files.iter().all(|(rel, sha)| sha256_file(&dir.join(rel)).is_ok_and(|s| &s == sha))
}

/// What a run's state is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskState {
    Done,
    /// `status.json` says it failed (with the failed command).
    Failed(String),
    /// `status.json` says it started and it has not finished.
    Started,
    /// It finished once, but its settings, outputs or teacher changed since.
    Stale,
    Absent,
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("reading {}", path.display()))?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Reads a done.json: its format and version first, then its fields (unknown ones refused).
pub fn read_done(path: &Path) -> Result<Done> {
    let v = rfpga_core::io::read_json_with_header(path, DONE_FORMAT, DONE_VERSION.into())?;
    serde_json::from_value(v).with_context(|| path.display().to_string())
}

/// Whether the run is finished with its current settings and untouched outputs.
pub fn is_done(out: &Path, run: &Run) -> bool {
    let dir = run_dir(out, &run.id);
    let Ok(done) = read_done(&dir.join("done.json")) else { return false };
    done.run == run.id
        && done.digest == run.digest
        && done.teacher_weights == teacher_weights(out, run)
        && outputs_intact(&dir, &done)
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {
    /// running, failed or done.
    pub state: String,
    pub host: String,
    pub pid: u32,
    /// The failed command, when failed.
    pub command: Option<String>,
    pub exit: Option<i32>,
    /// Seconds from start to the end (done or failed).
    pub seconds: Option<f64>,
    /// The run's settings digest and its teacher's weights when this attempt started: an
    /// interrupted attempt with the same ones is continued (`--resume`), not started afresh.
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub teacher_weights: Option<String>,
}

fn lock_path(out: &Path, run: &Run) -> PathBuf {
    out.join("runs").join(format!("{}.lock", run.id))
}

/// Whether a process executes the run now: its lock is held (by `exec` on this machine, or on
/// a host sharing this file system). Taken shared for an instant, which `exec` waits out.
pub fn is_executing(out: &Path, run: &Run) -> bool {
    File::open(lock_path(out, run)).is_ok_and(|f| matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)))
}

/// A run's training so far: the last line of its metrics.jsonl and its planned epochs (from
/// train.json, when readable). None before its first epoch.
fn last_epoch(out: &Path, run: &Run) -> Option<(serde_json::Value, Option<u64>)> {
    let train = run_dir(out, &run.id).join("train");
    let metrics = std::fs::read_to_string(train.join("metrics.jsonl")).ok()?;
    let last: serde_json::Value = serde_json::from_str(metrics.lines().rfind(|l| !l.trim().is_empty())?).ok()?;
    let epochs = read_json::<serde_json::Value>(&train.join("train.json")).ok().and_then(|t| t["epochs"].as_u64());
    Some((last, epochs))
}

/// "epoch 8/30, test 83.95 %": how far an executing run's training is, from its metrics.
pub fn training_progress(out: &Path, run: &Run) -> Option<String> {
    let (last, epochs) = last_epoch(out, run)?;
    Some(format!(
        "epoch {}{}, test {:.2} %",
        last["epoch"].as_u64()?,
        epochs.map_or(String::new(), |e| format!("/{e}")),
        100.0 * last["test_acc"].as_f64()?
    ))
}

/// How much training the unfinished runs still need, at the mean training time of the
/// finished runs of the same kind (teachers, students), less the epochs an unfinished run has
/// already done: "about 5.4 h of training left (students: 68 min each, the mean of 3 finished)".
/// One line for `rfpga sweep status`; None when every run is finished. `finished`: whether a
/// run is done (as the caller already worked out, [`is_done`]).
pub fn training_left(out: &Path, runs: &[Run], finished: impl Fn(&Run) -> bool) -> Option<String> {
    let minutes = |r: &Run| {
        let result = read_json::<serde_json::Value>(&run_dir(out, &r.id).join("result.json")).ok()?;
        result["trained"]["train_seconds"].as_f64().map(|s| s / 60.0)
    };
    // The fraction of its epochs a run has still to train (1 before its first epoch).
    let to_do = |r: &Run| -> f64 {
        match last_epoch(out, r) {
            Some((last, Some(n))) if n > 0 => last["epoch"].as_f64().map_or(1.0, |k| (1.0 - k / n as f64).clamp(0.0, 1.0)),
            _ => 1.0,
        }
    };
    // Students carry a KD setting ("none" for one trained alone); teachers none.
    let is_student = |r: &Run| r.config.kd.is_some();
    let mut left = 0.0;
    let mut said = Vec::new();
    let mut unknown = Vec::new();
    for (kind, student) in [("teachers", false), ("students", true)] {
        let (done, open): (Vec<&Run>, Vec<&Run>) = runs.iter().filter(|r| is_student(r) == student).partition(|r| finished(r));
        if open.is_empty() {
            continue;
        }
        let took: Vec<f64> = done.iter().filter_map(|r| minutes(r)).collect();
        if took.is_empty() {
            unknown.push(kind);
            continue;
        }
        let mean = took.iter().sum::<f64>() / took.len() as f64;
        left += mean * open.iter().map(|r| to_do(r)).sum::<f64>();
        said.push(format!("{kind}: {mean:.0} min each, the mean of {} finished", took.len()));
    }
    if said.is_empty() && unknown.is_empty() {
        return None;
    }
    let mut line = if said.is_empty() { String::new() } else { format!("about {:.1} h of training left ({}; one run at a time)", left / 60.0, said.join("; ")) };
    if !unknown.is_empty() {
        let more = format!("{} unknown until one finishes", unknown.join(" and "));
        line = if line.is_empty() { format!("training left: {more}") } else { format!("{line}; {more}") };
    }
    Some(line)
}

pub fn disk_state(out: &Path, run: &Run) -> DiskState {
    if is_done(out, run) {
        return DiskState::Done;
    }
    match read_json::<Status>(&run_dir(out, &run.id).join("status.json")) {
        Ok(s) if s.state == "failed" => DiskState::Failed(s.command.unwrap_or_default()),
        Ok(s) if s.state == "done" => DiskState::Stale,
        Ok(_) => DiskState::Started,
        Err(_) => DiskState::Absent,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

/// Whether the folder holds an interrupted attempt of this very run (same settings, same teacher
/// weights) whose training completed at least one epoch: it is continued with `--resume`.
fn continues(out: &Path, run: &Run, dir: &Path) -> bool {
    read_json::<Status>(&dir.join("status.json")).is_ok_and(|s| {
        s.digest.as_deref() == Some(run.digest.as_str()) && s.teacher_weights == teacher_weights(out, run)
    }) && dir.join("train/checkpoint.safetensors").exists()
}

/// Runs the steps of `run` with the `rfpga` program `exe`, logging to RUN/log.txt, and writes
/// result.json and done.json. An interrupted attempt of the same run continues its training
/// from the last complete epoch; a folder left by other settings is started afresh; a finished
/// run is left alone unless `force`. Whatever fails after the run started is
/// recorded in RUN/status.json.
pub fn exec(sweep: &SweepFile, out: &Path, run: &Run, all: &[Run], exe: &Path, force: bool) -> Result<()> {
    if let Some(p) = &run.external_teacher {
        if !p.join("summary.json").is_file() && !p.join("import.json").is_file() {
            bail!("run {}: its teacher {} is not a finished run (no summary.json from rfpga train, nor import.json from rfpga import)", run.id, p.display());
        }
    }
    if let Some(t) = &run.teacher {
        let teacher = all.iter().find(|r| &r.id == t).expect("plan names its teachers");
        if !is_done(out, teacher) {
            bail!("run {}: its teacher {t} is not finished ({})", run.id, run_dir(out, t).display());
        }
    }
    std::fs::create_dir_all(out.join("runs")).with_context(|| format!("creating {}", out.join("runs").display()))?;
    // One process per run at a time, whichever engine started it.
    let lock_path = lock_path(out, run);
    let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).with_context(|| format!("opening {}", lock_path.display()))?;
    // `sweep status` holds the lock shared for an instant (is_executing): retry for a second.
    let mut locked = lock.try_lock().is_ok();
    for _ in 0..20 {
        if locked {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        locked = lock.try_lock().is_ok();
    }
    if !locked {
        bail!("run {} is being executed by another process ({} is locked)", run.id, lock_path.display());
    }
    if !force && is_done(out, run) {
        println!("{}: already finished", run.id);
        return Ok(());
    }
    let dir = run_dir(out, &run.id);
    let resume = !force && continues(out, run, &dir);
    if dir.exists() && !resume {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing the earlier attempt {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let started = Instant::now();
    let mut status = Status {
        state: "running".into(),
        host: hostname(),
        pid: std::process::id(),
        command: None,
        exit: None,
        seconds: None,
        digest: Some(run.digest.clone()),
        teacher_weights: teacher_weights(out, run),
    };
    write_json_atomic(&dir.join("status.json"), &status)?;
    let result = run_steps(sweep, out, run, exe, &dir, &mut status, resume);
    status.seconds = Some(started.elapsed().as_secs_f64());
    match result {
        Ok(done) => {
            status.state = "done".into();
            write_json_atomic(&dir.join("status.json"), &status)?;
            write_json_atomic(&dir.join("done.json"), &done)?;
            drop(lock);
            Ok(())
        }
        Err(e) => {
            status.state = "failed".into();
            if status.command.is_none() {
                status.command = Some(format!("{e:#}"));
            }
            write_json_atomic(&dir.join("status.json"), &status)?;
            Err(e)
        }
    }
}

/// The steps, then the result and the record of what was produced.
fn run_steps(sweep: &SweepFile, out: &Path, run: &Run, exe: &Path, dir: &Path, status: &mut Status, resume: bool) -> Result<Done> {
    let teacher_before = teacher_weights(out, run);
    let log_path = dir.join("log.txt");
    let mut log = OpenOptions::new()
        .create(true)
        .append(resume)
        .write(true)
        .truncate(!resume)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut steps = run.steps(sweep, out);
    if resume {
        // The training step continues from its checkpoint, or is skipped once it finished.
        let train = dir.join("train");
        if train.join("summary.json").exists() {
            steps.remove(0);
        } else {
            let threads = sweep.threads.to_string();
            steps[0] = vec![steps[0][0].clone(), "--resume".into(), train.display().to_string(), "--threads".into(), threads, "--quiet".into()];
        }
        writeln!(log, "# continuing the interrupted attempt")?;
    }
    for step in steps {
        let line = format!("rfpga {}", step.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "));
        writeln!(log, "$ {line}")?;
        log.flush()?;
        let code = Command::new(exe)
            .args(&step)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            .status()
            .with_context(|| format!("starting {}", exe.display()))?;
        if !code.success() {
            status.command = Some(line.clone());
            status.exit = code.code();
            bail!("run {}: `{line}` failed ({code}); log: {}", run.id, log_path.display());
        }
    }
    let result = collect_result(sweep, run, dir)?;
    write_json_atomic(&dir.join("result.json"), &result)?;
    let mut files = BTreeMap::new();
    for rel in output_files(sweep) {
        files.insert(rel.clone(), sha256_file(&dir.join(&rel))?);
    }
    if teacher_weights(out, run) != teacher_before {
        bail!("run {}: the teacher's weights changed while the student trained", run.id);
    }
    Ok(Done { format: DONE_FORMAT.into(), version: DONE_VERSION, run: run.id.clone(), digest: run.digest.clone(), files, teacher_weights: teacher_before })
}

/// The files a finished run must have (relative to its folder).
fn output_files(sweep: &SweepFile) -> Vec<String> {
    let mut v: Vec<String> = ["result.json", "train/weights.safetensors", "train/model.json", "train/summary.json", "frozen/frozen.json", "frozen/weights.safetensors", "sim.json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(sweep.parts.iter().map(|p| format!("estimate-{p}.json")));
    v
}

pub fn shell_quote(a: &str) -> String {
    if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c)) {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

/// A run's results in one file: the trained model's accuracy (float or QAT, as trained), the
/// frozen model's simulated accuracy, the skip-change curve and the estimates.
fn collect_result(sweep: &SweepFile, run: &Run, dir: &Path) -> Result<serde_json::Value> {
    let summary: serde_json::Value = read_json(&dir.join("train/summary.json"))?;
    let sim: serde_json::Value = read_json(&dir.join("sim.json"))?;
    let mut estimates = Vec::new();
    for p in &sweep.parts {
        estimates.push(read_json::<serde_json::Value>(&dir.join(format!("estimate-{p}.json")))?);
    }
    let curve = skip_curve(&dir.join("train/skips.csv"))?;
    Ok(serde_json::json!({
        "format": RESULT_FORMAT,
        "version": RESULT_VERSION,
        "run": run.id,
        "config": run.config,
        "group": run.config.group(),
        "trained": {
            "top1": summary["final_test_acc"],
            "top5": summary["final_test_top5"],
            "epochs": summary["epochs"],
            "test_images": summary["test_images"],
            "train_images": summary["train_images"],
            // Wall time of the training epochs (summed over resumed attempts).
            "train_seconds": summary["train_seconds"],
        },
        "frozen": sim,
        "skip_curve": curve,
        "estimates": estimates,
        // The csim step fails the run on any mismatch or deadlock: here, all passed.
        "csim_images_passed": sweep.csim_images,
    }))
}

/// (skips changed, test accuracy at the end of the interval) from a distill run's skips.csv;
/// point 0 is the accuracy before the first change. Empty without skip changes.
pub fn skip_curve(path: &Path) -> Result<Vec<(usize, f64)>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let rows = rfpga_core::skips::read(path)?;
    let before = rows.first().map(|r| (0, r.acc_before));
    // The last change has no interval end when training stops right after it.
    Ok(before.into_iter().chain(rows.iter().map(|r| (r.step, r.acc_end.unwrap_or(r.acc_after)))).collect())
}

/// The log of a run, for error messages.
pub fn log_path(out: &Path, id: &str) -> PathBuf {
    run_dir(out, id).join("log.txt")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SweepFile;

    /// A teacher is finished only while its done.json is this format and version, names it,
    /// and every output it lists keeps its SHA-256; an unknown field (a file another tool
    /// wrote) or another version makes it unfinished, so the sweep runs it again.
    #[test]
    fn done_json_is_read_strictly() {
        let sweep = SweepFile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sweeps/tiny.toml")).unwrap();
        let runs = crate::plan::plan(&sweep);
        let run = runs.iter().find(|r| r.id == "r8A-s0-float-keep").unwrap();
        let out = tempfile::tempdir().unwrap();
        let dir = run_dir(out.path(), &run.id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("result.json"), "{}").unwrap();
        let done = |version: u32| Done { format: DONE_FORMAT.into(), version, run: run.id.clone(), digest: run.digest.clone(), files: [("result.json".to_string(), sha256_file(&dir.join("result.json")).unwrap())].into(), teacher_weights: None };
        let write = |v: serde_json::Value| std::fs::write(dir.join("done.json"), v.to_string()).unwrap();
        write(serde_json::to_value(done(DONE_VERSION)).unwrap());
        assert!(is_done(out.path(), run));
        write(serde_json::to_value(done(DONE_VERSION + 1)).unwrap());
        assert!(!is_done(out.path(), run), "another version");
        let mut extra = serde_json::to_value(done(DONE_VERSION)).unwrap();
        extra["note"] = "x".into();
        write(extra);
        assert!(!is_done(out.path(), run), "an unknown field");
        write(serde_json::to_value(done(DONE_VERSION)).unwrap());
        std::fs::write(dir.join("result.json"), "{\"changed\": 1}").unwrap();
        assert!(!is_done(out.path(), run), "an output changed since");
    }

    /// The time left is the finished runs' mean per kind times the epochs still to train,
    /// worked out by hand here.
    #[test]
    fn training_left_is_the_finished_runs_mean_times_the_epochs_to_do() {
        let sweep = SweepFile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sweeps/tiny.toml")).unwrap();
        let runs = crate::plan::plan(&sweep);
        let id = |s: &str| runs.iter().find(|r| r.id == s).unwrap().id.clone();
        let (t0, t1, s0) = (id("r8A-s0-float-keep"), id("r8A-s1-float-keep"), id("r8A-s0-float-remove-hinton"));
        let out = tempfile::tempdir().unwrap();
        let write = |run: &str, file: &str, text: &str| {
            let path = run_dir(out.path(), run).join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(&t0, "result.json", r#"{"trained":{"train_seconds":7200}}"#);
        // The second teacher has trained 1 of its 4 epochs: three quarters of 120 min to go.
        write(&t1, "train/train.json", r#"{"epochs":4}"#);
        write(&t1, "train/metrics.jsonl", "{\"epoch\":1,\"test_acc\":0.3}\n");
        let mut done = vec![t0.clone()];
        let left = |done: &[String]| training_left(out.path(), &runs, |r| done.contains(&r.id));
        assert_eq!(
            left(&done).unwrap(),
            "about 1.5 h of training left (teachers: 120 min each, the mean of 1 finished; one run at a time); students unknown until one finishes"
        );
        write(&s0, "result.json", r#"{"trained":{"train_seconds":3600}}"#);
        done.push(s0.clone());
        assert_eq!(
            left(&done).unwrap(),
            "about 2.5 h of training left (teachers: 120 min each, the mean of 1 finished; students: 60 min each, the mean of 1 finished; one run at a time)"
        );
        let all: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
        assert_eq!(left(&all), None);
    }
}
