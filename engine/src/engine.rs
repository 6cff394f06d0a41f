//! The handle the server holds: sends jobs to the model thread and keeps the state that must answer without
//! waiting for it (the last suggestion per document, which requests are in flight).
use crate::api::{Completion, CompletionRequest, EngineEvent, EngineState, GenerateRequest, Generation, Timings};
use crate::cancel::CancelToken;
use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::remote::{RemoteBackend, RemoteConfig, RemoteGate};
use crate::stats::EngineStats;
use crate::worker::{self, Job};
use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tokio::sync::{oneshot, watch};

/// What was last suggested for a document, to serve "typed the beginning of the suggestion" for free.
#[derive(Debug, Clone)]
struct LastSuggestion {
    before: String,
    first_line: u32,
    after_head: String,
    text: String,
}

/// Everything in a completion request that decides its prompt and its answer: a prefetched answer serves a
/// later request only when all of it is equal (the document text around the cursor, not a version number,
/// since the editor's accept and a retyped identical text must both match, and nothing else may).
#[derive(Debug, Clone, PartialEq)]
struct PromptKey {
    before: String,
    first_line: u32,
    after: String,
    context: Option<crate::api::ContextBlock>,
    max_tokens: Option<usize>,
    max_lines: Option<usize>,
}

impl PromptKey {
    fn of(req: &CompletionRequest) -> Self {
        PromptKey {
            before: req.before.clone(),
            first_line: req.first_line,
            after: req.after.clone(),
            context: req.context.clone(),
            max_tokens: req.max_tokens,
            max_lines: req.max_lines,
        }
    }
}

enum PrefetchState {
    Running(oneshot::Receiver<Result<Completion>>),
    Done(Completion),
}

/// A completion computed ahead, at background priority, for the document as it will be once the user
/// accepts the suggestion just shown.
struct Prefetch {
    key: PromptKey,
    cancel: CancelToken,
    state: PrefetchState,
}

#[derive(Clone)]
pub struct Engine {
    /// One sender for every clone: when the last clone goes, the model thread sees the channel close and ends.
    tx: Arc<Sender<Job>>,
    /// Written by the model thread (and by `reload`); a watch so `wait_ready` sleeps until it changes.
    state: Arc<watch::Sender<EngineState>>,
    inflight: Arc<Mutex<HashMap<String, CancelToken>>>,
    last: Arc<Mutex<HashMap<String, LastSuggestion>>>,
    from_suggestion: Arc<Mutex<HashMap<String, u64>>>,
    /// At most one prefetched completion per document.
    prefetched: Arc<Mutex<HashMap<String, Prefetch>>>,
    /// Per document: prefetches started, used, dropped unused.
    prefetch_counts: Arc<Mutex<HashMap<String, [u64; 3]>>>,
    /// On-premises engines that serve instead of the local model, per session (the daemon shares this engine
    /// between editor windows, each with its own workspace policy): session prefix of the document keys →
    /// backend with that session's policy gate.
    remote: Arc<RwLock<HashMap<String, RemoteBackend>>>,
    /// Defaults for requests that do not carry their own budgets (remote requests need them here).
    budgets: (usize, usize),
    /// `cacheEnabled: false` turns off every kind of reuse, this one too, so benchmarks get a clean baseline.
    reuse: Arc<std::sync::atomic::AtomicBool>,
}

const AFTER_HEAD: usize = 2048;

/// Every model thread started, with a way to tell it to stop: see [`stop_all`].
static THREADS: Mutex<Vec<ModelThread>> = Mutex::new(Vec::new());
type ModelThread = (std::sync::Weak<Sender<Job>>, std::thread::JoinHandle<()>);

/// Stop every model thread and wait for them (at most `timeout` in all), so that each has freed its
/// context and model before the process exits: a GPU backend's own destructors run at exit, and with a
/// context still alive (CUDA: "driver shutting down") they abort the process. Returns whether all stopped.
pub fn stop_all(timeout: std::time::Duration) -> bool {
    let threads = std::mem::take(&mut *THREADS.lock().unwrap_or_else(|e| e.into_inner()));
    let deadline = Instant::now() + timeout;
    let mut all = true;
    for (tx, _) in &threads {
        if let Some(tx) = tx.upgrade() {
            let _ = tx.send(Job::Shutdown);
        }
    }
    for (_, h) in threads {
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if h.is_finished() {
            let _ = h.join();
        } else {
            all = false;
        }
    }
    all
}

/// Indices into a document's prefetch counters.
const STARTED: usize = 0;
const USED: usize = 1;
const CANCELLED: usize = 2;

fn after_head(after: &str) -> String {
    let mut end = after.len().min(AFTER_HEAD);
    while !after.is_char_boundary(end) {
        end -= 1;
    }
    after[..end].to_string()
}

