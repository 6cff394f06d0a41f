//! The model thread's prompts: a completion's window of the document in the model's FIM layout, and an
//! instruction in the model's chat template (or a plain layout for base models).
use super::Session;
use crate::api::CompletionRequest;
use crate::cancel::CancelToken;
use crate::fim::FimLayout;
use crate::model_info::Token;
use crate::retok::{self, Tokenizer};
use crate::window;
use llama_cpp_2::model::LlamaChatMessage;
use std::cell::RefCell;
use std::time::{Duration, Instant};

impl Session<'_, '_> {
    /// Document text as plain tokens, as every window is tokenized (retok.rs `Vocab`).
    pub(super) fn tokenize(&self, text: &str) -> Vec<Token> {
        retok::Vocab(self.model.vocab()).tokenize(text)
    }

    pub(super) fn count(&self, text: &str) -> usize {
        self.tokenize(text).len()
    }

    /// The context block's tokens: repository-level tokens parsed as special only in a block that says it
    /// carries them (the server renders those from the index, never from document text as-is).
    /// The block is kept per document, so only a changed block is tokenized. Any change re-decodes the
    /// whole prompt after it, so while the user types on at the same place (the cursor on the same or the
    /// next line as at the document's last completion) a changed block waits: the one the cells hold is
    /// used, and the new one is decoded ahead once the model thread has been idle for `contextHoldMs`
    /// ([`Self::take_warm`]), as llama.vscode refreshes its context chunks while the typist is idle.
    pub(super) fn context_tokens(&mut self, req: &CompletionRequest) -> Vec<Token> {
        let vocab = self.model.vocab();
        let line = req.first_line as usize + req.before.bytes().filter(|&b| b == b'\n').count();
        let kept = self.prompts.entry(req.doc.clone()).or_default();
        let typing = self.cfg.context_hold_ms > 0 && kept.last.is_some_and(|(_, l)| line.abs_diff(l) <= 1);
        kept.last = Some((Instant::now(), line));
        let Some(c) = req.context.as_ref().filter(|c| !c.text.is_empty()) else {
            kept.block = None;
            kept.warm = None;
            return Vec::new();
        };
        if let Some((text, special, tokens)) = &kept.block {
            if *text == c.text && *special == c.special {
                kept.warm = None;
                return tokens.clone();
            }
            if typing {
                kept.warm = Some(req.clone());
                return tokens.clone();
            }
        }
        kept.warm = None;
        let tokens: Vec<Token> = vocab.tokenize(c.text.as_bytes(), false, c.special).into_iter().map(|t| t.0).collect();
        kept.block = Some((c.text.clone(), c.special, tokens.clone()));
        tokens
    }

    /// When a document's held context block is due to be decoded ahead: `contextHoldMs` after its last
    /// completion came.
    fn warm_at(&self, p: &super::DocPrompt) -> Option<Instant> {
        p.warm.as_ref()?;
        Some(p.last?.0 + Duration::from_millis(self.cfg.context_hold_ms))
    }

    /// When the first held context block is due (the thread is idle when this is asked).
    pub(super) fn warm_due(&self) -> Option<Instant> {
        self.prompts.values().filter_map(|p| self.warm_at(p)).min()
    }

    /// The completion that decodes a held context block ahead (its prompt, one token), for the document
    /// that waited longest, once it is due; a keystroke stops it like a prefetch. Its answer goes nowhere:
    /// what it leaves is the cells.
    pub(super) fn take_warm(&mut self) -> Option<super::Job> {
        let now = Instant::now();
        let doc = self
            .prompts
            .iter()
            .filter_map(|(d, p)| self.warm_at(p).filter(|&at| at <= now).map(|at| (at, d)))
            .min()
            .map(|(_, d)| d.clone())?;
        let kept = self.prompts.get_mut(&doc)?;
        let mut req = kept.warm.take()?;
        // Not typing on: this one takes the new block.
        kept.last = None;
        req.max_tokens = Some(1);
        let (reply, _) = tokio::sync::oneshot::channel();
        self.warms += 1;
        Some(super::Job::Complete { req, cancel: CancelToken::new(), queued: now, reply, prefetch: true })
    }

    pub(super) fn bos(&self) -> Option<Token> {
        if self.info.add_bos {
            self.info.bos
        } else {
            None
        }
    }

