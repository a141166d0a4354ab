use crate::config::ConfigIssue;

/// Errors from the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration has problems; every one is listed.
    #[error("invalid engine configuration: {}", list(.0))]
    Config(Vec<ConfigIssue>),
    /// A domain value was rejected.
    #[error(transparent)]
    Model(#[from] atalaya_model::ModelError),
    /// A sentiment lexicon or model could not be loaded.
    #[error("sentiment: {0}")]
    Lexicon(#[from] atalaya_ml::MlError),
}

fn list(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|i| format!("{}: {}", i.path, i.message))
        .collect::<Vec<_>>()
        .join("; ")
}
