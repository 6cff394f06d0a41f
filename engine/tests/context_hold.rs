//! A context block that changes while the user types waits (`contextHoldMs`): the keystroke decodes only
//! what was typed, and the new block is decoded once the user pauses, so the keystroke after the pause
//! finds it in the cells. On the tiny Qwen-family model the tests write (tests/support).
mod support;

use lokal_engine::{CompletionRequest, ContextBlock, Engine, EngineConfig, Timings};
use std::time::{Duration, Instant};
use support::families::{self, Keys};

fn engine(path: &std::path::Path, hold_ms: u64) -> Engine {
    let cfg = EngineConfig {
        sequences: 2,
        ctx_per_sequence: 512,
        prefix_tokens: 256,
        max_tokens: 4,
        context_hold_ms: hold_ms,
        ..support::engine::tiny(path)
    };
    support::engine::start(cfg).expect("model loads").0
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

fn block(text: &str) -> Option<ContextBlock> {
    Some(ContextBlock { text: text.into(), special: false, names: Default::default() })
}

const A: &str = "// src/money.rs\npub fn round_div(a: i64, b: i64) -> i64 { (a + b / 2) / b }\n";
const B: &str =
    "// src/ledger.rs\npub struct Ledger { entries: Vec<Entry> }\nimpl Ledger { pub fn total(&self) -> i64 { 0 } }\n";

fn req(before: &str, context: Option<ContextBlock>) -> CompletionRequest {
    CompletionRequest {
        doc: "file:///tmp/invoice.rs".into(),
        before: before.into(),
        first_line: 0,
        after: "\n    }\n}\n".into(),
        max_tokens: None,
        max_lines: None,
        context,
    }
}

const TYPED: &str = "impl Invoice {\n    pub fn total(&self) -> i64 {\n        let vat = ";

/// Two keystrokes, the second with another block; returns the second's timings.
fn keystroke_with_new_block(e: &Engine) -> (Timings, Timings) {
    let first = e.complete_blocking(req(TYPED, block(A))).expect("completion").timings;
    let second = e.complete_blocking(req(&format!("{TYPED}1"), block(B))).expect("completion").timings;
    (first, second)
}

#[test]
fn a_block_that_changes_while_typing_waits_and_is_decoded_in_the_pause() {
    let f = families::qwen_coder(Keys::None).emitting("x").write_temp("qwen-hold.gguf");

    // contextHoldMs 0: the new block is taken at once and everything after it is decoded again.
    let e = engine(f.path(), 0);
    let (first, taken) = keystroke_with_new_block(&e);
    e.shutdown();
    assert!(taken.redecoded_tokens + 8 > first.prompt_tokens, "the block changed at the front: {taken:?}");

    // Held: the keystroke decodes what was typed; after a pause the new block is decoded ahead, so the
    // next keystroke (with it) decodes only what was typed again.
    let e = engine(f.path(), 1000);
    let (first, held) = keystroke_with_new_block(&e);
    // (the typed token and the short suffix after it: PSM puts the suffix behind what was typed)
    assert!(held.redecoded_tokens * 4 < taken.redecoded_tokens, "held block: {held:?} after {first:?}");
    let rt = rt();
    let stats = rt.block_on(e.stats());
    assert_eq!((stats.pending_warms, stats.context_warms), (1, 0), "a block waits for the pause");
    let until = Instant::now() + Duration::from_secs(60);
    let warmed = loop {
        let s = rt.block_on(e.stats());
        if s.context_warms == 1 && s.pending_warms == 0 && s.running_jobs + s.queued_jobs == 0 {
            break true;
        }
        if Instant::now() > until {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(warmed, "the held block is decoded once the engine has been idle for contextHoldMs");
    let after = e.complete_blocking(req(&format!("{TYPED}12"), block(B))).expect("completion").timings;
    e.shutdown();
    assert!(after.redecoded_tokens * 4 < taken.redecoded_tokens, "the pause decoded the new block: {after:?}");
    assert!(after.prompt_tokens > first.prompt_tokens, "the new, longer block is in the prompt: {after:?}");
}

/// A request after a pause, or one far from the last (a jump), takes the new block at once: holding is
/// for typing only.
#[test]
fn a_block_is_not_held_across_a_jump() {
    let f = families::qwen_coder(Keys::None).emitting("x").write_temp("qwen-hold-jump.gguf");
    let e = engine(f.path(), 60_000);
    let first = e.complete_blocking(req(TYPED, block(A))).expect("completion").timings;
    let far = format!("{TYPED}1;\n\n\n\n        let y = ");
    let jumped = e.complete_blocking(req(&far, block(B))).expect("completion").timings;
    let stats = rt().block_on(e.stats());
    e.shutdown();
    assert_eq!(stats.pending_warms, 0, "nothing held");
    assert!(jumped.prompt_tokens > first.prompt_tokens + 10, "the new block is in the prompt: {jumped:?}");
}