impl Engine {
    /// Starts the model thread; loading happens there, reported through `events`.
    pub fn start(cfg: EngineConfig, events: impl Fn(EngineEvent) + Send + Sync + 'static) -> Engine {
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = Arc::new(tx);
        let state = Arc::new(watch::Sender::new(EngineState::Loading));
        let st = state.clone();
        let budgets = (cfg.max_tokens, cfg.max_lines);
        let cache_enabled = cfg.cache_enabled;
        let events: Arc<dyn Fn(EngineEvent) + Send + Sync> = Arc::new(events);
        let handle = std::thread::Builder::new()
            .name("lokal-model".into())
            .spawn(move || worker::run(rx, cfg, st, events))
            .expect("spawn model thread");
        let mut threads = THREADS.lock().unwrap_or_else(|e| e.into_inner());
        // Threads that ended (a reload's old engine, a closed daemon session's own) need no stop at exit.
        threads.retain(|(_, h)| !h.is_finished());
        threads.push((Arc::downgrade(&tx), handle));
        drop(threads);
        Engine {
            tx,
            state,
            inflight: Default::default(),
            last: Default::default(),
            from_suggestion: Default::default(),
            prefetched: Default::default(),
            prefetch_counts: Default::default(),
            remote: Default::default(),
            budgets,
            reuse: Arc::new(std::sync::atomic::AtomicBool::new(cache_enabled)),
        }
    }

    /// Serve completions and generations from an on-premises endpoint (or, with `None`, locally again).
    /// `gate` is the tier policy's check; every request to the endpoint asks it for a permit first, so a
    /// policy that changes after this call still decides each request.
    /// `session` is the prefix of that session's document keys (`""` for an in-process engine): another
    /// session's requests never reach this endpoint, nor go through this session's policy.
    pub fn set_remote(&self, session: &str, cfg: Option<(RemoteConfig, RemoteGate)>) {
        let mut remote = self.remote.write().unwrap();
        match cfg {
            Some((c, g)) => {
                remote.insert(session.to_string(), RemoteBackend::new(c, g));
            }
            None => {
                remote.remove(session);
            }
        }
        drop(remote);
        self.last.lock().unwrap().clear();
        self.drop_prefetches();
    }

    pub fn remote(&self, session: &str) -> Option<RemoteConfig> {
        self.remote.read().unwrap().get(session).map(|r| r.config().clone())
    }

    /// The remote backend of the session a document key belongs to (the longest session prefix).
    fn remote_for(&self, key: &str) -> Option<RemoteBackend> {
        let remote = self.remote.read().unwrap();
        remote.iter().filter(|(s, _)| key.starts_with(s.as_str())).max_by_key(|(s, _)| s.len()).map(|(_, b)| b.clone())
    }

    /// Completions waiting for the model or on it (for `lokal daemon status`).
    pub fn in_flight(&self) -> usize {
        self.inflight.lock().unwrap().len()
    }

    pub fn state(&self) -> EngineState {
        self.state.borrow().clone()
    }

    fn send(&self, job: Job) -> Result<()> {
        self.tx.send(job).map_err(|_| EngineError::ShutDown)
    }

    /// Complete at the cursor. A newer request for the same document cancels this one.
    pub async fn complete(&self, req: CompletionRequest, cancel: CancelToken) -> Result<Completion> {
        let queued = Instant::now();
        if self.reuse.load(std::sync::atomic::Ordering::Relaxed) {
            if let Some(c) = self.answer_from_last_suggestion(&req, queued) {
                return Ok(c);
            }
            if let Some(c) = self.answer_from_prefetch(&req, queued) {
                return Ok(c);
            }
        }
        // A prefetch still running would delay this request (it holds the document's sequence, or the
        // model's steps): stopped at once, whatever document it is for. Finished ones stay until their
        // document changes.
        self.prefetched.lock().unwrap().retain(|d, p| {
            let keep = matches!(p.state, PrefetchState::Done(_)) && *d != req.doc;
            if !keep {
                p.cancel.cancel();
                self.count_prefetch(d, CANCELLED);
            }
            keep
        });
        let remote = self.remote_for(&req.doc);
        if remote.is_none() {
            if let EngineState::Failed(why) = self.state() {
                return Err(EngineError::ModelUnavailable(why));
            }
        }
        let doc = req.doc.clone();
        if let Some(old) = self.inflight.lock().unwrap().insert(doc.clone(), cancel.clone()) {
            old.cancel();
        }
        let req2 = req.clone();
        let r = match remote {
            Some(rb) => {
                let (mt, ml) = (req.max_tokens.unwrap_or(self.budgets.0), req.max_lines.unwrap_or(self.budgets.1));
                rb.complete(&req, mt, ml, &cancel).await
            }
            None => {
                let (reply, rx) = oneshot::channel();
                self.send(Job::Complete { req, cancel: cancel.clone(), queued, reply, prefetch: false })?;
                rx.await.map_err(|_| EngineError::ShutDown)?
            }
        };
        {
            let mut inflight = self.inflight.lock().unwrap();
            if inflight.get(&doc).is_some_and(|c| std::ptr::eq(c.flag_ptr(), cancel.flag_ptr())) {
                inflight.remove(&doc);
            }
        }
        if let Ok(c) = &r {
            let mut last = self.last.lock().unwrap();
            match &c.text {
                Some(t) => {
                    last.insert(
                        doc,
                        LastSuggestion {
                            before: req2.before,
                            first_line: req2.first_line,
                            after_head: after_head(&req2.after),
                            text: t.clone(),
                        },
                    );
                }
                None => {
                    last.remove(&doc);
                }
            }
        }
        r
    }

