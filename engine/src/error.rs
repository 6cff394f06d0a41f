use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EngineError {
    #[error("the model is not available: {0}")]
    ModelUnavailable(String),
    /// Cancelled by the client, or superseded by a newer request for the same document.
    #[error("request cancelled")]
    Cancelled,
    #[error("prompt does not fit: {0}")]
    PromptTooLong(String),
    #[error("llama.cpp failed: {0}")]
    Llama(String),
    #[error("the engine has shut down")]
    ShutDown,
    /// The tier policy refused the connection (the message says which workspace, tier and file).
    #[error("{0}")]
    Denied(String),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
