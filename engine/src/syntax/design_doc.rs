//! Markdown design documents: which files to create or change, and the sections that describe each.
//! A target is named by a line `File: path/to/file.ext` (also `Path:` / `Target:`, with or without
//! backticks or bold) or by a heading that is a relative path.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: String,
    /// The section(s) of the document about this file, headings included.
    pub spec: String,
    /// Fenced code blocks in those sections: (language, code).
    pub code_blocks: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesignPlan {
    pub title: String,
    /// Text before the first target's section: the overview every file needs.
    pub overview: String,
    pub targets: Vec<Target>,
}

pub const NO_TARGET_HELP: &str =
    "this design document names no target file: add a line like `File: src/billing/invoice.rs` under the section that describes it (or make the section's heading the path)";

struct Section {
    level: usize,
    heading: String,
    body: String,
}

fn clean(s: &str) -> &str {
    s.trim().trim_matches(|c| c == '`' || c == '*' || c == '_' || c == '"').trim()
}

fn looks_like_path(s: &str) -> bool {
    let s = clean(s);
    !s.contains(' ')
        && s.contains('.')
        && s.rsplit('.')
            .next()
            .is_some_and(|e| !e.is_empty() && e.len() <= 5 && e.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn target_line(line: &str) -> Option<&str> {
    let l = clean(line.trim_start_matches(['-', '*', ' ']));
    for key in ["File:", "Path:", "Target:"] {
        if l.len() > key.len() && l[..key.len()].eq_ignore_ascii_case(key) {
            let rest = clean(l[key.len()..].trim_start_matches(['*', '_']));
            return looks_like_path(rest).then_some(rest);
        }
    }
    None
}

fn check_path(p: &str) -> Result<String, String> {
    if p.starts_with('/') || p.starts_with('\\') || p.contains(":\\") || p.split(['/', '\\']).any(|c| c == "..") {
        return Err(format!("target {p:?} leaves the workspace; name paths relative to the workspace root"));
    }
    Ok(p.trim_start_matches("./").to_string())
}

fn sections(doc: &str) -> Vec<Section> {
    let mut out = vec![Section { level: 0, heading: String::new(), body: String::new() }];
    let mut fenced = false;
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !fenced && (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            out.push(Section { level: hashes, heading: line[hashes..].trim().to_string(), body: String::new() });
        }
        let s = out.last_mut().unwrap();
        s.body.push_str(line);
        s.body.push('\n');
    }
    out
}

fn code_blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(String, String)> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("```") {
            match cur.take() {
                Some(b) => out.push(b),
                None => cur = Some((rest.trim().to_string(), String::new())),
            }
        } else if let Some((_, code)) = cur.as_mut() {
            code.push_str(line);
            code.push('\n');
        }
    }
    out
}

/// Plan one generation per target file. `section`: only targets whose section heading contains it.
pub fn plan(doc: &str, section: Option<&str>) -> Result<DesignPlan, String> {
    let secs = sections(doc);
    let title = secs.iter().find(|s| s.level == 1).map(|s| s.heading.clone()).unwrap_or_default();
    let mut targets: Vec<Target> = Vec::new();
    let mut first_target_section = None;
    for (i, s) in secs.iter().enumerate() {
        let mut paths: Vec<String> = s.body.lines().filter_map(target_line).map(str::to_string).collect();
        if looks_like_path(&s.heading) {
            paths.insert(0, clean(&s.heading).to_string());
        }
        if paths.is_empty() {
            continue;
        }
        if section.is_some_and(|want| !s.heading.to_lowercase().contains(&want.to_lowercase())) {
            continue;
        }
        first_target_section.get_or_insert(i);
        // The section runs to the next heading of the same or a higher level.
        let mut spec = s.body.clone();
        for sub in &secs[i + 1..] {
            if sub.level <= s.level {
                break;
            }
            spec.push_str(&sub.body);
        }
        for p in paths {
            let p = check_path(&p)?;
            match targets.iter_mut().find(|t| t.path == p) {
                Some(t) => {
                    t.spec.push_str(&spec);
                    t.code_blocks.extend(code_blocks(&spec));
                }
                None => targets.push(Target { path: p, code_blocks: code_blocks(&spec), spec: spec.clone() }),
            }
        }
    }
    if targets.is_empty() {
        return Err(match section {
            Some(s) => format!("no target file in a section matching {s:?}; {NO_TARGET_HELP}"),
            None => NO_TARGET_HELP.to_string(),
        });
    }
    let overview = secs[..first_target_section.unwrap_or(0)].iter().map(|s| s.body.as_str()).collect();
    Ok(DesignPlan { title, overview, targets })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Design: reminders\n\nWhy we need reminders.\n\n## Reminder module\n\nFile: `src/reminders.rs`\n\n```rust\npub fn due(days: u32) -> bool;\n```\n\n### Details\n\nMore about it.\n\n## src/lib.rs\n\nDeclare the module.\n\n## Notes\n\nNothing to build here.\n";

    #[test]
    fn targets_by_file_line_and_by_heading() {
        let p = plan(DOC, None).unwrap();
        assert_eq!(p.title, "Design: reminders");
        assert!(p.overview.contains("Why we need reminders"));
        let paths: Vec<&str> = p.targets.iter().map(|t| t.path.as_str()).collect();
        assert_eq!(paths, ["src/reminders.rs", "src/lib.rs"]);
        let r = &p.targets[0];
        assert!(r.spec.contains("More about it"), "subsections belong to the section");
        assert!(!r.spec.contains("Declare the module"));
        assert_eq!(r.code_blocks, vec![("rust".to_string(), "pub fn due(days: u32) -> bool;\n".to_string())]);
    }

    #[test]
    fn section_filter_and_errors() {
        let p = plan(DOC, Some("lib")).unwrap();
        assert_eq!(p.targets.len(), 1);
        assert_eq!(p.targets[0].path, "src/lib.rs");
        let e = plan("# Ideas\n\nNo files yet.\n", None).unwrap_err();
        assert!(e.contains("File: src/billing/invoice.rs"), "{e}");
        assert!(plan("## x\nFile: ../../etc/passwd.txt\n", None).unwrap_err().contains("leaves the workspace"));
        assert!(plan("## x\nFile: /etc/hosts.txt\n", None).is_err());
    }
}
