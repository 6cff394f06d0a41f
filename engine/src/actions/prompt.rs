//! The prompt for a stub's body, laid out for small base models: a plain instruction, the file's other
//! signatures, then an open code block holding the file down to the stub's opening brace, so the answer
//! is a continuation of real code rather than a free-form reply.
use super::StubJob;
use crate::syntax::{Lang, SyntaxTree};
use crate::verify::grammar::body_end;
use std::ops::Range;

/// The file above the stub that goes into the code block; more costs prompt time on small machines.
const ABOVE_MAX: usize = 6000;

#[derive(Debug, Clone)]
pub struct StubPrompt {
    pub user: String,
    /// The open code block down to where the body starts.
    pub answer_prefix: String,
    pub body_indent: String,
    indent: String,
    python: bool,
}

impl StubPrompt {
    pub fn new(job: &StubJob) -> Self {
        let text = &job.text;
        let line_start = text[..job.item_start].rfind('\n').map_or(0, |i| i + 1);
        let indent: String = text[line_start..].chars().take_while(|c| c.is_whitespace() && *c != '\n').collect();
        let python = job.lang == Lang::Python;
        let body_indent = if python {
            let ls = text[..job.replace.start].rfind('\n').map_or(0, |i| i + 1);
            text[ls..job.replace.start].to_string()
        } else {
            format!("{indent}    ")
        };
        let tree = SyntaxTree::new(job.lang, text);
        let name = tree.stubs(text).into_iter().find(|s| s.replace == job.replace).map(|s| s.item.name);
        let others = tree.context(text, Some(&(job.item_start..job.replace.end)));
        let mut from = job.replace.start.saturating_sub(ABOVE_MAX);
        while !text.is_char_boundary(from) {
            from += 1;
        }
        let from = if from == 0 { 0 } else { text[from..].find('\n').map_or(from, |i| from + i + 1) };
        let above = &text[from..job.replace.start];
        let open = if python { String::new() } else { format!("\n{body_indent}") };
        let what = name.map_or("the unfinished function".to_string(), |n| format!("the function `{n}`"));
        let user = format!(
            "Write the body of {what} in {}. Replace the placeholder with working code that compiles and does what the doc comment and the name say. Signatures in this file:\n{}",
            job.path.display(),
            others.trim_end()
        );
        StubPrompt {
            user,
            answer_prefix: format!("```{}\n{above}{open}", job.lang.fence()),
            body_indent,
            indent,
            python,
        }
    }

    /// The text that replaces the stub's placeholder.
    pub fn new_text(&self, body: &str) -> String {
        if self.python {
            body.trim_end().to_string()
        } else {
            format!("\n{}{}\n{}", self.body_indent, body.trim_end(), self.indent)
        }
    }

    pub fn splice(&self, text: &str, range: Range<usize>, body: &str) -> String {
        format!("{}{}{}", &text[..range.start], self.new_text(body), &text[range.end..])
    }
}

/// The body in a generated continuation: up to the brace that closes it (brace languages) or the first
/// line indented less than the body (Python). `None` when nothing is left.
pub fn cut_body(lang: Lang, generated: &str, body_indent: &str) -> Option<String> {
    let body = if lang == Lang::Python {
        let mut end = generated.len();
        let mut at = 0;
        for (i, line) in generated.split_inclusive('\n').enumerate() {
            if i > 0 && !line.trim().is_empty() && !line.starts_with(body_indent) {
                end = at;
                break;
            }
            at += line.len();
        }
        &generated[..end]
    } else {
        // Without a closing brace the model stopped early (a fence, the token budget): keep what it wrote
        // and let the checker judge it.
        body_end(generated).map_or(generated, |e| &generated[..e - 1])
    };
    let body = body.trim_end();
    (!body.trim().is_empty()).then(|| body.to_string())
}
