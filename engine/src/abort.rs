//! llama.cpp's abort callback, wired to the running job's [`CancelToken`]: llama.cpp checks it inside every
//! decode, so a cancelled request stops within one step of the graph instead of after a whole prompt pass.
use crate::cancel::CancelToken;
use llama_cpp_2::context::params::LlamaContextParams;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

/// Where the callback looks for the current request's cancellation flag; null between jobs.
pub(crate) struct AbortSlot(AtomicPtr<AtomicBool>);

impl AbortSlot {
    pub(crate) fn new() -> Self {
        AbortSlot(AtomicPtr::new(std::ptr::null_mut()))
    }

    /// Point the callback at `cancel` until [`Self::disarm`]; the caller keeps `cancel` alive until then.
    pub(crate) fn arm(&self, cancel: &CancelToken) {
        self.0.store(cancel.flag_ptr() as *mut AtomicBool, Ordering::Release);
    }

    pub(crate) fn disarm(&self) {
        self.0.store(std::ptr::null_mut(), Ordering::Release);
    }
}

extern "C" fn abort_callback(data: *mut c_void) -> bool {
    // SAFETY: `data` is the AbortSlot given to `with_abort_callback`, which outlives the context.
    let slot = unsafe { &*(data as *const AbortSlot) };
    let flag = slot.0.load(Ordering::Acquire);
    // SAFETY: a non-null flag points into a CancelToken that the running job keeps alive (see `arm`).
    !flag.is_null() && unsafe { (*flag).load(Ordering::Acquire) }
}

/// llama-cpp-2 0.1.160 has no safe setter for the abort callback; the context parameters carry it, so we set
/// the raw field. `LlamaContextParams` is a one-field wrapper around `llama_context_params`; `transmute`
/// refuses to compile if the sizes ever differ. `slot` must outlive every context made from these params.
pub(crate) fn with_abort_callback(params: LlamaContextParams, slot: &AbortSlot) -> LlamaContextParams {
    // SAFETY: same size (checked by transmute) and the only field is the raw struct.
    let mut raw: llama_cpp_sys_2::llama_context_params = unsafe { std::mem::transmute(params) };
    raw.abort_callback = Some(abort_callback);
    raw.abort_callback_data = slot as *const AbortSlot as *mut c_void;
    unsafe { std::mem::transmute(raw) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callback_follows_the_armed_token_only() {
        let slot = AbortSlot::new();
        let data = &slot as *const AbortSlot as *mut c_void;
        assert!(!abort_callback(data), "nothing armed: never abort");
        let (job, other) = (CancelToken::new(), CancelToken::new());
        slot.arm(&job);
        other.cancel();
        assert!(!abort_callback(data), "another request's cancellation does not stop this one");
        job.cancel();
        assert!(abort_callback(data));
        slot.disarm();
        assert!(!abort_callback(data), "a finished job's flag no longer counts");
    }
}
