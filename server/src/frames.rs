//! LSP frames from bytes: a push parser that checks each frame's JSON-RPC 2.0 shape and re-synchronises
//! after a broken one. It depends on nothing but serde_json, so the fuzzer (fuzz/) builds it on its own.
use serde_json::{json, Value};

/// Larger frames are refused at the header: an open 16 MB document is well below, and a corrupt length
/// must not make us buffer gigabytes.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;
const MAX_HEADER: usize = 8 * 1024;
const CONTENT_LENGTH: &[u8] = b"content-length:";

/// What the reader makes of the input, frame by frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A well-formed JSON-RPC request, notification or response.
    Message(Value),
    /// A broken frame or invalid request: write this error response to the client.
    Reply(Value),
    /// Bytes or a message that cannot be answered (garbage between frames, an invalid notification or
    /// response): dropped, with the reason logged.
    Skipped(String),
}

/// A push parser of LSP frames: bytes in, events out. It never waits on anything but bytes, so the
/// fuzzer drives it exactly as the server does.
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Where the search for a header inside a pending over-long body resumes, so a large body arriving in
    /// small reads is scanned once, not once per read.
    scanned: usize,
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle))
}

pub fn error_reply(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn parse_error(id: Value, why: &str) -> Event {
    Event::Reply(error_reply(id, -32700, &format!("Parse error: {why}")))
}

/// The id of the first JSON object in `bytes`, if one parses there in full: a broken frame still gets its
/// error under the request's id, so the client does not wait for an answer forever.
fn scrape_id(bytes: &[u8]) -> Value {
    let mut it = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    match it.next() {
        Some(Ok(Value::Object(o))) => {
            o.get("id").filter(|id| id.is_i64() || id.is_string()).cloned().unwrap_or(Value::Null)
        }
        _ => Value::Null,
    }
}

/// Replace `\uD800`-`\uDFFF` escapes that are not a valid pair with `\uFFFD`. JavaScript strings may hold lone
/// surrogates (editors send them), serde_json refuses them, and one such character must not cost the whole
/// message.
fn fix_lone_surrogates(body: &[u8]) -> Option<Vec<u8>> {
    let hex = |b: &[u8]| -> Option<u16> { u16::from_str_radix(std::str::from_utf8(b).ok()?, 16).ok() };
    let esc = |b: &[u8], i: usize| -> Option<u16> {
        if b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u') {
            hex(b.get(i + 2..i + 6)?)
        } else {
            None
        }
    };
    let mut out = Vec::with_capacity(body.len());
    let mut changed = false;
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        match esc(body, i) {
            Some(0xD800..=0xDBFF) if matches!(esc(body, i + 6), Some(0xDC00..=0xDFFF)) => {
                out.extend_from_slice(&body[i..i + 12]);
                i += 12;
            }
            Some(0xD800..=0xDFFF) => {
                out.extend_from_slice(b"\\uFFFD");
                changed = true;
                i += 6;
            }
            _ => {
                // Any other escape: copy it whole, so `\\ud800` (an escaped backslash) stays text.
                out.extend_from_slice(&body[i..(i + 2).min(body.len())]);
                i += 2;
            }
        }
    }
    changed.then_some(out)
}

/// A request id as JSON-RPC allows and the framework reads it.
fn valid_id(id: &Value) -> bool {
    id.is_i64() || id.is_string() || id.is_null()
}

/// Check the JSON-RPC 2.0 shape of a parsed body: what the framework can decode passes, the rest is
/// answered (requests) or dropped (notifications, responses).
pub fn check(v: Value) -> Event {
    let Some(o) = v.as_object() else {
        let what = if v.is_array() { "a batch or array (LSP has no batches)" } else { "not a JSON object" };
        return Event::Reply(error_reply(Value::Null, -32600, &format!("Invalid Request: the message is {what}")));
    };
    let id = o.get("id");
    let reply_id = id.filter(|i| i.is_number() || i.is_string()).cloned().unwrap_or(Value::Null);
    // A notification or a response gets no answer, whatever is wrong with it; anything else is answered.
    let unanswerable = (o.contains_key("method") && id.is_none())
        || (!o.contains_key("method") && (o.contains_key("result") || o.contains_key("error")));
    let invalid = |why: &str| -> Event {
        if unanswerable {
            Event::Skipped(format!("invalid message: {why}"))
        } else {
            Event::Reply(error_reply(reply_id.clone(), -32600, &format!("Invalid Request: {why}")))
        }
    };
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("\"jsonrpc\" must be \"2.0\"");
    }
    if let Some(id) = id {
        if !valid_id(id) {
            return invalid("\"id\" must be an integer, a string or null");
        }
    }
    match o.get("method") {
        Some(Value::String(_)) => {
            if o.contains_key("result") || o.contains_key("error") {
                return invalid("a request carries no \"result\" or \"error\"");
            }
            match o.get("params") {
                None | Some(Value::Object(_) | Value::Array(_) | Value::Null) => Event::Message(v),
                Some(_) => invalid("\"params\" must be an object or an array"),
            }
        }
        Some(_) => invalid("\"method\" must be a string"),
        None => {
            if id.is_none() {
                return invalid("neither a request (no \"method\") nor a response (no \"id\")");
            }
            match (o.get("result"), o.get("error")) {
                (Some(_), None) => Event::Message(v),
                (None, Some(e)) if e["code"].is_i64() && e["message"].is_string() => Event::Message(v),
                (None, Some(_)) => invalid("\"error\" needs an integer \"code\" and a string \"message\""),
                _ => invalid("a response needs exactly one of \"result\" and \"error\""),
            }
        }
    }
}

