//! `--engine slurm`: the runs of a sweep as Slurm job arrays, one array per level (teachers,
//! then students), the students' array depending on the teachers' (`afterok`). Submission,
//! state and resubmission go through the real `sbatch`, `squeue` and `sacct`; every submission
//! is recorded in OUT/slurm/submissions.jsonl so that `rfpga sweep status` can ask Slurm about
//! each run's array task. There is no scheduling here beyond what Slurm does.

use crate::plan::Run;
use crate::run::{disk_state, DiskState};
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
    // squeue fails when none of the ids is known any more: then there is nothing live.
    if let Ok(text) = client("squeue", &["-h".into(), "-r".into(), "-t".into(), "all".into(), "-j".into(), ids.clone(), "-o".into(), "%i %T".into()]) {
        for line in text.lines() {
            if let Some((id, state)) = line.trim().split_once(' ') {
                states.insert(id.to_string(), state.trim().to_string());
            }
        }
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

/// Live states: a task in one of them must not be submitted again.
fn is_live(state: &str) -> bool {
    matches!(state, "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "REQUEUED" | "RESIZING" | "SUSPENDED")
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
            (_, Some(s)) => (if s == "COMPLETED" { "lost".to_string() } else { s.to_lowercase() }, "no finished outputs".into()),
            (DiskState::Started, None) if task.is_some() => ("lost".into(), "started, not finished, unknown to Slurm".into()),
            (_, None) if task.is_some() => ("lost".into(), "unknown to Slurm, no outputs".into()),
            _ => ("not submitted".into(), String::new()),
        };
        rows.push(RunStatus { id: r.id.clone(), state, task, detail });
    }
    Ok((rows, note))
}

/// Submits the runs that are neither finished nor live in Slurm: teachers as one array,
/// students as another that starts after it (`afterok`). `exec` is the command line of one run
/// with `$ID` where the run id goes. Returns the new submissions.
pub fn submit(out: &Path, runs: &[Run], exec: &[String], opts: &SlurmOptions, workdir: &Path) -> Result<Vec<Submission>> {
    let (current, _) = status(out, runs)?;
    let submit_now: Vec<&Run> = runs
        .iter()
        .zip(&current)
        .filter(|(_, s)| !(s.state == "done" || is_live(&s.state.to_uppercase())))
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
    let mut new = Vec::new();
    let mut teacher_jobs: Vec<String> = Vec::new();
    for (level, teachers) in [("teachers", true), ("students", false)] {
        let batch: Vec<&Run> = submit_now.iter().copied().filter(|r| r.teacher.is_none() == teachers).collect();
        if batch.is_empty() {
            continue;
        }
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
            args.push(format!("--gpus-per-task={g}"));
        }
        if let Some(t) = &opts.time {
            args.push(format!("--time={t}"));
        }
        if !teachers {
            // Students wait for the teachers submitted now and for those still live in Slurm.
            let mut deps = teacher_jobs.clone();
            for r in &batch {
                if let Some(task) = r.teacher.as_deref().and_then(|t| live.get(t)) {
                    deps.push(task.to_string());
                }
            }
            deps.sort();
            deps.dedup();
            if !deps.is_empty() {
                args.push(format!("--dependency=afterok:{}", deps.join(":")));
                args.push("--kill-on-invalid-dep=yes".into());
            }
        }
        args.extend(opts.sbatch_args.iter().cloned());
        args.push(script.display().to_string());
        args.push(list.display().to_string());
        let text = client("sbatch", &args)?;
        let job_id = text.trim().split(';').next().unwrap_or("").to_string();
        if job_id.is_empty() || !job_id.chars().all(|c| c.is_ascii_digit()) {
            bail!("sbatch printed `{}`, expected a job id", text.trim());
        }
        let sub = Submission { job_id: job_id.clone(), level: level.into(), runs: batch.iter().map(|r| r.id.clone()).collect() };
        let path = dir.join("submissions.jsonl");
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).with_context(|| format!("opening {}", path.display()))?;
        writeln!(f, "{}", serde_json::to_string(&sub)?)?;
        f.sync_all()?;
        if teachers {
            teacher_jobs.push(job_id);
        }
        new.push(sub);
    }
    Ok(new)
}

/// Waits until none of the runs' array tasks is pending or running in Slurm.
pub fn wait(out: &Path, runs: &[Run], poll: std::time::Duration, progress: &dyn Fn(&[RunStatus])) -> Result<Vec<RunStatus>> {
    loop {
        let (rows, _) = status(out, runs)?;
        progress(&rows);
        if !rows.iter().any(|r| is_live(&r.state.to_uppercase())) {
            return Ok(rows);
        }
        std::thread::sleep(poll);
    }
}
