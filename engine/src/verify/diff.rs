//! A plan as one unified diff, for the preview a user reads before anything is applied.
use super::Change;
use similar::TextDiff;
use std::path::Path;

/// `git diff`-style text of every change against the workspace (`/dev/null` for new files); unchanged
/// files are left out.
pub fn plan_diff(workspace: &Path, changes: &[Change]) -> String {
    let mut out = String::new();
    for c in changes {
        let old = std::fs::read_to_string(workspace.join(&c.path)).ok();
        if old.as_deref() == Some(c.text.as_str()) {
            continue;
        }
        let path = c.path.display().to_string();
        let from = if old.is_some() { format!("a/{path}") } else { "/dev/null".to_string() };
        let diff = TextDiff::from_lines(old.as_deref().unwrap_or(""), c.text.as_str());
        out.push_str(&format!("diff --git a/{path} b/{path}\n"));
        if old.is_none() {
            out.push_str("new file mode 100644\n");
        }
        out.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .missing_newline_hint(true)
                .header(&from, &format!("b/{path}"))
                .to_string(),
        );
    }
    out
}
