//! The LSP frame reader on arbitrary bytes cut into arbitrary reads: it must never panic, never hold more
//! than it was given, and every message it passes on must be a JSON-RPC 2.0 object.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../server/src/frames.rs"]
mod frames;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, bytes)) = data.split_first() else { return };
    let mut r = frames::FrameReader::default();
    for c in bytes.chunks(usize::from(chunk) + 1) {
        r.push(c);
        while let Some(e) = r.next_event() {
            match e {
                frames::Event::Message(m) => assert_eq!(m["jsonrpc"], "2.0", "{m}"),
                frames::Event::Reply(e) => assert!(e["error"]["code"].is_i64(), "{e}"),
                frames::Event::Skipped(_) => {}
            }
        }
        assert!(r.pending() <= bytes.len());
    }
});
