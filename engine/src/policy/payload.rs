//! The exact text a cloud design request sends, built in one place for every tier. In Tier 2 every byte
//! of it (instructions, requirement, code, paths, the schema) has gone through the anonymizer's one
//! pass, and the counts say what it replaced; in Tier 3 there is no payload at all.
use super::anonymize::pass::{Pass, TextKind};
use super::anonymize::{collect_schema_sources, Anonymizer};
use super::tier::Tier;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Code the request carries: a path relative to the folder, the editor's language id, the text.
#[derive(Debug, Clone, Copy)]
pub struct Snippet<'a> {
    pub path: &'a str,
    pub language: &'a str,
    pub text: &'a str,
}

#[derive(Debug, Clone)]
pub struct PayloadInput<'a> {
    pub tier: Tier,
    /// The folder whose data files are known personal data, and whose schema goes along in Tier 2.
    pub root: &'a Path,
    /// What the user asks for, in words (may be empty when the selection says it all).
    pub requirement: &'a str,
    pub selection: Option<Snippet<'a>>,
    pub open_files: Vec<Snippet<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloudPayload {
    pub system: String,
    pub user: String,
    /// True only when every byte of `system` and `user` went through the anonymizer.
    pub anonymized: bool,
    /// Replacements per detector (`e-mail`, `IBAN`, `data-file value`, …), for the audit and the user.
    pub counts: BTreeMap<String, usize>,
}

/// Most characters of one piece of code sent along.
const MAX_CODE_CHARS: usize = 12_000;

pub const DESIGN_EXAMPLE_START: &str = "--- example design ---";
pub const DESIGN_EXAMPLE_END: &str = "--- end of example ---";

/// What the cloud is asked for: a design in the format `lokal.implementFromDesignDoc` reads
/// ([`crate::syntax::design_doc`]), so the answer saved under `docs/design/` is implemented locally in one step.
pub fn system_text(tier: Tier) -> String {
    let mut s = String::from(
        "You are a senior software architect. Write a design document in markdown for the requirement. \
         A local tool implements it file by file, so keep to this format exactly:\n\
         - The first line is `# Design: <short title>`, followed by an overview (the why, the data involved, the plan).\n\
         - Then one `## ` section per file to create or change. Directly under its heading put a line \
         `File: path/to/file.ext`, the path relative to the workspace root (never absolute, never `..`). In the \
         section say what the file must contain: types, function signatures, behaviour, edge cases and tests, with \
         code sketches in fenced blocks that name their language.\n\
         - Use `File:` lines only for files to write.\n",
    );
    s.push_str(&format!(
        "{DESIGN_EXAMPLE_START}\n# Design: overdue reminders\n\nInvoices past their due date get a reminder.\n\n\
         ## Reminder rules\n\nFile: src/reminders.rs\n\n```rust\npub fn is_overdue(due: Date, today: Date) -> bool;\n```\n\n\
         ## Tests\n\nFile: tests/reminders.rs\n\nCases: due today, due yesterday.\n{DESIGN_EXAMPLE_END}\n"
    ));
    if tier == Tier::Hybrid {
        s.push_str(
            "The data in this request is anonymized: every value is a synthetic stand-in (e-mails at example.invalid, \
             `<redacted>` secrets, placeholder words and numbers). Keep table, column and function names as they are; \
             never present a stand-in as a real value.\n",
        );
    }
    s
}

fn fence(language: &str) -> &str {
    if language.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '+') {
        language
    } else {
        ""
    }
}

fn code_block(out: &mut String, title: &str, s: &Snippet, text: &str) {
    out.push_str(&format!("\n\n{title} ({}):\n```{}\n{}\n```", s.path, fence(s.language), text.trim_end_matches('\n')));
}

/// The payload for a tier. Tier 3 (and anything undecided, which is Tier 3) gets an error, never text.
pub fn build(input: &PayloadInput) -> Result<CloudPayload, String> {
    let cut = |t: &str| t.chars().take(MAX_CODE_CHARS).collect::<String>();
    match input.tier {
        Tier::Local => Err(format!(
            "nothing may leave this machine from {}: it is {}",
            input.root.display(),
            Tier::Local.describe()
        )),
        Tier::Cloud => {
            let mut user = String::new();
            if !input.requirement.trim().is_empty() {
                user.push_str(&format!("Requirement:\n{}", input.requirement));
            }
            if let Some(s) = &input.selection {
                code_block(&mut user, "Selected code", s, &cut(s.text));
            }
            for f in &input.open_files {
                code_block(&mut user, "Relevant code", f, &cut(f.text));
            }
            Ok(CloudPayload {
                system: system_text(Tier::Cloud),
                user: user.trim_start().to_string(),
                anonymized: false,
                counts: BTreeMap::new(),
            })
        }
        Tier::Hybrid => {
            let mut a = Anonymizer::new();
            a.add_sources(&collect_schema_sources(input.root));
            let (schema, mut pass) = a.finish_with_pass();
            Ok(hybrid(input, &schema.preview(), &mut pass))
        }
    }
}

fn hybrid(input: &PayloadInput, schema: &str, pass: &mut Pass) -> CloudPayload {
    let cut = |t: &str| t.chars().take(MAX_CODE_CHARS).collect::<String>();
    let system = pass.scrub(&system_text(Tier::Hybrid), TextKind::Prose);
    let mut user = String::new();
    if !input.requirement.trim().is_empty() {
        user.push_str(&format!("Requirement:\n{}", pass.scrub(input.requirement, TextKind::Prose)));
    }
    let mut code = |user: &mut String, title: &str, s: &Snippet| {
        let path = pass.scrub(s.path, TextKind::Prose);
        let text = pass.scrub(&cut(s.text), TextKind::of(s.language, s.path));
        code_block(user, title, &Snippet { path: &path, ..*s }, &text);
    };
    if let Some(s) = &input.selection {
        code(&mut user, "Selected code (anonymized: string literals and data values synthetic)", s);
    }
    for f in &input.open_files {
        code(&mut user, "Open file (anonymized: string literals and data values synthetic)", f);
    }
    user.push_str(&format!(
        "\n\nData structure (anonymized, synthetic values):\n{}",
        pass.scrub(schema, TextKind::Prose)
    ));
    let counts = pass.counts().iter().map(|(d, n)| (d.name().to_string(), *n)).collect();
    CloudPayload { system, user: user.trim_start().to_string(), anonymized: true, counts }
}

/// One line for the user and the log: what the anonymizer replaced.
pub fn describe_counts(counts: &BTreeMap<String, usize>) -> String {
    if counts.is_empty() {
        return "nothing to replace".into();
    }
    counts.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
#[path = "payload_tests.rs"]
mod tests;
