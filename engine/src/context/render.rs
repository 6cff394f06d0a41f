//! How the chosen snippets are written into the prompt, before the file's prefix. Models trained on
//! repository-level files (Qwen2.5-Coder's `<|repo_name|>`/`<|file_sep|>`, StarCoder2's `<repo_name>`/
//! `<file_sep>`) get them as the other files of the repository, in that format, ending with the current
//! file's separator and path (as llama.cpp's `/infill` lays out `input_extra`). Every other model gets
//! them as line comments of the file's language, each snippet under its path, so the text stays valid
//! code for a model that only continues it.
use crate::fim::FimFamily;
use crate::syntax::Lang;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockStyle {
    /// Repository-level tokens. The block holds special-token text: the worker must tokenize it with
    /// special tokens parsed, and put it before the FIM prefix token.
    Repo { repo_token: String, file_token: String, repo_name: String, newline_after_name: bool },
    /// Line comments with this marker, placed at the start of the prefix text.
    Comments { marker: &'static str },
    /// No way to add context to this file without risking its syntax: no block.
    Off,
}

/// Line comment marker by file extension, for files without a tree-sitter grammar too; `None` where no
/// line comment is known (markup, data): such files get no context rather than text that breaks them.
pub fn comment_marker(path: &str) -> Option<&'static str> {
    if let Some(lang) = Lang::from_id_or_path("", path) {
        return Some(lang.line_comment());
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    if matches!(name, "Makefile" | "Dockerfile" | "CMakeLists.txt") {
        return Some("#");
    }
    match name.rsplit_once('.')?.1 {
        "c" | "h" | "cc" | "cpp" | "cxx" | "hpp" | "hh" | "java" | "kt" | "kts" | "swift" | "cs" | "scala" | "dart"
        | "php" | "zig" | "proto" | "groovy" | "gradle" | "v" | "sv" => Some("//"),
        "sh" | "bash" | "zsh" | "rb" | "pl" | "r" | "R" | "toml" | "yaml" | "yml" | "ex" | "exs" | "nim" | "jl"
        | "cmake" | "ps1" | "tf" => Some("#"),
        "sql" | "lua" | "hs" | "elm" | "adb" | "ads" => Some("--"),
        "el" | "clj" | "cljs" | "lisp" | "scm" => Some(";;"),
        _ => None,
    }
}

impl BlockStyle {
    /// The style for a model and a file. `repo_tokens`: the texts of the model's repository-name and
    /// file-separator tokens, where its vocabulary has them (`FimTokens::rep`/`sep`).
    pub fn choose(
        family: Option<FimFamily>,
        repo_tokens: Option<(&str, &str)>,
        repo_name: &str,
        path: &str,
    ) -> BlockStyle {
        match (family, repo_tokens) {
            (Some(f @ (FimFamily::QwenCoder | FimFamily::StarCoder | FimFamily::Generic)), Some((rep, sep))) => {
                BlockStyle::Repo {
                    repo_token: rep.to_string(),
                    file_token: sep.to_string(),
                    repo_name: repo_name.to_string(),
                    // Qwen2.5-Coder's documented layout has a line break after the name; StarCoder2's has none.
                    newline_after_name: f != FimFamily::StarCoder,
                }
            }
            _ => match comment_marker(path) {
                Some(marker) => BlockStyle::Comments { marker },
                None => BlockStyle::Off,
            },
        }
    }

    /// One snippet as it appears in the block (what its tokens are counted on).
    pub fn snippet(&self, path: &str, text: &str) -> String {
        match self {
            // The block is tokenized with special tokens parsed: a file that spells them out must not
            // start a file or a repository of its own.
            BlockStyle::Repo { file_token, repo_token, .. } => {
                format!(
                    "{file_token}{path}\n{}\n",
                    text.trim_end().replace(file_token.as_str(), "").replace(repo_token.as_str(), "")
                )
            }
            BlockStyle::Comments { marker } => {
                let mut s = format!("{marker} path: {path}\n");
                for line in text.trim_end().lines() {
                    if line.trim().is_empty() {
                        s.push_str(marker);
                    } else {
                        s.push_str(&format!("{marker} {line}"));
                    }
                    s.push('\n');
                }
                s
            }
            BlockStyle::Off => String::new(),
        }
    }

    /// What the block adds besides its snippets.
    pub fn frame(&self, current_path: &str) -> (String, String) {
        match self {
            BlockStyle::Repo { repo_token, file_token, repo_name, newline_after_name } => {
                let nl = if *newline_after_name { "\n" } else { "" };
                (format!("{repo_token}{repo_name}{nl}"), format!("{file_token}{current_path}\n"))
            }
            // A blank line parts the context from the file's own first line.
            BlockStyle::Comments { .. } => (String::new(), "\n".to_string()),
            BlockStyle::Off => (String::new(), String::new()),
        }
    }

    /// The whole block for `snippets` ((path, text) pairs, in order). Empty when there are none, so a
    /// prompt without context is exactly what it was before context existed.
    pub fn render<'a>(&self, current_path: &str, snippets: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
        let body: String = snippets.into_iter().map(|(p, t)| self.snippet(p, t)).collect();
        if body.is_empty() {
            return body;
        }
        let (head, tail) = self.frame(current_path);
        format!("{head}{body}{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qwen_repo_format() {
        let s = BlockStyle::choose(
            Some(FimFamily::QwenCoder),
            Some(("<|repo_name|>", "<|file_sep|>")),
            "billing",
            "src/ledger.rs",
        );
        let block = s.render(
            "src/ledger.rs",
            [("src/invoice.rs", "pub fn total(&self) -> i64;\n"), ("src/customer.rs", "pub struct Customer;")],
        );
        assert_eq!(
            block,
            "<|repo_name|>billing\n<|file_sep|>src/invoice.rs\npub fn total(&self) -> i64;\n<|file_sep|>src/customer.rs\npub struct Customer;\n<|file_sep|>src/ledger.rs\n"
        );
        assert_eq!(s.render("src/ledger.rs", []), "");
        assert_eq!(s.snippet("a.py", "x = '<|file_sep|>evil.py'\n"), "<|file_sep|>a.py\nx = 'evil.py'\n");
        let sc = BlockStyle::choose(Some(FimFamily::StarCoder), Some(("<repo_name>", "<file_sep>")), "r", "a.py");
        assert_eq!(
            sc.render("a.py", [("b.py", "def f(): ...")]),
            "<repo_name>r<file_sep>b.py\ndef f(): ...\n<file_sep>a.py\n"
        );
    }

    #[test]
    fn comments_in_the_files_language() {
        // A FIM family without repository tokens, and a base model, both get comments.
        for family in [Some(FimFamily::CodeLlama), None, Some(FimFamily::QwenCoder)] {
            let s = BlockStyle::choose(family, None, "r", "app/report.py");
            assert_eq!(
                s.render("app/report.py", [("app/models.py", "class Invoice:\n\n    total: int")]),
                "# path: app/models.py\n# class Invoice:\n#\n#     total: int\n\n"
            );
        }
        assert_eq!(BlockStyle::choose(None, None, "r", "src/x.rs"), BlockStyle::Comments { marker: "//" });
        assert_eq!(BlockStyle::choose(None, None, "r", "q.sql"), BlockStyle::Comments { marker: "--" });
        assert_eq!(BlockStyle::choose(None, None, "r", "README.md"), BlockStyle::Off);
        assert_eq!(BlockStyle::Off.render("README.md", [("a.rs", "fn a();")]), "");
    }
}
