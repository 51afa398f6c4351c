//! SIGKILL in the middle of an epoch, then `--resume` (or the sweep run again): the final
//! weights are bit-identical to an uninterrupted run's and no temporary file is left. Covers
//! `rfpga train`, `rfpga distill` during a skip-removal schedule, and a sweep's student run.
//! Fake CIFAR-10 files and ResNet-8 on one thread keep each run to seconds.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rfpga(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rfpga")).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}:\n{text}");
    text
}

/// The epoch a checkpoint holds (None before the first).
fn checkpoint_epoch(run: &Path) -> Option<usize> {
    let bytes = std::fs::read(run.join("checkpoint.safetensors")).ok()?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).ok()?;
    meta.metadata().as_ref()?.get("epoch")?.parse().ok()
}

/// Starts `args` in a process group of its own; once `run` holds the checkpoint of epoch
/// `after`, waits a fraction of an epoch (measured from the first two checkpoints) and kills the
/// whole group with SIGKILL, before the next epoch completes.
fn kill_mid_epoch(args: &[&str], cwd: &Path, run: &Path, after: usize) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rfpga"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut seen: Vec<(usize, Instant)> = Vec::new();
    loop {
        assert!(started.elapsed() < Duration::from_secs(300), "no checkpoint of epoch {after}");
        assert!(child.try_wait().unwrap().is_none(), "{args:?} ended before it could be killed");
        if let Some(e) = checkpoint_epoch(run) {
            if seen.last().is_none_or(|l| l.0 != e) {
                seen.push((e, Instant::now()));
            }
            if e >= after {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // A third of an epoch in (the epoch time from the last two checkpoints seen, if any).
    let epoch = if seen.len() >= 2 { seen[seen.len() - 1].1 - seen[seen.len() - 2].1 } else { Duration::from_millis(600) };
    std::thread::sleep(epoch / 3);
    // SAFETY: signalling the process group this test created.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let status = child.wait().unwrap();
    assert!(!status.success(), "the process was killed, not finished");
    assert_eq!(checkpoint_epoch(run), Some(after), "killed in the middle of epoch {}", after + 1);
    assert!(!run.join("summary.json").exists());
}

fn temporaries(dir: &Path) -> Vec<PathBuf> {
    common::files_under(dir).into_iter().filter(|p| p.file_name().unwrap().to_string_lossy().ends_with(".tmp")).collect()
}

fn assert_same_run(whole: &Path, resumed: &Path) {
    for f in ["weights.safetensors", "checkpoint.safetensors", "model.json"] {
        let (a, b) = (std::fs::read(whole.join(f)).unwrap(), std::fs::read(resumed.join(f)).unwrap());
        assert!(a == b, "{f} differs between the uninterrupted and the resumed run");
    }
    // The per-epoch records, without their timings.
    let strip = |p: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                let o = v.as_object_mut().unwrap();
                o.retain(|k, _| !k.contains("second") && !k.contains("per_s") && !k.contains("time"));
                v
            })
            .collect()
    };
    assert_eq!(strip(whole), strip(resumed));
    assert!(temporaries(resumed).is_empty(), "left behind: {:?}", temporaries(resumed));
}

#[test]
fn train_and_distill_killed_mid_epoch_resume_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::write_fake_cifar(&data, 400);
    let d = data.to_str().unwrap();
    let common = ["--train-images", "1600", "--test-images", "100", "--threads", "1", "--quiet", "--data-dir", d];

    let train = |out: &Path| -> Vec<String> {
        let mut v: Vec<String> = ["train", "--depth", "8", "--epochs", "3", "--seed", "5"].map(String::from).to_vec();
        v.extend(common.map(String::from));
        v.extend(["--out".into(), out.display().to_string()]);
        v
    };
    let whole = dir.path().join("train-whole");
    rfpga(&train(&whole).iter().map(String::as_str).collect::<Vec<_>>());
    let cut = dir.path().join("train-cut");
    kill_mid_epoch(&train(&cut).iter().map(String::as_str).collect::<Vec<_>>(), dir.path(), &cut, 1);
    rfpga(&["train", "--resume", cut.to_str().unwrap(), "--threads", "1", "--quiet"]);
    assert_same_run(&whole, &cut);

    // A student removing its 3 skips, one per epoch, then a fine-tuning epoch: killed during the
    // schedule, after the first removal.
    let distill = |out: &Path| -> Vec<String> {
        let mut v: Vec<String> = ["distill", "--teacher", whole.to_str().unwrap(), "--kd", "mse", "--skip-policy", "remove", "--every", "1", "--finetune", "1", "--seed", "2"]
            .map(String::from)
            .to_vec();
        v.extend(common.map(String::from));
        v.extend(["--out".into(), out.display().to_string()]);
        v
    };
    let whole_s = dir.path().join("distill-whole");
    rfpga(&distill(&whole_s).iter().map(String::as_str).collect::<Vec<_>>());
    let cut_s = dir.path().join("distill-cut");
    kill_mid_epoch(&distill(&cut_s).iter().map(String::as_str).collect::<Vec<_>>(), dir.path(), &cut_s, 2);
    rfpga(&["distill", "--resume", cut_s.to_str().unwrap(), "--threads", "1", "--quiet"]);
    assert_same_run(&whole_s, &cut_s);
    assert_eq!(std::fs::read(whole_s.join("skips.csv")).unwrap(), std::fs::read(cut_s.join("skips.csv")).unwrap());
}

#[test]
fn a_sweep_killed_during_a_students_epoch_continues_that_training() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::write_fake_cifar(&data, 400);
    let file = dir.path().join("kill.toml");
    std::fs::write(
        &file,
        format!(
            "format = \"rfpga-sweep\"\nversion = 1\nname = \"kill\"\nthreads = 1\nparts = [\"xc7z020\"]\nsim_limit = 50\ndata_dir = \"{}\"\n\
             [grid]\ndepth = [8]\nskips = [\"remove\"]\nkd = [\"mse\"]\n\
             [teacher]\nepochs = 1\nlimit_train = 1600\nlimit_test = 100\n\
             [student]\nevery = 1\nfinetune = 1\nlimit_train = 1600\nlimit_test = 100\n",
            data.display()
        ),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let whole = dir.path().join("whole");
    rfpga(&["sweep", f, "--engine", "local", "--out", whole.to_str().unwrap()]);
    let cut = dir.path().join("cut");
    let student = "runs/r8A-s0-float-remove-mse";
    kill_mid_epoch(&["sweep", f, "--engine", "local", "--out", cut.to_str().unwrap()], dir.path(), &cut.join(student).join("train"), 2);
    let text = rfpga(&["sweep", f, "--engine", "local", "--out", cut.to_str().unwrap()]);
    assert!(text.contains("1 of 2 runs already finished"), "{text}");
    let log = std::fs::read_to_string(cut.join(student).join("log.txt")).unwrap();
    assert!(log.contains("# continuing the interrupted attempt") && log.contains("--resume"), "{log}");
    assert_same_run(&whole.join(student).join("train"), &cut.join(student).join("train"));
    assert!(temporaries(&cut).is_empty(), "left behind: {:?}", temporaries(&cut));
}
