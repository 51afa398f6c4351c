//! `--engine slurm`: the runs of a sweep as Slurm job arrays, one array per level (teachers,
//! then students), the students' array depending on the teachers' (`afterok`). Submission,
//! state and resubmission go through the real `sbatch`, `squeue` and `sacct`; every submission
//! is recorded in OUT/slurm/submissions.jsonl so that `rfpga sweep status` can ask Slurm about
//! each run's array task. There is no scheduling here beyond what Slurm does.

use crate::plan::Run;
use crate::run::{disk_state, is_executing, training_progress, DiskState};
use anyhow::{bail, Context, Result};
use rfpga_core::io::write_atomic;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub gpus_per_job: Option<u32>,
    /// Time limit of each array task (sbatch --time).
    pub time: Option<String>,
    /// Further sbatch arguments, as they are (--account, --qos, --mem, …).
    pub sbatch_args: Vec<String>,
    /// CPUs of each task (the sweep's threads).
    pub cpus_per_task: usize,
}

/// One job array: its Slurm id and the run of each task index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submission {
    pub job_id: String,
    pub level: String,
    pub runs: Vec<String>,
}

fn slurm_dir(out: &Path) -> PathBuf {
    out.join("slurm")
}

pub fn read_submissions(out: &Path) -> Result<Vec<Submission>> {
    let path = slurm_dir(out).join("submissions.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(Vec::new()) };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}: line {}", path.display(), i + 1)))
        .collect()
}

