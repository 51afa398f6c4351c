use std::path::PathBuf;

/// Errors of the core crate: each names the file and, where there is one, the field.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: field `{field}`: expected {expected}, found {found}")]
    Field { file: String, field: String, expected: String, found: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: field `{field}`: {source}")]
    Json { path: PathBuf, field: String, source: serde_json::Error },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{path}: tensors do not match the model:\n{}", .problems.join("\n"))]
    TensorMismatch { path: PathBuf, problems: Vec<String> },
}

impl Error {
    /// A bad value that does not come from a file (a command-line option).
    pub fn invalid(field: &str, expected: &str, found: &str) -> Self {
        Error::Field { file: "argument".into(), field: field.into(), expected: expected.into(), found: found.into() }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::File { path: path.into(), message: message.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