    /// Blocking variant for the CLI.
    pub fn complete_blocking(&self, req: CompletionRequest) -> Result<Completion> {
        let rt =
            tokio::runtime::Builder::new_current_thread().build().map_err(|e| EngineError::Llama(e.to_string()))?;
        rt.block_on(self.complete(req, CancelToken::new()))
    }

    fn answer_from_last_suggestion(&self, req: &CompletionRequest, queued: Instant) -> Option<Completion> {
        let mut last = self.last.lock().unwrap();
        let prev = last.get(&req.doc)?.clone();
        if prev.first_line != req.first_line
            || !req.before.starts_with(&prev.before)
            || after_head(&req.after) != prev.after_head
        {
            return None;
        }
        // The same context as last time (a client re-asking after a cursor round trip) gets the same answer;
        // typing the suggestion's beginning gets its rest.
        let typed = &req.before[prev.before.len()..];
        if !prev.text.starts_with(typed) || prev.text.len() == typed.len() {
            return None;
        }
        let rest = prev.text[typed.len()..].to_string();
        last.insert(
            req.doc.clone(),
            LastSuggestion {
                before: req.before.clone(),
                first_line: req.first_line,
                after_head: prev.after_head.clone(),
                text: rest.clone(),
            },
        );
        *self.from_suggestion.lock().unwrap().entry(req.doc.clone()).or_default() += 1;
        let ms = queued.elapsed().as_secs_f64() * 1e3;
        Some(Completion {
            text: Some(rest),
            timings: Timings { ttft_ms: ms, total_ms: ms, from_suggestion: true, ..Default::default() },
        })
    }

    /// The answer computed ahead for exactly this request, if it is done. A prefetch that is not done yet
    /// is left to the caller, which cancels it (waiting behind background work could cost more than the
    /// prompt it already put in the cache saves).
    fn answer_from_prefetch(&self, req: &CompletionRequest, queued: Instant) -> Option<Completion> {
        let mut all = self.prefetched.lock().unwrap();
        let p = all.get_mut(&req.doc)?;
        if p.key != PromptKey::of(req) {
            return None;
        }
        if let PrefetchState::Running(rx) = &mut p.state {
            match rx.try_recv() {
                Ok(Ok(c)) => p.state = PrefetchState::Done(c),
                Err(oneshot::error::TryRecvError::Empty) => return None,
                Ok(Err(_)) | Err(oneshot::error::TryRecvError::Closed) => {
                    all.remove(&req.doc);
                    self.count_prefetch(&req.doc, CANCELLED);
                    return None;
                }
            }
        }
        let Some(Prefetch { state: PrefetchState::Done(mut c), .. }) = all.remove(&req.doc) else {
            unreachable!("a prefetch that is done was just matched")
        };
        drop(all);
        self.count_prefetch(&req.doc, USED);
        let ms = queued.elapsed().as_secs_f64() * 1e3;
        c.timings = Timings { ttft_ms: ms, total_ms: ms, from_prefetch: true, ..c.timings };
        let mut last = self.last.lock().unwrap();
        match &c.text {
            // The user may accept it word by word: typed-ahead reuse serves the rest.
            Some(t) => {
                last.insert(
                    req.doc.clone(),
                    LastSuggestion {
                        before: req.before.clone(),
                        first_line: req.first_line,
                        after_head: after_head(&req.after),
                        text: t.clone(),
                    },
                );
            }
            None => {
                last.remove(&req.doc);
            }
        }
        Some(c)
    }

