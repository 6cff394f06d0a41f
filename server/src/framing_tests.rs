use super::*;
use serde_json::json;

fn frame_of(body: &str) -> Vec<u8> {
    let mut v = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    v.extend_from_slice(body.as_bytes());
    v
}

const GOOD: &str = r#"{"jsonrpc":"2.0","id":99,"method":"lokal/stats","params":{}}"#;

/// Feed `bytes` then a good request, in chunks of `chunk` bytes; return every event.
fn run(bytes: &[u8], chunk: usize) -> Vec<Event> {
    let mut all = bytes.to_vec();
    all.extend_from_slice(&frame_of(GOOD));
    let mut r = FrameReader::default();
    let mut out = Vec::new();
    for c in all.chunks(chunk.max(1)) {
        r.push(c);
        while let Some(e) = r.next_event() {
            out.push(e);
        }
    }
    out
}

fn assert_recovers(bytes: &[u8]) -> Vec<Event> {
    for chunk in [1, 7, 1 << 20] {
        let ev = run(bytes, chunk);
        let good = ev.iter().filter(|e| matches!(e, Event::Message(m) if m["id"] == 99)).count();
        assert_eq!(
            good,
            1,
            "chunk {chunk}: the good request after {:?} was not read once: {ev:?}",
            String::from_utf8_lossy(bytes)
        );
        assert!(matches!(ev.last(), Some(Event::Message(m)) if m["id"] == 99), "chunk {chunk}: {ev:?}");
    }
    run(bytes, 1 << 20)
}

