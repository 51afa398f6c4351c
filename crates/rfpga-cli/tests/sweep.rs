//! `rfpga sweep` and `rfpga summarize` end to end on the tiny sweep (real CIFAR-10 data, ResNet-8
//! runs of a few seconds): a killed local sweep resumes with only the missing runs, the summary's
//! figures are the mean and sample std of the runs' own results, and bad sweep files are named.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn rfpga(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rfpga")).args(args).current_dir(root()).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn a_killed_local_sweep_finishes_only_the_missing_runs_and_summarizes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny");
    let out_s = out.to_str().unwrap();
    let first = out.join("runs/r8A-s0-float-keep/done.json");
    // Its own process group, so the kill takes the sweep and the run it is executing.
    let mut child = Command::new(env!("CARGO_BIN_EXE_rfpga"))
        .args(["sweep", "sweeps/tiny.toml", "--engine", "local", "--jobs", "1", "--out", out_s])
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !first.exists() {
        assert!(started.elapsed() < Duration::from_secs(300), "the first run did not finish");
        assert!(child.try_wait().unwrap().is_none(), "the sweep ended before the first run finished");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling the process group we created.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    child.wait().unwrap();
    let first_done = std::fs::read(&first).unwrap();
    let first_mtime = std::fs::metadata(&first).unwrap().modified().unwrap();

    let (ok, text) = rfpga(&["sweep", "sweeps/tiny.toml", "--engine", "local", "--out", out_s]);
    assert!(ok, "{text}");
    assert!(text.contains("1 of 4 runs already finished: skipped"), "{text}");
    assert!(text.contains("3 finished now, 1 already finished, 0 failed"), "{text}");
    assert!(!text.contains("start   r8A-s0-float-keep"), "{text}");
    assert_eq!(std::fs::read(&first).unwrap(), first_done);
    assert_eq!(std::fs::metadata(&first).unwrap().modified().unwrap(), first_mtime);

    // A finished run whose output changed is no longer finished.
    let (ok, text) = rfpga(&["sweep", "status", "sweeps/tiny.toml", "--out", out_s]);
    assert!(ok && text.contains("done 4"), "{text}");
    let sim = out.join("runs/r8A-s1-float-keep/sim.json");
    let original = std::fs::read(&sim).unwrap();
    std::fs::write(&sim, b"{}").unwrap();
    let (_, text) = rfpga(&["sweep", "status", "sweeps/tiny.toml", "--out", out_s]);
    assert!(text.contains("done 3"), "{text}");
    std::fs::write(&sim, original).unwrap();

    // The summary against the runs' own results, by hand.
    let (ok, text) = rfpga(&["summarize", out_s]);
    assert!(ok, "{text}");
    // Its output policy: a user's folder is refused and unchanged.
    let mine = dir.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.md"), "mine").unwrap();
    let (ok, text) = rfpga(&["summarize", out_s, "--out", mine.to_str().unwrap()]);
    assert!(!ok && text.contains("not an earlier `rfpga summarize` output"), "{text}");
    assert_eq!(std::fs::read_dir(&mine).unwrap().count(), 1);
    assert_eq!(std::fs::read_to_string(mine.join("notes.md")).unwrap(), "mine");
    let acc = |id: &str, field: &str| {
        let r = json(&out.join(format!("runs/{id}/result.json")));
        if field == "trained" { 100.0 * r["trained"]["top1"].as_f64().unwrap() } else { r["frozen"]["top1"].as_f64().unwrap() }
    };
    for (skips, kd, ids) in [("keep", "", ["r8A-s0-float-keep", "r8A-s1-float-keep"]), ("remove", "hinton", ["r8A-s0-float-remove-hinton", "r8A-s1-float-remove-hinton"])] {
        let (a, b) = (acc(ids[0], "trained"), acc(ids[1], "trained"));
        let (fa, fb) = (acc(ids[0], "frozen"), acc(ids[1], "frozen"));
        // Two values: mean (a+b)/2, sample std |a−b|/√2.
        let row = format!(
            "8,A,\"float\",{skips},{kd},2,{:.4},{:.4},{:.4},{:.4},",
            (a + b) / 2.0,
            (a - b).abs() / 2f64.sqrt(),
            (fa + fb) / 2.0,
            (fa - fb).abs() / 2f64.sqrt()
        );
        let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
        assert!(csv.lines().any(|l| l.starts_with(&row)), "no row {row} in\n{csv}");
    }
    // The skip-change table: the last point's mean ± std from the two runs' own curves.
    let last = |id: &str| {
        let r = json(&out.join(format!("runs/{id}/result.json")));
        let c = r["skip_curve"].as_array().unwrap().clone();
        (c.len(), 100.0 * c.last().unwrap()[1].as_f64().unwrap())
    };
    let ((n0, l0), (n1, l1)) = (last("r8A-s0-float-remove-hinton"), last("r8A-s1-float-remove-hinton"));
    assert!(n0 > 1 && n0 == n1);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let row = md.lines().find(|l| l.starts_with("| ResNet-8 | float | remove | hinton | 2 |") && l.matches('±').count() == n0).unwrap_or_else(|| panic!("no skip-change row in\n{md}"));
    assert!(row.ends_with(&format!(" {:.2} ± {:.2} |", (l0 + l1) / 2.0, (l0 - l1).abs() / 2f64.sqrt())), "{row}");
    // Training time: the runs' own train_seconds, in minutes per run and hours in all.
    let secs = |id: &str| json(&out.join(format!("runs/{id}/train/summary.json")))["train_seconds"].as_f64().unwrap();
    let timing = std::fs::read_to_string(out.join("timing.md")).unwrap();
    let (m0, m1) = (secs("r8A-s0-float-keep") / 60.0, secs("r8A-s1-float-keep") / 60.0);
    let row = format!("| ResNet-8 | float | keep | — | 2 | {:.2} | {:.2} | {:.2} | {:.2} |", (m0 + m1) / 2.0, m0.min(m1), m0.max(m1), (m0 + m1) / 60.0);
    assert!(timing.contains(&row), "no row {row} in\n{timing}");
    let svg = std::fs::read_to_string(out.join("accuracy-vs-skips.svg")).unwrap();
    assert!(svg.contains("float skips remove"), "the removal curve is drawn");
    let teachers = (acc("r8A-s0-float-keep", "trained") + acc("r8A-s1-float-keep", "trained")) / 2.0;
    assert!(svg.contains(&format!("teachers (float, n=2): {teachers:.2} %")), "the teachers' reference line");
    let bars = std::fs::read_to_string(out.join("accuracy.svg")).unwrap();
    assert!(bars.contains("R8A float skips keep teacher") && bars.contains("R8A float skips remove KD hinton"), "{bars}");
    assert!(out.join("utilization-xc7z020.svg").exists());
    // Removing every skip removes the skip FIFOs from the estimate.
    let removed = json(&out.join("runs/r8A-s0-float-remove-hinton/estimate-xc7z020.json"));
    let kept = json(&out.join("runs/r8A-s0-float-keep/estimate-xc7z020.json"));
    assert_eq!(removed["skip_fifos"]["bram_18k"], 0);
    assert!(kept["skip_fifos"]["bram_18k"].as_u64().unwrap() > 0);
}

