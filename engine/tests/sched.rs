//! The model thread's scheduler on the real embedded model (`LOKAL_MODEL`, else the model cache): a long
//! generation and keystrokes share one engine. Assertions are about order and text, never about time: the
//! keystrokes are answered while the long job still runs, and the long job writes exactly what it writes
//! alone (greedy decoding in a shared batch is lossless).
use lokal_engine::{CancelToken, CompletionRequest, Engine, EngineConfig, EngineError, GenerateRequest, Priority};
use std::time::Duration;

/// `ride`: long jobs ride along in the keystrokes' batches (`longJobsYield: false`), the case where
/// losslessness is at stake; otherwise they sit out the steps a keystroke runs in (the default).
fn engine(batching: bool, ride: bool) -> Engine {
    engine_with(EngineConfig { batching, long_jobs_yield: !ride, ..EngineConfig::default() })
}

fn engine_with(cfg: EngineConfig) -> Engine {
    // One thread: on a loaded machine llama.cpp's spinning barrier between two threads costs more than it
    // gains, and the assertions do not depend on speed.
    let cfg = EngineConfig { threads: Some(1), ..cfg };
    let path = cfg.resolved_model_path();
    assert!(path.exists(), "test model missing at {}: run scripts/fetch-model.sh (or set LOKAL_MODEL)", path.display());
    Engine::start(cfg, |_| {})
}

fn long_job(key: &str) -> GenerateRequest {
    GenerateRequest {
        key: key.into(),
        system: None,
        user: "Write a long design document for a small key-value store in Rust: its modules, its file format, \
               its API, its error handling and its tests, section by section."
            .into(),
        answer_prefix: "# Design\n\n## Modules\n\n".into(),
        max_tokens: 200,
        stop: vec![],
        temperature: 0.0,
        seed: 0,
        priority: Priority::DesignDoc,
    }
}

fn keystroke(doc: &str, n: usize) -> CompletionRequest {
    let before =
        format!("fn add(a: i32, b: i32) -> i32 {{\n    a + b\n}}\n\nfn mul{n}(a: i32, b: i32) -> i32 {{\n    ");
    CompletionRequest {
        doc: doc.into(),
        before,
        first_line: 0,
        after: "\n}\n".into(),
        max_tokens: Some(12),
        max_lines: Some(2),
        context: None,
    }
}

