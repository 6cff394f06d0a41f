//! Edit traces: a person's session in a fixture workspace (open files, move the cursor, type, accept
//! suggestions), replayed over the real LSP path by `lokal bench` and `lokal demo`.
use crate::client::{LspClient, RpcError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Deserialize)]
pub struct Trace {
    pub description: String,
    /// Workspace folder, relative to the trace file.
    pub workspace: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// didOpen a file of the workspace.
    Open(String),
    /// Move the cursor: to the end of the first occurrence of `after` in `file` (optionally on a new line
    /// typed there), then ask for a completion (a "cold" request, or a "switch" when the file was the
    /// active one earlier).
    Goto { file: String, after: String },
    /// Type text one character at a time, asking for a completion after each `every` characters.
    Type {
        text: String,
        #[serde(default = "one")]
        every: usize,
        /// Milliseconds between characters, for the demo's human pace (the benchmark ignores it).
        #[serde(default)]
        pace_ms: u64,
    },
    /// Accept the first line of the last suggestion (as Tab on ghost text), then ask again.
    Accept,
    /// Switch back to a file visited earlier: the editor restores its cursor where the user left it.
    Back(String),
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Cold,
    Keystroke,
    Switch,
    Jump,
    Accept,
}

impl Kind {
    /// Every kind, in the order tables and plots list them.
    pub const ALL: [Kind; 5] = [Kind::Cold, Kind::Keystroke, Kind::Switch, Kind::Jump, Kind::Accept];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Cold => "cold open",
            Kind::Keystroke => "keystroke",
            Kind::Switch => "switch back",
            Kind::Jump => "jump in file",
            Kind::Accept => "accept+continue",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub kind: Kind,
    pub file: String,
    pub suggestion: Option<String>,
    /// Wall time from sending the request to its response, at the client.
    pub latency_ms: f64,
    /// Server-side time to first token (queue + prompt processing + first sample).
    pub ttft_ms: f64,
    pub prompt_tokens: usize,
    pub redecoded_tokens: usize,
    pub generated_tokens: usize,
    pub gen_tokens_per_s: f64,
    pub from_suggestion: bool,
    /// Answered from the completion lokal computed ahead for the text after an accept (no model work then).
    #[serde(default)]
    pub from_prefetch: bool,
    pub restored: bool,
    /// lokal's own account of where the time to first token went (model requests only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phases: Option<lokal_engine::stats::Phases>,
    /// lokal's speculative decoding in this request (model requests only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<SpecSample>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecSample {
    pub drafted: usize,
    pub accepted: usize,
    /// Generation decodes (batches of a token and its drafts).
    pub decodes: usize,
}

/// Another engine replaying the same session beside lokal (the benchmark's peer): it sees the same text and
/// cursor right after lokal, so both answer the same request back to back (A B A B).
pub trait Peer {
    fn name(&self) -> &str;
    fn complete(&mut self, kind: Kind, file: &str, text: &str, cursor: usize) -> Result<Sample, String>;
}

pub struct Replayer {
    pub client: LspClient,
    pub peers: Vec<Box<dyn Peer>>,
    pub peer_samples: Vec<Vec<Sample>>,
    root: PathBuf,
    texts: HashMap<String, String>,
    versions: HashMap<String, i32>,
    active: Option<String>,
    visited: Vec<String>,
    cursor: usize,
    /// Where the cursor was left in each file, restored on a switch back.
    cursors: HashMap<String, usize>,
    last_suggestion: Option<String>,
    pub samples: Vec<Sample>,
    /// How long the user looks at a suggestion before accepting it (ms): the pause in which lokal may work
    /// ahead. 0: the accept follows the answer at once.
    pub read_ms: u64,
}

pub fn load(path: &Path) -> Result<(Trace, PathBuf), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let trace: Trace = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let root = path.parent().unwrap_or(Path::new(".")).join(&trace.workspace);
    let root = root.canonicalize().map_err(|e| format!("{}: {e}", root.display()))?;
    Ok((trace, root))
}

pub fn uri_of(root: &Path, file: &str) -> String {
    format!("file://{}", root.join(file).display())
}

/// The protocol's position of a byte offset: lines end at \n, \r\n or \r (as the server's rope counts them;
/// generated text from a random-weight model contains all three), columns are UTF-16 code units.
fn utf16_position(text: &str, byte: usize) -> (u32, u32) {
    let before = &text.as_bytes()[..byte];
    let (mut line, mut line_start) = (0u32, 0usize);
    for (i, &b) in before.iter().enumerate() {
        let breaks = b == b'\n' || (b == b'\r' && text.as_bytes().get(i + 1) != Some(&b'\n'));
        if breaks {
            line += 1;
            line_start = i + 1;
        }
    }
    (line, text[line_start..byte].encode_utf16().count() as u32)
}

