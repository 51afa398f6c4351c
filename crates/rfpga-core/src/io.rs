//! Atomic writes (temporary file in the same folder + rename) and JSON helpers.

use serde::{de::DeserializeOwned, Serialize};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Whether `dir` exists and holds anything (an unreadable one counts as holding something), so
/// that a command writing a new folder does not mix its files with others.
pub fn holds_files(dir: &Path) -> bool {
    dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true)
}

/// What a command found where it writes its output folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputDir {
    /// Absent or empty: the command creates it.
    New,
    /// The command's own earlier output (it holds the command's signature file): rewritten.
    Rewrite,
}

/// The one output-folder policy of every command that writes a folder: a folder that is absent
/// or empty is created; one holding `signature` (the file only this command writes there) is
/// the command's own earlier output and is rewritten; anything else is refused, and nothing in
/// it is touched. A path that is a file is refused too. `signatures`: the files (or folders)
/// only this command writes there, any one of which marks its output.
pub fn claim_output_dir(dir: &Path, command: &str, signatures: &[&str]) -> Result<OutputDir> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::file(dir, format!("is a file, not a folder: `rfpga {command}` writes a folder here")));
    }
    let claim = if !holds_files(dir) {
        OutputDir::New
    } else if let Some(found) = signatures.iter().find(|s| dir.join(s).exists()) {
        if Some(found) == signatures.first() {
            eprintln!("{}: rewriting the earlier `rfpga {command}` output there", dir.display());
        } else {
            eprintln!("{}: writing into the rfpga output there ({found})", dir.display());
        }
        OutputDir::Rewrite
    } else {
        return Err(Error::file(
            dir,
            format!("holds files and is not an earlier `rfpga {command}` output (no {}); choose a new or empty folder", signatures.join(" or ")),
        ));
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    Ok(claim)
}

/// The same policy for a command that writes one file: an absent file is written; an existing
/// one is rewritten only when `is_own` recognizes its bytes as this command's earlier output.
pub fn claim_output_file(path: &Path, command: &str, what: &str, is_own: impl Fn(&[u8]) -> bool) -> Result<OutputDir> {
    if !path.exists() {
        return Ok(OutputDir::New);
    }
    if path.is_dir() {
        return Err(Error::file(path, format!("is a folder: `rfpga {command}` writes {what} here")));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if is_own(&bytes) {
        eprintln!("{}: rewriting the earlier `rfpga {command}` output", path.display());
        Ok(OutputDir::Rewrite)
    } else {
        Err(Error::file(path, format!("exists and is not {what}; choose another file name (nothing was written)")))
    }
}

/// Removes the temporary files `write_atomic` leaves in `dir` when its process is killed
/// mid-write (`.NAME.PID.tmp`); the real files are whole, the old or the new.
pub fn remove_stale_temporaries(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") && entry.path().is_file() {
            std::fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one, never a
/// torn one: the data goes to a temporary file in the same folder, is synced, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| Error::Json { path: path.into(), field: ".".into(), source: e })?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    // serde_path_to_error names the offending field (`blocks[3].skip`), not just the column.
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        Error::Json { path: path.into(), field, source: e.into_inner() }
    })
}

/// Checks the `format` and `version` fields that head every rfpga JSON file: a missing or other
/// value is one error naming the file, the field, what was expected and what was found.
pub fn check_header(path: &Path, v: &serde_json::Value, format: &str, version: u64) -> Result<()> {
    let found = |k: &str| v.get(k).map_or_else(|| "nothing (the field is missing)".to_string(), |x| x.to_string());
    let file = path.display().to_string();
    if v.get("format").and_then(|f| f.as_str()) != Some(format) {
        return Err(Error::Field { file, field: "format".into(), expected: format!("\"{format}\""), found: found("format") });
    }
    if v.get("version").and_then(|x| x.as_u64()) != Some(version) {
        return Err(Error::Field { file, field: "version".into(), expected: version.to_string(), found: found("version") });
    }
    Ok(())
}