/// Poll the engine's statistics (answered between model steps) until `n` jobs hold a sequence.
async fn until_running(e: &Engine, n: usize) {
    loop {
        if e.stats().await.running_jobs >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn alone(e: &Engine, key: &str) -> String {
    let g = e.generate(long_job(key), CancelToken::new()).await.expect("the long job runs alone");
    assert!(
        g.timings.generated_tokens >= 120,
        "the long job must outlast the keystrokes by far for this test to mean anything: {} tokens",
        g.timings.generated_tokens
    );
    g.text
}

/// What the long job and three keystrokes write when each runs alone.
async fn references(e: &Engine) -> (String, Vec<Option<String>>) {
    let want = alone(e, "alone#design").await;
    let mut solo = Vec::new();
    for i in 0..3 {
        solo.push(e.complete(keystroke(&format!("solo{i}.rs"), i), CancelToken::new()).await.unwrap().text);
    }
    (want, solo)
}

async fn keystrokes_while_a_long_job_runs(e: &Engine, key: &str, want: &str, solo: &[Option<String>]) {
    let e2 = e.clone();
    let long_key = key.to_string();
    let long = tokio::spawn(async move { e2.generate(long_job(&long_key), CancelToken::new()).await });
    until_running(e, 1).await;
    let mut answers = Vec::new();
    for i in 0..3 {
        let c = e.complete(keystroke(&format!("{key}-{i}.rs"), i), CancelToken::new()).await;
        answers.push(c.expect("a keystroke is answered while the long job runs").text);
    }
    assert!(!long.is_finished(), "every keystroke was answered before the long job ended");
    let got = long.await.unwrap().expect("the long job ends normally");
    assert_eq!(got.text, want, "the long job writes what it writes alone");
    assert_eq!(answers, solo, "keystrokes write what they write alone");
}

async fn a_cancelled_keystroke_does_not_disturb_a_long_job(e: &Engine, want: &str) {
    let e2 = e.clone();
    let long = tokio::spawn(async move { e2.generate(long_job("cancel#design"), CancelToken::new()).await });
    until_running(e, 1).await;
    // Cancelled while it runs in the batch with the long job (it is then the one the abort callback watches).
    let cancel = CancelToken::new();
    let e3 = e.clone();
    let (c2, req) = (cancel.clone(), keystroke("typed.rs", 7));
    let key = tokio::spawn(async move { e3.complete(req, c2).await });
    until_running(e, 2).await;
    cancel.cancel();
    match key.await.unwrap() {
        Err(EngineError::Cancelled) => {}
        // It may have finished in the step before the cancel landed: then it was never disturbed either.
        Ok(_) => {}
        Err(other) => panic!("a cancelled keystroke reports the cancellation, not {other:?}"),
    }
    // A keystroke cancelled before the model thread saw it never starts.
    let early = CancelToken::new();
    early.cancel();
    assert!(matches!(e.complete(keystroke("early.rs", 8), early).await, Err(EngineError::Cancelled)));
    // And the next one on the same document is served as usual.
    assert!(e.complete(keystroke("typed.rs", 9), CancelToken::new()).await.is_ok());
    let got = long.await.unwrap().expect("the long job ends normally");
    assert_eq!(got.text, want, "the long job writes what it writes alone");
    let s = e.stats().await;
    assert_eq!((s.running_jobs, s.queued_jobs), (0, 0), "nothing left holding a sequence");
}

/// One test, so the references (a long generation) are computed once. First without batching: a keystroke
/// preempts the long job, which resumes from its own cells. Then batched: the long job's tokens ride in the
/// keystrokes' steps. In both, a keystroke cancelled mid-run (aborting the decode it leads) leaves the long
/// job intact. Last, the default: batched, and the long job sits out the keystrokes' steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystrokes_overtake_a_long_job_and_change_nothing_in_it() {
    let e = engine(false, false);
    e.wait_ready().await.expect("model loads");
    let (want, solo) = references(&e).await;
    keystrokes_while_a_long_job_runs(&e, "preempted", &want, &solo).await;
    a_cancelled_keystroke_does_not_disturb_a_long_job(&e, &want).await;
    e.shutdown();

    let e = engine(true, true);
    e.wait_ready().await.expect("model loads");
    keystrokes_while_a_long_job_runs(&e, "batched", &want, &solo).await;
    a_cancelled_keystroke_does_not_disturb_a_long_job(&e, &want).await;
    e.shutdown();

    let e = engine(true, false);
    e.wait_ready().await.expect("model loads");
    keystrokes_while_a_long_job_runs(&e, "yielding", &want, &solo).await;
    e.shutdown();

    // Speculative drafts in the shared batch: the long job's drafts ride with the keystrokes' tokens, the
    // rejected ones' cells are removed between steps, and still every job writes what it writes alone.
    let e = engine_with(EngineConfig {
        long_jobs_yield: false,
        speculative: lokal_engine::speculate::Speculative::Lookup,
        ..EngineConfig::default()
    });
    e.wait_ready().await.expect("model loads");
    keystrokes_while_a_long_job_runs(&e, "spec", &want, &solo).await;
    a_cancelled_keystroke_does_not_disturb_a_long_job(&e, &want).await;
    let s = e.stats().await;
    let d = &s.documents["spec"];
    assert!(d.drafted > 0 && d.accepted <= d.drafted, "the long job drafted: {} / {}", d.accepted, d.drafted);
    e.shutdown();
}

/// A completion that goes on for hundreds of tokens (a long table), so it is still running when the
/// keystroke arrives.
fn endless(doc: &str) -> CompletionRequest {
    CompletionRequest {
        doc: doc.into(),
        before: "const SQUARES: [u32; 400] = [\n    0, 1, 4, 9, 16, 25, 36, 49, 64, 81,\n    ".into(),
        first_line: 0,
        after: String::new(),
        max_tokens: Some(400),
        max_lines: Some(400),
        context: None,
    }
}

/// A prefetch is work done ahead at background priority: a keystroke on its document (whose sequence it
/// holds) or on any other stops it, is served before it would have ended, and writes what it writes alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keystroke_stops_a_running_prefetch_and_writes_what_it_writes_alone() {
    let e = engine(true, false);
    e.wait_ready().await.expect("model loads");
    let solo = e.complete(keystroke("solo.rs", 1), CancelToken::new()).await.unwrap().text;
    for (ahead, typed) in [("same.rs", "same.rs"), ("ahead.rs", "typed.rs")] {
        e.prefetch(endless(ahead));
        until_running(&e, 1).await;
        let got = e.complete(keystroke(typed, 1), CancelToken::new()).await.expect("the keystroke is served");
        assert_eq!(got.text, solo, "{typed}: the keystroke writes what it writes alone");
        assert!(!got.timings.from_prefetch);
        let s = e.stats().await;
        let d = &s.documents[ahead];
        assert_eq!(
            (d.prefetch_started, d.prefetch_done, d.prefetch_cancelled, d.prefetch_used),
            (1, 0, 1, 0),
            "{ahead}: stopped before its end, never used: {d:?}"
        );
        assert_eq!((s.running_jobs, s.queued_jobs), (0, 0), "nothing left holding a sequence");
    }
    e.shutdown();
}

/// The request a prefetch was for is answered from it without the model, with the text the model gives
/// when asked directly; any other request is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_prefetch_answers_exactly_its_request() {
    let e = engine(true, false);
    e.wait_ready().await.expect("model loads");
    let direct = e.complete(keystroke("direct.rs", 3), CancelToken::new()).await.unwrap().text;
    e.prefetch(keystroke("ahead.rs", 3));
    while e.stats().await.documents.get("ahead.rs").is_none_or(|d| d.prefetch_done == 0) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Another cursor in the same document: not the prefetched request, so the model answers it...
    let other = e.complete(keystroke("ahead.rs", 4), CancelToken::new()).await.unwrap();
    assert!(!other.timings.from_prefetch);
    // ...and that request dropped the prefetch, which no longer answers its own.
    let late = e.complete(keystroke("ahead.rs", 3), CancelToken::new()).await.unwrap();
    assert!(!late.timings.from_prefetch);
    assert_eq!(late.text, direct);
    e.prefetch(keystroke("ahead2.rs", 3));
    while e.stats().await.documents.get("ahead2.rs").is_none_or(|d| d.prefetch_done == 0) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let calls = e.stats().await.decode_calls;
    let served = e.complete(keystroke("ahead2.rs", 3), CancelToken::new()).await.unwrap();
    assert!(served.timings.from_prefetch);
    assert_eq!(served.text, direct, "the prefetched answer is the model's answer");
    let s = e.stats().await;
    assert_eq!(s.decode_calls, calls, "served without a model pass");
    let d = &s.documents["ahead2.rs"];
    assert_eq!((d.prefetch_started, d.prefetch_used, d.prefetch_cancelled), (1, 1, 0), "{d:?}");
    assert_eq!(s.documents["ahead.rs"].prefetch_cancelled, 1);
    e.shutdown();
}