impl Replayer {
    pub fn new(client: LspClient, root: PathBuf) -> Self {
        Self {
            client,
            peers: Vec::new(),
            peer_samples: Vec::new(),
            root,
            texts: HashMap::new(),
            versions: HashMap::new(),
            active: None,
            visited: Vec::new(),
            cursor: 0,
            cursors: HashMap::new(),
            last_suggestion: None,
            samples: Vec::new(),
            read_ms: 0,
        }
    }

    pub fn uri(&self, file: &str) -> String {
        uri_of(&self.root, file)
    }

    pub fn text(&self, file: &str) -> Option<&str> {
        self.texts.get(file).map(String::as_str)
    }

    pub fn open(&mut self, file: &str) -> Result<(), String> {
        let path = self.root.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let lang = match path.extension().and_then(|e| e.to_str()) {
            Some("rs") => "rust",
            Some("py") => "python",
            Some("ts") => "typescript",
            Some("go") => "go",
            Some("md") => "markdown",
            _ => "plaintext",
        };
        let uri = self.uri(file);
        self.client.open(&uri, lang, &text);
        self.texts.insert(file.to_string(), text);
        self.versions.insert(file.to_string(), 1);
        Ok(())
    }

    fn insert(&mut self, s: &str) {
        let file = self.active.clone().expect("a file is active");
        let text = self.texts.get_mut(&file).unwrap();
        let (line, col) = utf16_position(text, self.cursor);
        text.insert_str(self.cursor, s);
        self.cursor += s.len();
        let v = self.versions.get_mut(&file).unwrap();
        *v += 1;
        let version = *v;
        let uri = self.uri(&file);
        self.client.notify(
            "textDocument/didChange",
            json!({
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"range": {"start": {"line": line, "character": col}, "end": {"line": line, "character": col}}, "text": s}]
            }),
        );
    }

    /// Ask for an inline completion at the cursor and record it.
    pub fn request(&mut self, kind: Kind) -> Result<Sample, RpcError> {
        let file = self.active.clone().expect("a file is active");
        let (line, col) = utf16_position(&self.texts[&file], self.cursor);
        let uri = self.uri(&file);
        let started = Instant::now();
        let r = self.client.request(
            "textDocument/inlineCompletion",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": col}, "context": {"triggerKind": 2}}),
        )?;
        let latency_ms = started.elapsed().as_secs_f64() * 1e3;
        let suggestion =
            r.as_array().and_then(|a| a.first()).and_then(|i| i["insertText"].as_str()).map(str::to_string);
        let stats = self.client.request("lokal/stats", json!({}))?;
        let d = &stats["documents"][&uri];
        let seen = self.samples.iter().filter(|s| s.file == file && s.from_suggestion).count() as u64;
        let from_suggestion = d["servedFromSuggestion"].as_u64().unwrap_or(0) > seen;
        let seen = self.samples.iter().filter(|s| s.file == file && s.from_prefetch).count() as u64;
        let from_prefetch = d["prefetchUsed"].as_u64().unwrap_or(0) > seen;
        // The document's "last request" figures are those of the last request the model answered.
        let from_suggestion_or_prefetch = from_suggestion || from_prefetch;
        let f = |k: &str| d[k].as_f64().unwrap_or(0.0);
        let sample = Sample {
            kind,
            file: file.clone(),
            suggestion: suggestion.clone(),
            latency_ms,
            ttft_ms: if from_suggestion_or_prefetch { latency_ms } else { f("lastTtftMs") },
            prompt_tokens: if from_suggestion_or_prefetch { 0 } else { f("lastPromptTokens") as usize },
            redecoded_tokens: if from_suggestion_or_prefetch { 0 } else { f("lastRedecodedTokens") as usize },
            generated_tokens: if from_suggestion_or_prefetch { 0 } else { f("lastGeneratedTokens") as usize },
            gen_tokens_per_s: if from_suggestion_or_prefetch { 0.0 } else { f("lastGenTokensPerS") },
            from_suggestion,
            from_prefetch,
            restored: !from_suggestion_or_prefetch && d["lastRestored"].as_bool().unwrap_or(false),
            phases: if from_suggestion_or_prefetch {
                None
            } else {
                serde_json::from_value(d["lastPhases"].clone()).ok()
            },
            spec: (!from_suggestion_or_prefetch).then(|| SpecSample {
                drafted: f("lastDrafted") as usize,
                accepted: f("lastAccepted") as usize,
                decodes: f("lastGenDecodes") as usize,
            }),
        };
        self.last_suggestion = suggestion;
        self.samples.push(sample.clone());
        let text = self.texts[&file].clone();
        if !self.peers.is_empty() {
            self.wait_idle()?;
        }
        for (i, p) in self.peers.iter_mut().enumerate() {
            let s = p
                .complete(kind, &file, &text, self.cursor)
                .map_err(|e| RpcError { code: 0, message: format!("{}: {e}", p.name()) })?;
            if self.peer_samples.len() <= i {
                self.peer_samples.resize(i + 1, Vec::new());
            }
            self.peer_samples[i].push(s);
        }
        Ok(sample)
    }

    /// Wait until lokal's model has nothing running, queued or held for a pause (at most 10 s): work it does
    /// ahead after an answer (the prefetch after a suggestion, a context block held while typing) must not
    /// share the device with the peer's timed request, as the peer's ring updates are sent while it pauses.
    fn wait_idle(&mut self) -> Result<(), RpcError> {
        let until = Instant::now() + std::time::Duration::from_secs(10);
        while Instant::now() < until {
            let s = self.client.request("lokal/stats", json!({}))?;
            let busy = s["runningJobs"].as_u64().unwrap_or(0)
                + s["queuedJobs"].as_u64().unwrap_or(0)
                + s["pendingWarms"].as_u64().unwrap_or(0);
            if busy == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Ok(())
    }

    fn leave(&mut self) {
        if let Some(f) = self.active.clone() {
            self.cursors.insert(f, self.cursor);
        }
    }

    /// Run one step; `on_sample` sees each completion as it arrives (the demo prints them).
    pub fn step(
        &mut self,
        step: &Step,
        pace: bool,
        on_sample: &mut dyn FnMut(&Replayer, &Sample),
    ) -> Result<(), String> {
        let err = |e: RpcError| e.to_string();
        match step {
            Step::Open(f) => self.open(f)?,
            Step::Goto { file, after } => {
                let text = self.texts.get(file).ok_or_else(|| format!("goto {file}: not opened in the trace"))?;
                let pos =
                    text.find(after.as_str()).ok_or_else(|| format!("goto {file}: {after:?} not found"))? + after.len();
                // Moving to another place of a file the user already worked in is a jump; the first visit
                // is a cold open.
                let kind = if self.visited.contains(file) { Kind::Jump } else { Kind::Cold };
                self.leave();
                self.active = Some(file.clone());
                self.cursor = pos;
                if !self.visited.contains(file) {
                    self.visited.push(file.clone());
                }
                let s = self.request(kind).map_err(err)?;
                on_sample(self, &s);
            }
            Step::Back(file) => {
                let pos =
                    *self.cursors.get(file).ok_or_else(|| format!("back {file}: not visited earlier in the trace"))?;
                self.leave();
                self.active = Some(file.clone());
                self.cursor = pos;
                let s = self.request(Kind::Switch).map_err(err)?;
                on_sample(self, &s);
            }
            Step::Type { text, every, pace_ms } => {
                let every = (*every).max(1);
                for (i, ch) in text.chars().enumerate() {
                    if pace && *pace_ms > 0 {
                        std::thread::sleep(Duration::from_millis(*pace_ms));
                    }
                    self.insert(&ch.to_string());
                    if (i + 1) % every == 0 || i + 1 == text.chars().count() {
                        let s = self.request(Kind::Keystroke).map_err(err)?;
                        on_sample(self, &s);
                    }
                }
            }
            Step::Accept => {
                // Tab on ghost text accepts up to the end of the line (or the next line, if the suggestion
                // starts with a line break); the rest of the suggestion is then asked for again.
                let accepted = self.last_suggestion.as_deref().map(|s| match s.strip_prefix('\n') {
                    Some(rest) => format!("\n{}", rest.split('\n').next().unwrap_or("")),
                    None => s.split('\n').next().unwrap_or("").to_string(),
                });
                if self.read_ms > 0 && !pace {
                    std::thread::sleep(Duration::from_millis(self.read_ms));
                }
                // The editor applies an accepted suggestion as one change, not as typing.
                if let Some(a) = accepted.filter(|a| !a.is_empty()) {
                    self.insert(&a);
                }
                let s = self.request(Kind::Accept).map_err(err)?;
                on_sample(self, &s);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::utf16_position;

    #[test]
    fn positions_count_lines_as_the_protocol_does() {
        let t = "a\u{2028}b\rc\r\nd😀e";
        assert_eq!(utf16_position(t, t.find('b').unwrap()), (0, 2));
        assert_eq!(utf16_position(t, t.find('c').unwrap()), (1, 0));
        assert_eq!(utf16_position(t, t.find('e').unwrap()), (2, 3));
    }
}