#[test]
fn bad_sweep_files_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(root().join("sweeps/tiny.toml")).unwrap();
    let cases = [
        ("depth = [8]", "depth = [8, 9]", "grid.depth[1]: expected 6n+2"),
        ("skips = [\"keep\", \"remove\"]", "skips = [\"keep\", \"drop\"]", "grid.skips[1]: expected \"keep\", \"remove\", \"shorten\", \"none\", \"short\" or \"short-random\", found \"drop\""),
        ("seed = [0, 1]", "seed = [0, 1]\nformat = [\"ap_fixed<8,9,9>\"]", "grid.format[0]"),
        ("version = 1", "version = 2", "version: expected 1, found 2"),
        ("epochs = 1", "epochs = 0", "teacher.epochs: expected ≥ 1, found 0"),
        ("threads = 1", "threads = 1\ncolour = \"red\"", "unknown field `colour`"),
        ("sim_limit = 200", "sim_limit = 0", "sim_limit: expected ≥ 1, found 0"),
        ("parts = [\"xc7z020\"]", "parts = [\"xc7a35t\"]", "parts[0]: unknown part or board `xc7a35t`"),
        ("seed = [0, 1]", "seed = [0, 1]\nformat = [\"ap_fixed<8,3>\", \"ap_fixed<8, 3>\"]", "grid.format[1]: \"ap_fixed<8, 3>\" is \"ap_fixed<8,3>\" (grid.format[0]) spelled differently"),
    ];
    for (from, to, want) in cases {
        assert!(base.contains(from), "{from}");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, base.replacen(from, to, 1)).unwrap();
        let (ok, text) = rfpga(&["sweep", path.to_str().unwrap(), "--dry-run"]);
        assert!(!ok && text.contains(want) && text.contains("bad.toml"), "{to}: {text}");
    }
    let (ok, text) = rfpga(&["sweep", "sweeps/tiny.toml", "--dry-run", "--only", "depth=20"]);
    assert!(!ok && text.contains("matches no run"), "{text}");
    let (ok, text) = rfpga(&["sweep", "sweeps/tiny.toml", "--dry-run", "--only", "colour=red"]);
    assert!(!ok && text.contains("unknown key `colour`"), "{text}");
    // A student alone brings its teacher along (neither is finished here).
    let (ok, text) = rfpga(&["sweep", "sweeps/tiny.toml", "--dry-run", "--out", dir.path().to_str().unwrap(), "--only", "r8A-s1-float-remove-hinton"]);
    assert!(ok && text.contains("# r8A-s1-float-keep") && !text.contains("# r8A-s0"), "{text}");
    let (ok, text) = rfpga(&["sweep", "sweeps/tiny.toml", "--partition", "x"]);
    assert!(!ok && text.contains("belong to --engine slurm"), "{text}");
}