    /// The prompt, and how many of its tokens are the context block's.
    pub(super) fn completion_prompt(&mut self, req: &CompletionRequest) -> (Vec<Token>, usize) {
        // The block goes in front of the prefix, where it changes only when its snippets do, so a keystroke
        // still re-decodes only the typed tokens; its tokens come out of the prefix budget.
        let block = self.context_tokens(req);
        let block_len = block.len();
        let budget = self.cfg.prefix_tokens.saturating_sub(block.len()).max(self.cfg.prefix_tokens / 4).max(1);
        let (w, prefix) = self.prefix_window(req, budget);
        let text = &req.before[w.start_byte..];
        let suffix = if self.format.uses_suffix() { self.suffix_window(&req.doc, &req.after) } else { Vec::new() };
        // The repository-token style (Qwen) puts the block after BOS, outside the FIM markers; the comment
        // style puts it at the start of the prefix text. Either way it sits before everything that changes.
        let special = req.context.as_ref().is_some_and(|c| c.special) && !block.is_empty();
        let (outer, inner) = if special { (block, Vec::new()) } else { (Vec::new(), block) };
        let bos = if special { None } else { self.bos() };
        let infill = (self.cfg.fim_layout == FimLayout::Infill && self.format.uses_suffix())
            .then(|| {
                let kept = self.prompts.get(&req.doc).and_then(|p| p.infill_head.as_ref()).map(|(h, _)| h.as_str());
                let cut = window::infill_cut(text, kept);
                let mut head = self.infill_head(&req.doc, &text[..cut]);
                let line = self.tokenize(&text[cut..]);
                let keep = budget.saturating_sub(line.len());
                head.drain(..head.len().saturating_sub(keep));
                let head: Vec<Token> = inner.iter().copied().chain(head).collect();
                self.format.assemble_infill(bos, &head, &suffix, &line)
            })
            .flatten();
        let body = infill.unwrap_or_else(|| {
            let mut prefix = prefix;
            prefix.drain(..prefix.len().saturating_sub(budget));
            let prefix: Vec<Token> = inner.iter().copied().chain(prefix).collect();
            self.format.assemble(bos, &prefix, &suffix)
        });
        let mut prompt: Vec<Token> =
            if special { self.bos().into_iter().chain(outer).chain(body).collect() } else { body };
        if prompt.is_empty() {
            // An empty document: give the model at least a newline to continue from.
            prompt = self.tokenize("\n");
        }
        (prompt, block_len)
    }

    /// The prefix window and its tokens, tokenized in proportion to what changed since this document's last
    /// window (retok.rs), which it replaces.
    fn prefix_window(&mut self, req: &CompletionRequest, budget: usize) -> (window::PrefixWindow, Vec<Token>) {
        let kept = self.prompts.entry(req.doc.clone()).or_default();
        let (prev, anchor) = (kept.prefix.take(), kept.anchor);
        let vocab = retok::Vocab(self.model.vocab());
        // While the anchor stays put (every keystroke but a few) the window's first count is of exactly the
        // text that becomes the prefix: that one goes through the incremental tokenizer and is kept. The
        // others (per-line counts after the anchor moved) are plain counts.
        let counted: RefCell<Option<(*const u8, retok::Tokenized)>> = RefCell::new(None);
        let count = |t: &str| {
            if t.is_empty() {
                return 0;
            }
            if counted.borrow().is_some() {
                return self.count(t);
            }
            let (tokens, _) = retok::tokenize(prev.as_ref(), t, &vocab, self.cuts);
            let n = tokens.tokens().len();
            *counted.borrow_mut() = Some((t.as_ptr(), tokens));
            n
        };
        let w = window::choose_prefix(&req.before, req.first_line, anchor, budget, &count);
        let text = &req.before[w.start_byte..];
        let tokens = match counted.take() {
            Some((at, t)) if at == text.as_ptr() && t.text().len() == text.len() => t,
            _ => retok::tokenize(prev.as_ref(), text, &vocab, self.cuts).0,
        };
        let out = tokens.tokens().to_vec();
        let kept = self.prompts.entry(req.doc.clone()).or_default();
        kept.anchor = Some(w.anchor_line);
        kept.prefix = Some(tokens);
        (w, out)
    }

    /// The suffix window's tokens: the same as last time for this document when the text that decided them
    /// did not change (the text after the cursor rarely does while the user types).
    fn suffix_window(&mut self, doc: &str, after: &str) -> Vec<Token> {
        let vocab = retok::Vocab(self.model.vocab());
        let kept = &mut self.prompts.entry(doc.to_string()).or_default().suffix;
        let (s, _) = retok::suffix(kept.as_ref(), after, self.cfg.suffix_tokens, &vocab);
        let tokens = s.tokens.clone();
        *kept = Some(s);
        tokens
    }

    /// The infill layout's head tokens, tokenized only when the text before the middle changed.
    fn infill_head(&mut self, doc: &str, head: &str) -> Vec<Token> {
        if let Some((text, tokens)) = self.prompts.get(doc).and_then(|p| p.infill_head.as_ref()) {
            if text == head {
                return tokens.clone();
            }
        }
        let tokens = self.tokenize(head);
        self.prompts.entry(doc.to_string()).or_default().infill_head = Some((head.to_string(), tokens.clone()));
        tokens
    }

    /// The model's own chat template where it has one; a plain instruction layout otherwise (base models).
    pub(super) fn chat_prompt(&self, system: Option<&str>, user: &str) -> String {
        if let Ok(tmpl) = self.model.chat_template(None) {
            let mut msgs = Vec::new();
            if let Some(s) = system {
                msgs.extend(LlamaChatMessage::new("system".into(), s.into()));
            }
            msgs.extend(LlamaChatMessage::new("user".into(), user.into()));
            if let Ok(p) = self.model.apply_chat_template(&tmpl, &msgs, true) {
                return p;
            }
        }
        match system {
            Some(s) => format!("{s}\n\n### Instruction\n{user}\n\n### Response\n"),
            None => format!("### Instruction\n{user}\n\n### Response\n"),
        }
    }
}