    /// Compute `req` ahead, at background priority: the request the editor will send once the user accepts
    /// the suggestion just shown. Any other completion cancels it while it runs (so it never delays a
    /// keystroke); [`Engine::cancel_prefetch`] drops it when the document changes in another way. The same
    /// request again keeps the one already under way (a partial accept asks for the same end state).
    pub fn prefetch(&self, req: CompletionRequest) {
        if !self.reuse.load(std::sync::atomic::Ordering::Relaxed)
            || self.remote_for(&req.doc).is_some()
            || !matches!(self.state(), EngineState::Ready(_))
        {
            return;
        }
        let key = PromptKey::of(&req);
        let mut all = self.prefetched.lock().unwrap();
        if let Some(p) = all.remove(&req.doc) {
            if p.key == key {
                all.insert(req.doc.clone(), p);
                return;
            }
            p.cancel.cancel();
            self.count_prefetch(&req.doc, CANCELLED);
        }
        let cancel = CancelToken::new();
        let (reply, rx) = oneshot::channel();
        let doc = req.doc.clone();
        // Sent under the lock: a completion that cancels every running prefetch sees this one.
        if self
            .send(Job::Complete { req, cancel: cancel.clone(), queued: Instant::now(), reply, prefetch: true })
            .is_ok()
        {
            self.count_prefetch(&doc, STARTED);
            all.insert(doc, Prefetch { key, cancel, state: PrefetchState::Running(rx) });
        }
    }

    /// The document changed in a way other than the accept the prefetch was for.
    pub fn cancel_prefetch(&self, doc: &str) {
        if let Some(p) = self.prefetched.lock().unwrap().remove(doc) {
            p.cancel.cancel();
            self.count_prefetch(doc, CANCELLED);
        }
    }

    fn drop_prefetches(&self) {
        for (doc, p) in self.prefetched.lock().unwrap().drain() {
            p.cancel.cancel();
            self.count_prefetch(&doc, CANCELLED);
        }
    }

    fn count_prefetch(&self, doc: &str, what: usize) {
        self.prefetch_counts.lock().unwrap().entry(doc.to_string()).or_default()[what] += 1;
    }

    pub async fn generate(&self, req: GenerateRequest, cancel: CancelToken) -> Result<Generation> {
        let remote = self.remote_for(&req.key);
        if let Some(rb) = remote {
            return rb.generate(&req, &cancel).await;
        }
        if let EngineState::Failed(why) = self.state() {
            return Err(EngineError::ModelUnavailable(why));
        }
        let (reply, rx) = oneshot::channel();
        self.send(Job::Generate { req, cancel, queued: Instant::now(), reply })?;
        rx.await.map_err(|_| EngineError::ShutDown)?
    }

    /// The document was closed: free its sequence, snapshot and remembered suggestion.
    pub fn close(&self, doc: &str) {
        self.last.lock().unwrap().remove(doc);
        self.cancel_prefetch(doc);
        if let Some(c) = self.inflight.lock().unwrap().remove(doc) {
            c.cancel();
        }
        let _ = self.send(Job::Close { doc: doc.to_string() });
    }

    pub async fn stats(&self) -> EngineStats {
        let (reply, rx) = oneshot::channel();
        let mut s = if self.send(Job::Stats { reply }).is_ok() {
            rx.await.unwrap_or_default()
        } else {
            EngineStats { state: "shut down".into(), ..Default::default() }
        };
        if let EngineState::Loading = self.state() {
            s.state = "loading".into();
        }
        for (doc, n) in self.from_suggestion.lock().unwrap().iter() {
            let d = s.documents.entry(doc.clone()).or_default();
            d.served_from_suggestion = *n;
            d.requests += *n;
        }
        for (doc, n) in self.prefetch_counts.lock().unwrap().iter() {
            let d = s.documents.entry(doc.clone()).or_default();
            (d.prefetch_started, d.prefetch_used, d.prefetch_cancelled) = (n[STARTED], n[USED], n[CANCELLED]);
            d.requests += n[USED];
        }
        s
    }

    /// Load another model or apply new settings; requests queue behind the reload.
    pub fn reload(&self, cfg: EngineConfig) {
        self.state.send_replace(EngineState::Loading);
        self.reuse.store(cfg.cache_enabled, std::sync::atomic::Ordering::Relaxed);
        self.last.lock().unwrap().clear();
        self.drop_prefetches();
        let _ = self.send(Job::Reload(Box::new(cfg)));
    }

    /// Wait until the model is loaded (or failed to load).
    pub async fn wait_ready(&self) -> Result<Box<crate::model_info::ModelInfo>> {
        let mut rx = self.state.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let state =
            rx.wait_for(|s| !matches!(s, EngineState::Loading)).await.map_err(|_| EngineError::ShutDown)?.clone();
        match state {
            EngineState::Ready(i) => Ok(i),
            EngineState::Failed(e) => Err(EngineError::ModelUnavailable(e)),
            EngineState::Loading => unreachable!("wait_for returned a state it waits past"),
        }
    }

    pub fn shutdown(&self) {
        let _ = self.send(Job::Shutdown);
    }
}
