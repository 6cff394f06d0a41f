use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EngineError {
    #[error("the model is not available: {0}")]
    ModelUnavailable(String),
    #[error("the model is still loading")]
    Loading,
    #[error("request cancelled")]
    Cancelled,
    #[error("superseded by a newer request for the same document")]
    Superseded,
    #[error("prompt does not fit: {0}")]
    PromptTooLong(String),
    #[error("llama.cpp failed: {0}")]
    Llama(String),
    #[error("the engine has shut down")]
    ShutDown,
    /// The tier policy refused the connection (the message says which workspace, tier and file).
    #[error("{0}")]
    Denied(String),
    #[error("invalid request: {0}")]
    Invalid(String),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