/// The deck's comparison in sweep form: one finished teacher from outside the sweep, skipless
/// students from random weights taught by it (KD) and trained alone (kd = "none"), each frozen,
/// simulated, estimated, and its HLS project C-simulated.
#[test]
fn a_sweep_from_a_finished_teacher_teaches_and_trains_skipless_students_and_csims_them() {
    let dir = tempfile::tempdir().unwrap();
    let teacher = dir.path().join("teacher");
    let (ok, text) = rfpga(&["train", "--depth", "8", "--epochs", "1", "--train-images", "512", "--test-images", "100", "--threads", "1", "--quiet", "--out", teacher.to_str().unwrap()]);
    assert!(ok, "{text}");
    let file = dir.path().join("skipless.toml");
    let body = |extra: &str| {
        format!(
            "format = \"rfpga-sweep\"\nversion = 1\nname = \"skipless\"\nthreads = 1\nparts = [\"xc7z020\"]\nsim_limit = 50\ncsim_images = 5\n\
             [grid]\ndepth = [8]\nformat = [\"ap_fixed<8,3,AP_RND,AP_SAT>\"]\nskips = [\"none\"]\nkd = [\"mse\", \"none\"]\n\
             [teacher]\nrun = \"{}\"\n{extra}[student]\nepochs = 1\nlimit_train = 512\nlimit_test = 100\n",
            teacher.display()
        )
    };
    std::fs::write(&file, body("")).unwrap();
    let out = dir.path().join("out");
    let (ok, text) = rfpga(&["sweep", file.to_str().unwrap(), "--engine", "local", "--out", out.to_str().unwrap()]);
    let logs = || -> String {
        let dirs = [out.join("logs"), out.join("runs")];
        dirs.iter()
            .flat_map(|d| std::fs::read_dir(d).unwrap().flatten())
            .map(|e| if e.path().is_dir() { e.path().join("log.txt") } else { e.path() })
            .map(|p| format!("{}:\n{}", p.display(), std::fs::read_to_string(&p).unwrap_or_default()))
            .collect()
    };
    assert!(ok, "{text}\n{}", logs());
    assert!(text.contains("2 finished now, 0 already finished, 0 failed"), "{text}");
    let run = |id: &str| out.join("runs").join(id);
    let kd = run("r8A-s0-fx8.3-rnd-sat-none-mse");
    let alone = run("r8A-s0-fx8.3-rnd-sat-none-none");
    let log = std::fs::read_to_string(kd.join("log.txt")).unwrap();
    assert!(log.contains(&format!("rfpga distill --teacher {}", teacher.display())) && log.contains("--skips none --init random"), "{log}");
    let log = std::fs::read_to_string(alone.join("log.txt")).unwrap();
    assert!(log.contains("rfpga train --depth 8 --shortcut A --skips none --weight-format") && !log.contains("--teacher"), "{log}");
    for r in [&kd, &alone] {
        let model = json(&r.join("train/model.json"));
        assert!(model["blocks"].as_array().unwrap().iter().all(|b| b["skip"] == "none"), "{model}");
        let result = json(&r.join("result.json"));
        assert_eq!(result["csim_images_passed"], 5, "{result}");
        assert!(r.join("hls/rfpga.json").exists());
    }
    // The deck's bars: taught and alone side by side.
    let (ok, text) = rfpga(&["summarize", out.to_str().unwrap()]);
    assert!(ok, "{text}");
    let bars = std::fs::read_to_string(out.join("accuracy.svg")).unwrap();
    assert!(bars.contains("skips none KD mse") && bars.contains("skips none no KD"), "{bars}");
    assert_eq!(json(&out.join("sweep.json"))["teacher"], teacher.to_str().unwrap());
    // The KD student records its teacher's weights: a retrained teacher makes it unfinished.
    let done = json(&kd.join("done.json"));
    assert!(done["teacher_weights"].is_string(), "{done}");
    assert!(json(&alone.join("done.json"))["teacher_weights"].is_null());

    // Trained alone, a student cannot remove skips while it trains.
    std::fs::write(&file, body("").replace("skips = [\"none\"]", "skips = [\"none\", \"remove\"]")).unwrap();
    let (ok, text) = rfpga(&["sweep", file.to_str().unwrap(), "--dry-run"]);
    assert!(!ok && text.contains("grid.kd: \"none\" trains a student alone"), "{text}");
    // A finished teacher takes no training settings.
    std::fs::write(&file, body("epochs = 3\n")).unwrap();
    let (ok, text) = rfpga(&["sweep", file.to_str().unwrap(), "--dry-run"]);
    assert!(!ok && text.contains("teacher.run: a finished teacher takes no training settings"), "{text}");
    // A teacher still training (no summary.json) is refused when the students start.
    std::fs::write(&file, body("")).unwrap();
    std::fs::remove_file(teacher.join("summary.json")).unwrap();
    let (ok, text) = rfpga(&["sweep", file.to_str().unwrap(), "--engine", "local", "--rerun", "--out", out.to_str().unwrap()]);
    assert!(!ok && text.contains("1 failed"), "{text}");
    assert!(logs().contains("teacher") && logs().contains("is not a finished run"), "{}", logs());
}
