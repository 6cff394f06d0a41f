//! Cancellation tokens shared between the async side and the worker thread.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Cheap to clone; every clone sees the same flag. Cancelling is idempotent.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    /// Read by llama.cpp's abort callback inside a decode, where nothing can wait on `notify`.
    flag: AtomicBool,
    /// Wakes the async side (`cancelled`) without polling the flag.
    notify: Notify,
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.flag.store(true, Ordering::Release);
        self.0.notify.notify_waiters();
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.flag.load(Ordering::Acquire)
    }
    /// Resolves once cancelled: race it against network work with `select!`, and dropping the losing
    /// request future closes its connection.
    pub async fn cancelled(&self) {
        let notified = self.0.notify.notified();
        // Registered before the flag is read, so a `cancel` between the two still wakes this future.
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.is_cancelled() {
            return;
        }
        notified.await;
    }

    /// The flag's address, for llama.cpp's abort callback. Valid while any clone lives.
    pub(crate) fn flag_ptr(&self) -> *const AtomicBool {
        &self.0.flag
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelled_wakes_every_waiter_and_returns_at_once_afterwards() {
        let token = CancelToken::new();
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let t = token.clone();
                tokio::spawn(async move { t.cancelled().await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(waiters.iter().all(|w| !w.is_finished()), "nothing resolves before the cancel");
        // From another thread, as the LSP framework's drop guard may run there.
        let t = token.clone();
        std::thread::spawn(move || CancelOnDrop(t)).join().unwrap();
        for w in waiters {
            tokio::time::timeout(Duration::from_secs(5), w).await.expect("woken by the cancel").unwrap();
        }
        tokio::time::timeout(Duration::from_secs(5), token.cancelled())
            .await
            .expect("already cancelled: resolves at once");
        assert!(token.is_cancelled());
        assert!(unsafe { (*token.flag_ptr()).load(Ordering::Acquire) }, "the abort callback's flag is the same one");
    }
}