/// Reads a JSON file whose `format` and `version` must be these (see [`check_header`]).
pub fn read_json_with_header(path: &Path, format: &str, version: u64) -> Result<serde_json::Value> {
    let v: serde_json::Value = read_json(path)?;
    check_header(path, &v, format, version)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_dir_policy() {
        let root = std::env::temp_dir().join(format!("rfpga-io-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let fresh = root.join("fresh");
        assert_eq!(claim_output_dir(&fresh, "codegen", &["rfpga.json"]).unwrap(), OutputDir::New);
        assert!(fresh.is_dir());
        assert_eq!(claim_output_dir(&fresh, "codegen", &["rfpga.json"]).unwrap(), OutputDir::New, "an empty folder is new");
        std::fs::write(fresh.join("rfpga.json"), "{}").unwrap();
        assert_eq!(claim_output_dir(&fresh, "codegen", &["rfpga.json"]).unwrap(), OutputDir::Rewrite);
        let foreign = root.join("foreign");
        std::fs::create_dir_all(&foreign).unwrap();
        std::fs::write(foreign.join("README.md"), "mine").unwrap();
        let e = claim_output_dir(&foreign, "codegen", &["rfpga.json"]).unwrap_err().to_string();
        assert!(e.contains("foreign") && e.contains("rfpga codegen") && !e.contains('\n'), "{e}");
        assert_eq!(std::fs::read_to_string(foreign.join("README.md")).unwrap(), "mine");
        let file = root.join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(claim_output_dir(&file, "codegen", &["rfpga.json"]).is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn header_errors_name_file_field_expected_and_found() {
        let p = Path::new("P/rfpga.json");
        check_header(p, &serde_json::json!({"format": "rfpga-design", "version": 1}), "rfpga-design", 1).unwrap();
        let e = |v: serde_json::Value| check_header(p, &v, "rfpga-design", 1).unwrap_err().to_string();
        assert_eq!(e(serde_json::json!({"format": "rfpga-model", "version": 1})), "P/rfpga.json: field `format`: expected \"rfpga-design\", found \"rfpga-model\"");
        assert_eq!(e(serde_json::json!({"format": "rfpga-design", "version": 2})), "P/rfpga.json: field `version`: expected 1, found 2");
        assert_eq!(e(serde_json::json!({"format": "rfpga-design"})), "P/rfpga.json: field `version`: expected 1, found nothing (the field is missing)");
        assert_eq!(e(serde_json::json!({"version": 1})), "P/rfpga.json: field `format`: expected \"rfpga-design\", found nothing (the field is missing)");
    }

    /// Every f64 and f32 the project writes with `write_json_atomic` reads back bit-identical
    /// through `read_json` (serde_json's default parser read 2.2853857040405274 one ulp low).
    #[test]
    fn json_floats_read_back_exactly() {
        use proptest::prelude::*;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        let known = vec![2.2853857040405274_f64, 0.1, 1e-300, 5e-324, f64::MAX, f64::MIN_POSITIVE, -0.0];
        write_json_atomic(&path, &known).unwrap();
        let back: Vec<f64> = read_json(&path).unwrap();
        assert_eq!(known.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), back.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        let finite64 = any::<u64>().prop_map(f64::from_bits).prop_filter("finite", |x| x.is_finite());
        let finite32 = any::<u32>().prop_map(f32::from_bits).prop_filter("finite", |x| x.is_finite());
        let cfg = ProptestConfig { cases: 2000, ..ProptestConfig::default() };
        proptest!(cfg, |(xs in proptest::collection::vec(finite64, 64), ys in proptest::collection::vec(finite32, 64))| {
            write_json_atomic(&path, &(&xs, &ys)).unwrap();
            let (bx, by): (Vec<f64>, Vec<f32>) = read_json(&path).unwrap();
            prop_assert!(xs.iter().zip(&bx).all(|(a, b)| a.to_bits() == b.to_bits()));
            prop_assert!(ys.iter().zip(&by).all(|(a, b)| a.to_bits() == b.to_bits()));
        });
    }
}

/// A default input folder given relative (`data/cifar-10-batches-bin`, `third_party/ap_types`):
/// `path` itself when it exists from the current directory, else the same path inside the rfpga
/// checkout this binary was built from (so the commands work from any directory after `cargo
/// install --path crates/rfpga-cli`), else `path` unchanged (the caller's error names it).
pub fn in_checkout(path: &Path) -> std::path::PathBuf {
    if path.exists() || path.is_absolute() {
        return path.to_path_buf();
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    if checkout.exists() {
        checkout
    } else {
        path.to_path_buf()
    }
}

/// The kinds of folder rfpga writes, each known by its marker file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderKind {
    /// `rfpga train` / `distill` / `import`: model.json + weights.
    Run,
    /// `rfpga freeze`: frozen.json + weights.
    Frozen,
    /// `rfpga codegen`: rfpga.json + firmware/.
    Project,
    /// `rfpga sweep`: sweep.json + runs/.
    Sweep,
}

impl FolderKind {
    const ALL: [FolderKind; 4] = [FolderKind::Frozen, FolderKind::Project, FolderKind::Sweep, FolderKind::Run];
    fn marker(self) -> &'static str {
        match self {
            FolderKind::Run => "model.json",
            FolderKind::Frozen => "frozen.json",
            FolderKind::Project => "rfpga.json",
            FolderKind::Sweep => "sweep.json",
        }
    }
    fn name(self) -> &'static str {
        match self {
            FolderKind::Run => "a training run",
            FolderKind::Frozen => "a frozen model",
            FolderKind::Project => "a generated HLS project",
            FolderKind::Sweep => "a sweep's output folder",
        }
    }
    /// How to make one from what the user has.
    fn made_by(self) -> &'static str {
        match self {
            FolderKind::Run => "`rfpga train`, `rfpga distill` or `rfpga import` make one",
            FolderKind::Frozen => "`rfpga freeze RUN --out FROZEN` makes one from a training run",
            FolderKind::Project => "`rfpga codegen FROZEN --out PROJECT` makes one from a frozen model",
            FolderKind::Sweep => "`rfpga sweep FILE` makes one",
        }
    }
    /// What `dir` is, by its marker file (None: none of them).
    pub fn of(dir: &Path) -> Option<FolderKind> {
        Self::ALL.into_iter().find(|k| dir.join(k.marker()).is_file())
    }
}

/// Ok when `dir` holds `want`'s marker file; else one line naming what `dir` is instead (or that
/// it is missing or unknown) and the command that makes the right kind.
pub fn expect_folder(dir: &Path, want: FolderKind) -> Result<()> {
    if dir.join(want.marker()).is_file() {
        return Ok(());
    }
    let what = if !dir.exists() {
        "no such folder".to_string()
    } else if !dir.is_dir() {
        "a file, not a folder".to_string()
    } else {
        match FolderKind::of(dir) {
            Some(k) => format!("{} ({}), not {}", k.name(), k.marker(), want.name()),
            None => format!("not {} (no {})", want.name(), want.marker()),
        }
    };
    Err(Error::file(dir, format!("{what}; {}", want.made_by())))
}

#[cfg(test)]
mod folder_kinds {
    use super::*;

    #[test]
    fn a_folder_of_the_wrong_kind_is_named_with_the_command_that_makes_the_right_one() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(run.join("model.json"), "{}").unwrap();
        expect_folder(&run, FolderKind::Run).unwrap();
        let e = expect_folder(&run, FolderKind::Frozen).unwrap_err().to_string();
        assert!(e.contains("a training run (model.json), not a frozen model") && e.contains("rfpga freeze RUN --out FROZEN"), "{e}");
        let frozen = dir.path().join("frozen");
        std::fs::create_dir(&frozen).unwrap();
        std::fs::write(frozen.join("frozen.json"), "{}").unwrap();
        let e = expect_folder(&frozen, FolderKind::Project).unwrap_err().to_string();
        assert!(e.contains("a frozen model (frozen.json), not a generated HLS project") && e.contains("rfpga codegen FROZEN --out PROJECT"), "{e}");
        let e = expect_folder(&frozen, FolderKind::Run).unwrap_err().to_string();
        assert!(e.contains("a frozen model (frozen.json), not a training run"), "{e}");
        let e = expect_folder(&dir.path().join("nope"), FolderKind::Frozen).unwrap_err().to_string();
        assert!(e.contains("no such folder"), "{e}");
        let e = expect_folder(dir.path(), FolderKind::Frozen).unwrap_err().to_string();
        assert!(e.contains("not a frozen model (no frozen.json)"), "{e}");
    }
}
