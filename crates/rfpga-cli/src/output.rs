//! The output-file half of the one output policy (the folder half is
//! `rfpga_core::io::claim_output_dir`): a file a command writes is created, or rewritten only when
//! it is recognizably that command's earlier output; anything else is refused before any work.

use anyhow::Result;
use rfpga_core::io::claim_output_file;
use std::path::Path;

/// What a command writes, and how its earlier output is recognized.
#[derive(Clone, Copy)]
pub enum Kind {
    /// JSON written by rfpga: an object (or array of objects) with a `format` naming rfpga or
    /// the `frozen` model it describes.
    Json,
    /// A design file (`format: rfpga-design`).
    Design,
    /// A plot.
    Svg,
    /// A text report starting with this line prefix.
    Text(&'static str),
    /// An ONNX model rfpga exported (producer `rfpga`, near the start of the file).
    Onnx,
}

fn rfpga_object(v: &serde_json::Value) -> bool {
    v.get("format").and_then(|f| f.as_str()).is_some_and(|f| f.starts_with("rfpga")) || v.get("frozen").is_some()
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::Json => "a JSON file rfpga wrote",
            Kind::Design => "an rfpga-design file",
            Kind::Svg => "an SVG plot",
            Kind::Text(_) => "a report rfpga wrote",
            Kind::Onnx => "an ONNX model rfpga exported",
        }
    }

    fn is_own(self, bytes: &[u8]) -> bool {
        let json = || serde_json::from_slice::<serde_json::Value>(bytes).ok();
        match self {
            Kind::Json => json().is_some_and(|v| match &v {
                serde_json::Value::Array(items) => !items.is_empty() && items.iter().all(rfpga_object),
                _ => rfpga_object(&v),
            }),
            Kind::Design => json().is_some_and(|v| v.get("format").and_then(|f| f.as_str()) == Some("rfpga-design")),
            // Lossy: 512 bytes may end inside a multi-byte character.
            Kind::Svg => String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).contains("<svg"),
            Kind::Text(prefix) => bytes.starts_with(prefix.as_bytes()),
            Kind::Onnx => bytes[..bytes.len().min(64)].windows(5).any(|w| w == b"rfpga"),
        }
    }
}

/// Checks that `path` may be written by `command` (see the module comment).
pub fn check(path: &Path, command: &str, kind: Kind) -> Result<()> {
    claim_output_file(path, command, kind.what(), |b| kind.is_own(b))?;
    Ok(())
}

/// Each of the optional outputs of one command.
pub fn check_all<'a>(command: &str, outputs: impl IntoIterator<Item = (Option<&'a Path>, Kind)>) -> Result<()> {
    for (path, kind) in outputs {
        if let Some(p) = path {
            check(p, command, kind)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_its_own_outputs_only() {
        assert!(Kind::Json.is_own(br#"{"frozen": "x", "top1": 1}"#));
        assert!(Kind::Json.is_own(br#"[{"frozen": "x"}, {"format": "rfpga-design"}]"#));
        assert!(!Kind::Json.is_own(br#"{"name": "my notes"}"#));
        assert!(!Kind::Json.is_own(b"[]"));
        assert!(Kind::Design.is_own(br#"{"format": "rfpga-design"}"#));
        assert!(!Kind::Design.is_own(br#"{"frozen": "x"}"#));
        assert!(Kind::Svg.is_own(b"<svg width=\"10\">"));
        assert!(!Kind::Svg.is_own(b"hello"));
        let mut cut = b"<svg>".to_vec();
        cut.extend("–".repeat(300).as_bytes()); // byte 512 falls inside a character
        assert!(Kind::Svg.is_own(&cut));
        assert!(Kind::Text("Estimate of ").is_own(b"Estimate of x"));
        assert!(!Kind::Onnx.is_own(b"\x08\x07\x12\x05torch"));
        assert!(Kind::Onnx.is_own(b"\x08\x07\x12\x05rfpga"));
    }
}