/// Runs a Slurm client command; its stdout, or an error with its stderr.
fn client(program: &str, args: &[String]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running `{program}` (is Slurm installed and SLURM_CONF or /etc/slurm set up?)"))?;
    if !out.status.success() {
        bail!("`{program} {}` failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Slurm's state of every array task of these jobs still known to it, keyed "JOB_TASK"
/// (squeue for live jobs; sacct for ended ones where accounting is enabled).
pub fn task_states(job_ids: &[String]) -> Result<(HashMap<String, String>, Option<String>)> {
    let mut states = HashMap::new();
    if job_ids.is_empty() {
        return Ok((states, None));
    }
    let ids = job_ids.join(",");
    // squeue fails when none of the ids is known any more: then nothing is live. Any other
    // failure (an unreachable controller) must not make live tasks look ended.
    match client("squeue", &["-h".into(), "-r".into(), "-t".into(), "all".into(), "-j".into(), ids.clone(), "-o".into(), "%i %T".into()]) {
        Ok(text) => {
            for line in text.lines() {
                if let Some((id, state)) = line.trim().split_once(' ') {
                    states.insert(id.to_string(), state.trim().to_string());
                }
            }
        }
        Err(e) if e.to_string().contains("Invalid job id") => {}
        Err(e) => return Err(e.context("asking Slurm for the sweep's tasks")),
    }
    let mut note = None;
    match client("sacct", &["-n".into(), "-P".into(), "-X".into(), "-j".into(), ids, "-o".into(), "JobID,State".into()]) {
        Ok(text) => {
            for line in text.lines() {
                if let Some((id, state)) = line.trim().split_once('|') {
                    // sacct says e.g. "CANCELLED by 0": the first word is the state.
                    let state = state.split_whitespace().next().unwrap_or("").to_string();
                    states.entry(id.to_string()).or_insert(state);
                }
            }
        }
        Err(e) => note = Some(format!("sacct unavailable ({}); ended tasks are judged by their run folders", e.to_string().lines().next().unwrap_or(""))),
    }
    Ok((states, note))
}

/// Whether a task in this Slurm state may still run: anything but an end state. Such a task
/// must not be submitted again.
fn is_live(state: &str) -> bool {
    !matches!(
        state,
        "COMPLETED" | "FAILED" | "CANCELLED" | "TIMEOUT" | "NODE_FAIL" | "OUT_OF_MEMORY" | "BOOT_FAIL" | "DEADLINE" | "PREEMPTED" | "REVOKED" | "DONE" | "DONE?" | "NOT SUBMITTED" | "INCOMPLETE" | "STALE" | "LOST"
    ) && !state.is_empty()
}

/// For each run: its latest array task "JOB_TASK", if it was ever submitted.
fn latest_tasks(subs: &[Submission]) -> HashMap<String, String> {
    let mut tasks = HashMap::new();
    for s in subs {
        for (i, r) in s.runs.iter().enumerate() {
            tasks.insert(r.clone(), format!("{}_{i}", s.job_id));
        }
    }
    tasks
}

/// One run's state as `rfpga sweep status` shows it.
#[derive(Debug, Clone)]
pub struct RunStatus {
    pub id: String,
    /// done, pending, running, failed, not submitted, lost, …
    pub state: String,
    pub task: Option<String>,
    pub detail: String,
}

pub fn status(out: &Path, runs: &[Run]) -> Result<(Vec<RunStatus>, Option<String>)> {
    let subs = read_submissions(out)?;
    let tasks = latest_tasks(&subs);
    let jobs: Vec<String> = subs.iter().map(|s| s.job_id.clone()).collect();
    let (slurm, note) = task_states(&jobs)?;
    let mut rows = Vec::new();
    for r in runs {
        let task = tasks.get(&r.id).cloned();
        let disk = disk_state(out, r);
        let slurm_state = task.as_ref().and_then(|t| slurm.get(t)).cloned();
        let (state, detail) = match (&disk, &slurm_state) {
            (DiskState::Done, _) => ("done".to_string(), String::new()),
            (_, Some(s)) if is_live(s) => (s.to_lowercase(), String::new()),
            (DiskState::Failed(cmd), s) => ("failed".to_string(), format!("{cmd}{}", s.as_ref().map_or(String::new(), |s| format!(" (Slurm: {s})")))),
            (DiskState::Stale, _) => ("stale".into(), "finished once; its settings, outputs or teacher changed since".into()),
            (_, Some(s)) => (if s == "COMPLETED" { "lost".to_string() } else { s.to_lowercase() }, "no finished outputs".into()),
            (DiskState::Started, _) if is_executing(out, r) => ("running".into(), format!("executing ({})", training_progress(out, r).unwrap_or_else(|| "before its first epoch".into()))),
            (DiskState::Started, None) if task.is_some() => ("lost".into(), "started, not finished, unknown to Slurm".into()),
            (_, None) if task.is_some() => ("lost".into(), "unknown to Slurm, no outputs".into()),
            (DiskState::Started, None) => ("incomplete".into(), "started here, not finished (running elsewhere, or interrupted)".into()),
            _ => ("not submitted".into(), String::new()),
        };
        rows.push(RunStatus { id: r.id.clone(), state, task, detail });
    }
    Ok((rows, note))
}

/// Submits the runs that are neither finished nor live in Slurm: teachers as one array,
/// students as another that starts after it (`afterok`). `exec` is the command line of one run
/// with `$ID` where the run id goes. Returns the new submissions.
/// `rerun`: submit finished runs again too (never live ones).
pub fn submit(out: &Path, runs: &[Run], exec: &[String], opts: &SlurmOptions, workdir: &Path, rerun: bool) -> Result<Vec<Submission>> {
    let (current, _) = status(out, runs)?;
    let submit_now: Vec<&Run> = runs
        .iter()
        .zip(&current)
        .filter(|(_, s)| !((s.state == "done" && !rerun) || is_live(&s.state.to_uppercase())))
        .map(|(r, _)| r)
        .collect();
    let live: HashMap<&str, &str> = current.iter().filter(|s| is_live(&s.state.to_uppercase())).filter_map(|s| s.task.as_deref().map(|t| (s.id.as_str(), t))).collect();
    let dir = slurm_dir(out);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let script = dir.join("run-task.sh");
    let exec_line = exec.iter().map(|a| if a == "$ID" { "\"$ID\"".to_string() } else { crate::run::shell_quote(a) }).collect::<Vec<_>>().join(" ");
    write_atomic(
        &script,
        format!(
            "#!/bin/bash\n# rfpga sweep: one array task runs one run, the run on line SLURM_ARRAY_TASK_ID+1 of the list file.\nset -euo pipefail\nID=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" \"$1\")\nexec {exec_line}\n"
        )
        .as_bytes(),
    )?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    // Teachers in one array; students in one array per teacher still to finish, each waiting
    // for its own teacher's task (so a failed teacher cancels only its students), and one
    // array for the students whose teachers are done.
    let mut batches: Vec<(String, Vec<&Run>)> = Vec::new();
    let teachers: Vec<&Run> = submit_now.iter().copied().filter(|r| r.teacher.is_none()).collect();
    if !teachers.is_empty() {
        batches.push(("teachers".into(), teachers));
    }
    let mut by_teacher: std::collections::BTreeMap<&str, Vec<&Run>> = Default::default();
    for r in submit_now.iter().copied().filter(|r| r.teacher.is_some()) {
        by_teacher.entry(r.teacher.as_deref().expect("filtered")).or_default().push(r);
    }
    let mut new: Vec<Submission> = Vec::new();
    let mut student_batches: Vec<(Option<String>, Vec<&Run>)> = Vec::new();
    let mut free = Vec::new();
    for (t, runs) in by_teacher {
        let waits = submit_now.iter().any(|r| r.id == t) || live.contains_key(t);
        if waits {
            student_batches.push((Some(t.to_string()), runs));
        } else {
            free.extend(runs);
        }
    }
    if !free.is_empty() {
        student_batches.push((None, free));
    }
    let submit_batch = |level: &str, batch: &[&Run], dependency: Option<String>, new: &mut Vec<Submission>| -> Result<String> {
        let list = dir.join(format!("{stamp}-{level}.txt"));
        write_atomic(&list, batch.iter().map(|r| format!("{}\n", r.id)).collect::<String>().as_bytes())?;
        let mut args: Vec<String> = vec![
            "--parsable".into(),
            format!("--job-name=rfpga-{level}"),
            format!("--array=0-{}", batch.len() - 1),
            format!("--output={}", dir.join("%A_%a.out").display()),
            format!("--chdir={}", workdir.display()),
            format!("--cpus-per-task={}", opts.cpus_per_task),
        ];
        if let Some(p) = &opts.partition {
            args.push(format!("--partition={p}"));
        }
        if let Some(g) = opts.gpus_per_job {
            // Per job: each array task is one job of one task.
            args.push(format!("--gpus={g}"));
        }
        if let Some(t) = &opts.time {
            args.push(format!("--time={t}"));
        }
        if let Some(d) = dependency {
            args.push(format!("--dependency=afterok:{d}"));
            args.push("--kill-on-invalid-dep=yes".into());
        }
        args.extend(opts.sbatch_args.iter().cloned());
        args.push(script.display().to_string());
        args.push(list.display().to_string());
        let text = client("sbatch", &args)?;
        let job_id = text.trim().split(';').next().unwrap_or("").to_string();
        if job_id.is_empty() || !job_id.chars().all(|c| c.is_ascii_digit()) {
            bail!("sbatch printed `{}`, expected a job id", text.trim());
        }
        let sub = Submission { job_id: job_id.clone(), level: level.split('-').next().unwrap_or(level).into(), runs: batch.iter().map(|r| r.id.clone()).collect() };
        let path = dir.join("submissions.jsonl");
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).with_context(|| format!("opening {}", path.display()))?;
        writeln!(f, "{}", serde_json::to_string(&sub)?)?;
        f.sync_all()?;
        new.push(sub);
        Ok(job_id)
    };
    let mut task_of: HashMap<String, String> = live.iter().map(|(r, t)| (r.to_string(), t.to_string())).collect();
    for (level, batch) in &batches {
        let job = submit_batch(level, batch, None, &mut new)?;
        for (i, r) in batch.iter().enumerate() {
            task_of.insert(r.id.clone(), format!("{job}_{i}"));
        }
    }
    for (k, (teacher, batch)) in student_batches.iter().enumerate() {
        let dependency = teacher.as_ref().map(|t| task_of.get(t).cloned().expect("a waiting teacher has a task"));
        submit_batch(&format!("students-{k}"), batch, dependency, &mut new)?;
    }
    Ok(new)
}

/// Waits until none of the runs' array tasks is pending or running in Slurm. A run found done
/// is not checked again while waiting (its outputs are hashed once, not at every poll); the
/// states returned at the end come from one full check of every run.
pub fn wait(out: &Path, runs: &[Run], poll: std::time::Duration, progress: &dyn Fn(&[RunStatus])) -> Result<Vec<RunStatus>> {
    let mut done: HashMap<String, RunStatus> = HashMap::new();
    loop {
        let pending: Vec<Run> = runs.iter().filter(|r| !done.contains_key(&r.id)).cloned().collect();
        let (fresh, _) = status(out, &pending)?;
        let live = fresh.iter().any(|r| is_live(&r.state.to_uppercase()));
        for r in fresh.iter().filter(|r| r.state == "done") {
            done.insert(r.id.clone(), r.clone());
        }
        let rows: Vec<RunStatus> = runs.iter().map(|r| done.get(&r.id).or_else(|| fresh.iter().find(|f| f.id == r.id)).cloned().expect("every run has a state")).collect();
        progress(&rows);
        if !live {
            return Ok(status(out, runs)?.0);
        }
        std::thread::sleep(poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SweepFile;

    /// A run started here is "running" while a process holds its lock (with its training's
    /// progress), "incomplete" once none does.
    #[test]
    fn a_run_whose_lock_is_held_is_running_with_its_progress() {
        let sweep = SweepFile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sweeps/tiny.toml")).unwrap();
        let runs = crate::plan::plan(&sweep);
        let run = &runs[0];
        let out = tempfile::tempdir().unwrap();
        let train = crate::plan::run_dir(out.path(), &run.id).join("train");
        std::fs::create_dir_all(&train).unwrap();
        let started = r#"{"state":"running","host":"h","pid":1,"command":null,"exit":null,"seconds":null}"#;
        std::fs::write(crate::plan::run_dir(out.path(), &run.id).join("status.json"), started).unwrap();
        std::fs::write(train.join("train.json"), r#"{"epochs":30}"#).unwrap();
        std::fs::write(train.join("metrics.jsonl"), "{\"epoch\":1,\"test_acc\":0.5}\n{\"epoch\":2,\"test_acc\":0.8396}\n").unwrap();
        let state = |out: &Path| status(out, std::slice::from_ref(run)).unwrap().0.remove(0);

        let lock = std::fs::File::create(out.path().join("runs").join(format!("{}.lock", run.id))).unwrap();
        lock.try_lock().unwrap();
        let s = state(out.path());
        assert_eq!((s.state.as_str(), s.detail.as_str()), ("running", "executing (epoch 2/30, test 83.96 %)"));
        // Looking does not disturb the holder: its lock is still exclusive.
        assert!(matches!(std::fs::File::open(out.path().join("runs").join(format!("{}.lock", run.id))).unwrap().try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)));

        lock.unlock().unwrap();
        let s = state(out.path());
        assert_eq!(s.state, "incomplete", "{}", s.detail);
    }
}
