//! Property tests (the fuzzing of issue 14, run by `cargo test` and, longer, by scripts/fuzz.sh): the frame
//! reader, incremental document sync in both position encodings, and the settings parser.
use crate::documents::{Document, Encoding};
use crate::framing::{Event, FrameReader};
use proptest::prelude::*;
use serde_json::{json, Value};
use tower_lsp_server::ls_types::{Position, Range, TextDocumentContentChangeEvent};

fn cases(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default),
        ..ProptestConfig::default()
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    v.extend_from_slice(body);
    v
}

fn events(bytes: &[u8], cuts: &[usize]) -> Vec<Event> {
    let mut r = FrameReader::default();
    let mut out = Vec::new();
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort();
    cuts.push(bytes.len());
    for c in cuts {
        r.push(&bytes[at..c.max(at)]);
        at = c.max(at);
        while let Some(e) = r.next_event() {
            out.push(e);
        }
        assert!(r.pending() <= bytes.len(), "the reader holds more than it was given");
    }
    out
}

fn message() -> impl Strategy<Value = Value> {
    (any::<i32>(), "\\PC{0,40}", prop::bool::ANY).prop_map(|(id, text, req)| {
        if req {
            json!({"jsonrpc": "2.0", "id": id, "method": "lokal/stats", "params": {"text": text}})
        } else {
            json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"text": text}})
        }
    })
}

/// Junk a broken client might write between frames: anything without a header in it.
fn junk() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..60)
        .prop_filter("no header inside", |b| !b.windows(15).any(|w| w.eq_ignore_ascii_case(b"content-length:")))
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn the_frame_reader_survives_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let _ = events(&bytes, &cuts);
    }

    #[test]
    fn good_frames_survive_any_chunking_and_junk_between_them(msgs in prop::collection::vec((message(), junk()), 1..6), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let mut bytes = Vec::new();
        for (m, j) in &msgs {
            bytes.extend(frame(&serde_json::to_vec(m).unwrap()));
            bytes.extend(j);
        }
        // The last junk has no frame after it to end it: drop it.
        let ev = events(&bytes, &cuts);
        let got: Vec<&Value> = ev.iter().filter_map(|e| if let Event::Message(m) = e { Some(m) } else { None }).collect();
        let want: Vec<&Value> = msgs.iter().map(|(m, _)| m).collect();
        prop_assert_eq!(got, want);
    }
}

/// LSP position of char `c` in `s`, in `enc` units.
fn pos_of(s: &str, c: usize, enc: Encoding) -> Position {
    let before: String = s.chars().take(c).collect();
    let line_start = before.rfind(['\n', '\r']).map(|i| i + 1).unwrap_or(0);
    // "\r\n" is one break: a char index between them is not a valid position, and the generator avoids it.
    let line = before.matches('\n').count() + before.matches('\r').count() - before.matches("\r\n").count();
    let col = &before[line_start..];
    let units = match enc {
        Encoding::Utf8 => col.len(),
        Encoding::Utf16 => col.encode_utf16().count(),
    };
    Position::new(line as u32, units as u32)
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "é", "😀", "\n", "\r\n", " ", "中", "x\u{2028}y"]), 0..20)
        .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn incremental_edits_match_a_reference_string(init in text(), edits in prop::collection::vec((any::<usize>(), any::<usize>(), text(), prop::bool::ANY), 0..12)) {
        for enc in [Encoding::Utf16, Encoding::Utf8] {
            let mut reference = init.clone();
            let mut doc = Document::new(&init, 1, "plaintext".into());
            for (a, b, t, whole) in &edits {
                let n = reference.chars().count();
                // Positions inside a "\r\n" pair are not positions; move them off it.
                let fix = |c: usize, s: &str| {
                    let c = c % (n + 1);
                    let v: Vec<char> = s.chars().collect();
                    if c > 0 && c < v.len() && v[c - 1] == '\r' && v[c] == '\n' { c + 1 } else { c }
                };
                let (s, e) = { let (x, y) = (fix(*a, &reference), fix(*b, &reference)); (x.min(y), x.max(y)) };
                let change = if *whole {
                    TextDocumentContentChangeEvent { range: None, range_length: None, text: t.clone() }
                } else {
                    TextDocumentContentChangeEvent { range: Some(Range::new(pos_of(&reference, s, enc), pos_of(&reference, e, enc))), range_length: None, text: t.clone() }
                };
                doc.apply_change(&change, enc);
                if *whole {
                    reference = t.clone();
                } else {
                    let bs = reference.char_indices().nth(s).map(|(i, _)| i).unwrap_or(reference.len());
                    let be = reference.char_indices().nth(e).map(|(i, _)| i).unwrap_or(reference.len());
                    reference.replace_range(bs..be, t);
                }
                prop_assert_eq!(doc.text(), reference.clone(), "{:?} after {:?}", enc, change);
                // Every char boundary converts to a position and back.
                let n = reference.chars().count();
                let c = (a ^ b) % (n + 1);
                let c = fix(c, &reference).min(n);
                prop_assert_eq!(doc.char_at(pos_of(&reference, c, enc), enc), Ok(c));
            }
        }
    }

    #[test]
    fn edits_far_outside_the_document_clamp_and_never_panic(init in text(), l in any::<u32>(), c in any::<u32>(), l2 in any::<u32>(), c2 in any::<u32>(), t in text()) {
        for enc in [Encoding::Utf16, Encoding::Utf8] {
            let mut doc = Document::new(&init, 1, "plaintext".into());
            let change = TextDocumentContentChangeEvent { range: Some(Range::new(Position::new(l, c), Position::new(l2, c2))), range_length: None, text: t.clone() };
            let _ = doc.change_span(&change, enc);
            doc.apply_change(&change, enc);
            let _ = doc.char_at(Position::new(l, c), enc);
            prop_assert!(doc.text().contains(&t));
        }
    }
}

fn setting_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        Just(json!([1, "x"])),
        Just(json!({"url": "http://x", "kind": "openai"})),
    ]
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn the_settings_parser_takes_any_json(keys in prop::collection::vec((prop::sample::select(vec!["modelPath", "sequences", "ctxPerSequence", "maxTokens", "maxLines", "threads", "gpuLayers", "cacheEnabled", "hostCacheMb", "reuseMinChunk", "contextHoldMs", "prefixTokens", "suffixTokens", "speculative", "draftMax", "remote", "defaultTier", "minimumTier", "overrides", "modelpath"]), setting_value()), 0..8), nest in any::<bool>()) {
        let obj: serde_json::Map<String, Value> = keys.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let v = if nest { json!({"lokal": obj}) } else { Value::Object(obj) };
        let base = lokal_engine::EngineConfig::default();
        let s = lokal_engine::settings::parse(&v, &base);
        // A problem names keys the client sent, never one it did not (a rule over several keys names them all).
        for p in &s.problems {
            for key in p.key.split(", ") {
                // `overrides["x"]` is a value inside the key `overrides`.
                let top = key.split('[').next().unwrap_or(key);
                prop_assert!(obj_keys(&v).iter().any(|k| k == top), "problem for a key not sent: {:?}", p);
            }
        }
        // What was applied round-trips: the engine gets exactly what was asked for.
        let again = lokal_engine::settings::parse(&serde_json::to_value(&s.engine).unwrap(), &base);
        prop_assert_eq!(again.engine, s.engine);
        let _ = crate::settings::TierSettings::from_settings(&v);
    }
}

fn obj_keys(v: &Value) -> Vec<String> {
    let v = v.get("lokal").unwrap_or(v);
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}
