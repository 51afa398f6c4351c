//! Reading a distill run's `skips.csv` (written by rfpga-train: one row per skip change,
//! docs/reference/formats.md), for the plots and the sweep summaries alike.

use anyhow::{Context, Result};
use std::path::Path;

/// One skip change: its step (1-based), what the skip became (`none`, `short`), and the test
/// accuracy (fraction) right before, right after, and at the end of its interval (absent when
/// training stopped right after the change).
#[derive(Debug, Clone, PartialEq)]
pub struct SkipChange {
    pub step: usize,
    pub to: String,
    pub acc_before: f64,
    pub acc_after: f64,
    pub acc_end: Option<f64>,
}

/// The rows of a skips.csv; columns are found by the header's names. Errors name the file, the
/// line and the column.
pub fn read(path: &Path) -> Result<Vec<SkipChange>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut lines = text.lines();
    let cols: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| cols.iter().position(|c| *c == name).with_context(|| format!("{}: header lacks column `{name}`", path.display()));
    let (c_step, c_to, c_before, c_after, c_end) = (col("step")?, col("to")?, col("acc_before")?, col("acc_after")?, col("acc_end")?);
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        let num = |c: usize| -> Result<f64> {
            f.get(c).and_then(|v| v.parse().ok()).with_context(|| format!("{}: line {}: column {} is not a number", path.display(), i + 2, cols[c]))
        };
        rows.push(SkipChange {
            step: num(c_step)? as usize,
            to: f.get(c_to).unwrap_or(&"").to_string(),
            acc_before: num(c_before)?,
            acc_after: num(c_after)?,
            acc_end: if f.get(c_end).is_some_and(|v| !v.is_empty()) { Some(num(c_end)?) } else { None },
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_by_header_and_errors_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("skips.csv");
        std::fs::write(&path, "step,block,name,to,epoch,acc_before,acc_after,acc_end\n1,0,layer1.0,none,1,0.7569,0.3310,0.7555\n2,1,layer1.1,none,2,0.7555,0.1108,\n").unwrap();
        let rows = read(&path).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], SkipChange { step: 1, to: "none".into(), acc_before: 0.7569, acc_after: 0.3310, acc_end: Some(0.7555) });
        assert_eq!(rows[1].acc_end, None);
        std::fs::write(&path, "step,to,acc_before,acc_after,acc_end\n1,none,x,0.3,0.7\n").unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.ends_with("skips.csv: line 2: column acc_before is not a number"), "{e}");
        std::fs::write(&path, "step,to,acc_before,acc_after\n").unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("header lacks column `acc_end`"));
    }
}