fn reply_codes(ev: &[Event]) -> Vec<(i64, Value)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Reply(r) => Some((r["error"]["code"].as_i64().unwrap(), r["id"].clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn json_that_is_not_json_rpc_is_answered_and_reading_goes_on() {
    let ev = assert_recovers(&frame_of("[1,2,3]"));
    assert_eq!(reply_codes(&ev), vec![(-32600, Value::Null)]);
    let ev = assert_recovers(&frame_of(r#"{"jsonrpc":"2.0","id":"x","method":7}"#));
    assert_eq!(reply_codes(&ev), vec![(-32600, json!("x"))]);
    let ev = assert_recovers(&frame_of(r#"{"jsonrpc":"1.0","id":3,"method":"initialize"}"#));
    assert_eq!(reply_codes(&ev), vec![(-32600, json!(3))]);
    let ev = assert_recovers(&frame_of(r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#));
    assert_eq!(reply_codes(&ev), vec![(-32600, json!(1.5))]);
    let ev = assert_recovers(&frame_of(r#"{"jsonrpc":"2.0","id":2,"method":"x","params":5}"#));
    assert_eq!(reply_codes(&ev), vec![(-32600, json!(2))]);
    assert_recovers(&frame_of("42"));
    assert_recovers(&frame_of("{not json"));
}

#[test]
fn bad_notifications_and_responses_are_skipped_not_answered() {
    for body in [
        r#"{"jsonrpc":"2.0","method":7}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":"x"}}"#,
    ] {
        let ev = assert_recovers(&frame_of(body));
        assert!(reply_codes(&ev).is_empty(), "{body}: {ev:?}");
        assert!(matches!(ev[0], Event::Skipped(_)), "{body}: {ev:?}");
    }
}

#[test]
fn content_length_off_either_way_costs_one_message() {
    let body = r#"{"jsonrpc":"2.0","id":5,"method":"lokal/stats","params":{"é":"ü"}}"#;
    // Characters counted instead of bytes: 2 short.
    let short = format!("Content-Length: {}\r\n\r\n{body}", body.chars().count());
    let ev = assert_recovers(short.as_bytes());
    assert_eq!(reply_codes(&ev), vec![(-32700, json!(5))], "the broken request is answered under its id");
    for delta in [1usize, 3, 20] {
        let long = format!("Content-Length: {}\r\n\r\n{body}", body.len() + delta);
        let ev = assert_recovers(long.as_bytes());
        assert_eq!(reply_codes(&ev), vec![(-32700, json!(5))], "+{delta}: {ev:?}");
    }
    // Far too long, but within the limit: the next header behind a complete value ends the wait.
    let ev = assert_recovers(format!("Content-Length: 1000000\r\n\r\n{body}").as_bytes());
    assert_eq!(reply_codes(&ev), vec![(-32700, json!(5))]);
}

#[test]
fn headers_without_a_usable_length_are_answered() {
    let ev = assert_recovers(b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"x\"}");
    assert_eq!(reply_codes(&ev), vec![(-32700, json!(8))]);
    let ev = assert_recovers(b"Content-Length: 99999999999999999999\r\n\r\n{}");
    assert_eq!(reply_codes(&ev)[0].0, -32700);
    let ev = assert_recovers(b"Content-Length: 123456789\r\n\r\n{}");
    assert_eq!(reply_codes(&ev)[0].0, -32700, "over the frame limit");
    assert_recovers(b"Content-Length: -4\r\n\r\n{}");
    assert_recovers(b"Content-Length: 2\r\nthis is no header\r\n\r\n{}");
}

#[test]
fn garbage_between_frames_is_skipped() {
    let ev = assert_recovers(b"hello world\r\n\0\0\xff\xfe junk");
    assert!(reply_codes(&ev).is_empty(), "{ev:?}");
    assert_recovers(b"Content-Len");
}

#[test]
fn lone_surrogates_become_replacement_characters_and_pairs_stay() {
    let body = r#"{"jsonrpc":"2.0","method":"x","params":{"a":"\ud800b","c":"\ud83d\ude00","d":"\\ud800"}}"#;
    let ev = assert_recovers(&frame_of(body));
    let Event::Message(m) = &ev[0] else { panic!("{ev:?}") };
    assert_eq!(m["params"]["a"], "\u{FFFD}b");
    assert_eq!(m["params"]["c"], "😀");
    assert_eq!(m["params"]["d"], "\\ud800", "an escaped backslash is text, not an escape");
}

#[test]
fn well_formed_messages_pass_whole_in_any_chunking() {
    let a = r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#;
    let b = r#"{"jsonrpc":"2.0","id":"r1","result":[null]}"#;
    let c = r#"{"jsonrpc":"2.0","id":3,"method":"shutdown","params":null}"#;
    let mut all = frame_of(a);
    all.extend(frame_of(b));
    all.extend(b"\r\n");
    all.extend(frame_of(c));
    let ev = assert_recovers(&all);
    assert_eq!(ev.len(), 4, "{ev:?}");
    assert!(ev.iter().all(|e| matches!(e, Event::Message(_))), "{ev:?}");
}

#[test]
fn a_body_mentioning_content_length_is_not_cut() {
    let body = r#"{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"text":"Content-Length: 5\r\n\r\n{}"}}"#;
    let ev = assert_recovers(&frame_of(body));
    assert!(matches!(&ev[0], Event::Message(m) if m["method"] == "textDocument/didOpen"), "{ev:?}");
}

#[tokio::test]
async fn the_guard_answers_bad_frames_on_the_same_output_as_the_framework() {
    let mut input = frame_of("[1,2,3]");
    input.extend(frame_of(r#"{"jsonrpc":"2.0","id":4,"method":"x"}"#));
    let (out_w, mut out_r) = tokio::io::duplex(1 << 16);
    let input: &'static [u8] = Box::leak(input.into_boxed_slice());
    let g = guard(input, out_w, Lifecycle::new(false));
    let mut fw_in = g.input;
    let mut got = Vec::new();
    fw_in.read_to_end(&mut got).await.unwrap();
    let mut r = FrameReader::default();
    r.push(&got);
    assert_eq!(
        r.next_event(),
        Some(Event::Message(json!({"jsonrpc": "2.0", "id": 4, "method": "x"}))),
        "only the good frame reaches the framework"
    );
    assert_eq!(r.next_event(), None);
    drop(g.output);
    g.writer.await.unwrap();
    let mut out = Vec::new();
    out_r.read_to_end(&mut out).await.unwrap();
    let s = String::from_utf8(out).unwrap();
    assert!(s.starts_with("Content-Length: ") && s.contains("-32600"), "{s}");
}

#[test]
fn bare_newline_headers_end_at_their_own_blank_line() {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"x"}"#;
    let ev = assert_recovers(format!("Content-Length: {}\n\n{body}", body.len()).as_bytes());
    assert!(matches!(&ev[0], Event::Message(m) if m["id"] == 1), "{ev:?}");
}
