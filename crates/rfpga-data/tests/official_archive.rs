//! `scripts/setup-cifar10.sh --archive`: the official cifar-10-binary.tar.gz path, on a small
//! archive built here with the real layout (cifar-10-batches-bin/ holding the six .bin files and
//! batches.meta.txt): its md5 is checked, it unpacks to a dataset the reader loads, a second run
//! does nothing, and a wrong md5 or a wrong layout is refused in one line.

use std::path::Path;
use std::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/setup-cifar10.sh");

fn archive(dir: &Path, records: usize, with_test: bool) -> std::path::PathBuf {
    let src = dir.join("src/cifar-10-batches-bin");
    std::fs::create_dir_all(&src).unwrap();
    let mut files: Vec<String> = (1..=5).map(|i| format!("data_batch_{i}.bin")).collect();
    if with_test {
        files.push("test_batch.bin".into());
    }
    for (k, f) in files.iter().enumerate() {
        let mut bytes = Vec::new();
        for r in 0..records {
            bytes.push(((k + r) % 10) as u8);
            bytes.extend(std::iter::repeat_n((r % 256) as u8, 3072));
        }
        std::fs::write(src.join(f), bytes).unwrap();
    }
    std::fs::write(src.join("batches.meta.txt"), "airplane\nautomobile\n").unwrap();
    let tgz = dir.join("cifar-10-binary.tar.gz");
    let ok = Command::new("tar").args(["-czf", tgz.to_str().unwrap(), "-C", dir.join("src").to_str().unwrap(), "cifar-10-batches-bin"]).status().unwrap();
    assert!(ok.success());
    tgz
}

fn md5(path: &Path) -> String {
    let out = Command::new("md5sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap().split(' ').next().unwrap().to_string()
}

fn setup(archive: &Path, dest: &Path, md5: &str) -> (bool, String) {
    let out = Command::new("bash")
        .arg(SCRIPT)
        .args(["--archive", archive.to_str().unwrap(), "/nonexistent", dest.to_str().unwrap()])
        .env("CIFAR_ARCHIVE_MD5", md5)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn the_official_archive_is_checked_and_unpacked() {
    let dir = tempfile::tempdir().unwrap();
    let tgz = archive(dir.path(), 7, true);
    let dest = dir.path().join("data");
    let sum = md5(&tgz);

    let (ok, text) = setup(&tgz, &dest, "00000000000000000000000000000000");
    assert!(!ok && text.contains(&format!("md5 {sum}, expected 00000000000000000000000000000000")), "{text}");
    assert!(!dest.join("cifar-10-batches-bin").exists(), "nothing unpacked from a bad archive");

    let (ok, text) = setup(&tgz, &dest, &sum);
    assert!(ok && text.contains("md5 checked"), "{text}");
    let test = rfpga_data::Dataset::load(&dest.join("cifar-10-batches-bin"), rfpga_data::Split::Test).unwrap();
    assert_eq!(test.labels.len(), 7);
    assert_eq!(test.labels[..3], [5, 6, 7]);
    let train = rfpga_data::Dataset::load(&dest.join("cifar-10-batches-bin"), rfpga_data::Split::Train).unwrap();
    assert_eq!(train.labels.len(), 35);

    let (ok, text) = setup(&tgz, &dest, &sum);
    assert!(ok && text.trim().is_empty(), "a second run does nothing: {text}");

    let (ok, text) = setup(&dir.path().join("missing.tar.gz"), &dest, &sum);
    assert!(!ok && text.contains("missing.tar.gz: no such file") && text.trim().lines().count() == 1, "{text}");
}

#[test]
fn an_archive_without_the_binary_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tgz = archive(dir.path(), 3, false);
    let dest = dir.path().join("data");
    let (ok, text) = setup(&tgz, &dest, &md5(&tgz));
    assert!(!ok && text.contains("test_batch.bin: missing") && text.contains("not the CIFAR-10 binary layout"), "{text}");
    assert!(!dest.join("cifar-10-batches-bin").exists());
}
