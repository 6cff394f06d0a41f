//! Cancellation tokens shared between the async side and the worker thread.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Cheap to clone; every clone sees the same flag. Cancelling is idempotent.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
    /// Resolves once cancelled: race it against network work with `select!`, and dropping the losing
    /// request future closes its connection.
    pub async fn cancelled(&self) {
        while !self.is_cancelled() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// The flag's address, for llama.cpp's abort callback. Valid while any clone lives.
    pub(crate) fn flag_ptr(&self) -> *const AtomicBool {
        Arc::as_ptr(&self.0)
    }
}

/// Cancels its token when dropped: the LSP framework drops a handler's future on `$/cancelRequest`,
/// and this is how that drop reaches the model thread.
#[derive(Debug)]
pub struct CancelOnDrop(pub CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