impl FrameReader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered but not yet a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    fn drain(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
        self.scanned = 0;
    }

    /// Drop everything before the next `Content-Length:` at or after `from`; keep a tail that may be the
    /// start of one. Returns how many bytes were dropped.
    fn resync(&mut self, from: usize) -> usize {
        let from = from.min(self.buf.len());
        let n = match find_ci(&self.buf[from..], CONTENT_LENGTH) {
            Some(k) => from + k,
            None => self.buf.len().saturating_sub(CONTENT_LENGTH.len() - 1).max(from),
        };
        self.drain(n);
        n
    }

    /// The next event, or `None` until more bytes arrive.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let ws = self.buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            if ws > 0 {
                self.drain(ws);
            }
            if self.buf.is_empty() {
                return None;
            }
            if let Some(ev) = self.step() {
                return ev;
            }
        }
    }

    /// One parse attempt: `None` to try again (something was dropped), `Some(None)` to wait for bytes.
    fn step(&mut self) -> Option<Option<Event>> {
        let starts_header = [&b"content-length:"[..], b"content-type:"].iter().any(|h| {
            let n = h.len().min(self.buf.len());
            self.buf[..n].eq_ignore_ascii_case(&h[..n])
        });
        if !starts_header {
            let n = self.resync(1);
            return if n == 0 {
                Some(None)
            } else {
                Some(Some(Event::Skipped(format!("{n} bytes outside any frame"))))
            };
        }
        let head = &self.buf[..self.buf.len().min(MAX_HEADER)];
        // Some clients end header lines with a bare newline; whichever ending comes first ends this block.
        let crlf = find_ci(head, b"\r\n\r\n").map(|e| (e, 4));
        let lf = find_ci(head, b"\n\n").map(|e| (e, 2));
        let Some(end) = [crlf, lf].into_iter().flatten().min() else {
            if self.buf.len() >= MAX_HEADER {
                self.resync(1);
                return Some(Some(parse_error(Value::Null, "header block too long")));
            }
            return Some(None);
        };
        let (head_len, sep) = end;
        let body_start = head_len + sep;
        let mut len = None;
        let mut bad = None;
        for line in self.buf[..head_len].split(|&b| b == b'\n') {
            let line = std::str::from_utf8(line).unwrap_or("\u{FFFD}").trim_end_matches('\r');
            match line.split_once(':') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("content-length") => match v.trim().parse::<usize>() {
                    Ok(n) if n <= MAX_FRAME => len = Some(n),
                    Ok(n) => bad = Some(format!("Content-Length {n} is over the {MAX_FRAME}-byte limit")),
                    Err(_) => bad = Some(format!("bad Content-Length {:?}", v.trim())),
                },
                Some((k, _)) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {}
                _ => bad = Some(format!("not a header line: {:?}", line.chars().take(60).collect::<String>())),
            }
        }
        let Some(n) = len.filter(|_| bad.is_none()) else {
            // No usable length: the body (if any) is found by the search for the next header.
            let id = scrape_id(&self.buf[body_start..]);
            self.resync(body_start);
            return Some(Some(parse_error(id, &bad.unwrap_or_else(|| "missing Content-Length header".into()))));
        };
        let have = self.buf.len() - body_start;
        if have < n {
            // A too-long Content-Length would swallow the frames after it: when the next header shows up
            // behind a complete JSON value, the length was wrong, and we stop waiting.
            let from = (body_start + self.scanned).max(body_start);
            let start_scan = from.saturating_sub(CONTENT_LENGTH.len());
            self.scanned = self.buf.len() - body_start;
            if let Some(k) = find_ci(&self.buf[start_scan.max(body_start)..], CONTENT_LENGTH) {
                let at = start_scan.max(body_start) + k;
                if serde_json::from_slice::<serde::de::IgnoredAny>(&self.buf[body_start..at]).is_ok() {
                    let id = scrape_id(&self.buf[body_start..at]);
                    let why = format!("Content-Length {n} is longer than the body ({} bytes)", at - body_start);
                    self.drain(at);
                    return Some(Some(parse_error(id, &why)));
                }
            }
            return Some(None);
        }
        let body = &self.buf[body_start..body_start + n];
        let parsed = serde_json::from_slice::<Value>(body).or_else(|e| match fix_lone_surrogates(body) {
            Some(fixed) => serde_json::from_slice::<Value>(&fixed),
            None => Err(e),
        });
        match parsed {
            Ok(v) => {
                self.drain(body_start + n);
                Some(Some(check(v)))
            }
            Err(e) => {
                // The length may be off either way: recover from the next header, which may start inside
                // the declared body (too long) or after it (too short).
                let id = scrape_id(&self.buf[body_start..]);
                self.resync(body_start);
                Some(Some(parse_error(
                    id,
                    &format!("the body is not valid JSON ({e}); check Content-Length counts bytes"),
                )))
            }
        }
    }
}
