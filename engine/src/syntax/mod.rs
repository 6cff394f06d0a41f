//! Syntax awareness for code actions: tree-sitter trees of open documents (Rust, Python,
//! TypeScript/JavaScript, Go), kept up to date incrementally, and the questions actions ask of them:
//! the item around a cursor, stubs waiting for a body, imports and signatures for context, whether
//! generated code parses, and where a function's tests go. Languages without a grammar return `None`
//! and callers fall back to plain text windows. Design documents are in [`design_doc`].
pub mod design_doc;

use std::ops::Range;
use tree_sitter::{InputEdit, Node, Parser, Point, Tree};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    TypeScript,
    /// TSX grammar; also parses JavaScript.
    Tsx,
    Go,
}

impl Lang {
    pub fn from_id_or_path(language_id: &str, path: &str) -> Option<Lang> {
        match language_id {
            "rust" => return Some(Lang::Rust),
            "python" => return Some(Lang::Python),
            "typescript" => return Some(Lang::TypeScript),
            "typescriptreact" | "javascript" | "javascriptreact" => return Some(Lang::Tsx),
            "go" => return Some(Lang::Go),
            _ => {}
        }
        match path.rsplit('.').next()? {
            "rs" => Some(Lang::Rust),
            "py" => Some(Lang::Python),
            "ts" | "mts" | "cts" => Some(Lang::TypeScript),
            "tsx" | "js" | "jsx" | "mjs" | "cjs" => Some(Lang::Tsx),
            "go" => Some(Lang::Go),
            _ => None,
        }
    }

    fn grammar(self) -> tree_sitter::Language {
        match self {
            Lang::Rust => tree_sitter_rust::LANGUAGE.into(),
            Lang::Python => tree_sitter_python::LANGUAGE.into(),
            Lang::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Lang::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Lang::Go => tree_sitter_go::LANGUAGE.into(),
        }
    }

    pub fn fence(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::TypeScript => "typescript",
            Lang::Tsx => "javascript",
            Lang::Go => "go",
        }
    }

    fn functions(self) -> &'static [&'static str] {
        match self {
            Lang::Rust => &["function_item"],
            Lang::Python => &["function_definition"],
            Lang::TypeScript | Lang::Tsx => &["function_declaration", "method_definition", "function_expression"],
            Lang::Go => &["function_declaration", "method_declaration"],
        }
    }

    fn types(self) -> &'static [&'static str] {
        match self {
            Lang::Rust => &["struct_item", "enum_item", "impl_item", "trait_item", "mod_item"],
            Lang::Python => &["class_definition"],
            Lang::TypeScript | Lang::Tsx => &["class_declaration", "interface_declaration"],
            Lang::Go => &["type_declaration"],
        }
    }

    fn imports(self) -> &'static [&'static str] {
        match self {
            Lang::Rust => &["use_declaration"],
            Lang::Python => &["import_statement", "import_from_statement"],
            Lang::TypeScript | Lang::Tsx => &["import_statement"],
            Lang::Go => &["import_declaration", "package_clause"],
        }
    }

    pub fn line_comment(self) -> &'static str {
        match self {
            Lang::Python => "#",
            _ => "//",
        }
    }
}

pub(crate) fn parser(lang: Lang) -> Parser {
    let mut p = Parser::new();
    p.set_language(&lang.grammar()).expect("grammar version matches tree-sitter");
    p
}

/// One parse of `text`, for tools outside the engine (`lokal eval` picks its cut positions from the tree);
/// the tree-sitter crate is re-exported so they walk it with the same version.
pub fn parse(lang: Lang, text: &str) -> Option<Tree> {
    parser(lang).parse(text, None)
}

pub use tree_sitter;

/// A document's tree, re-parsed incrementally after each edit.
pub struct SyntaxTree {
    pub lang: Lang,
    parser: Parser,
    tree: Option<Tree>,
    /// Edits were recorded but not parsed yet: re-parsing on every keystroke would cost time proportional to
    /// the file, so the parse waits until something reads the tree.
    stale: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    Function,
    Type,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: ItemKind,
    pub name: String,
    pub range: Range<usize>,
    pub body: Option<Range<usize>>,
    /// The item's text up to its body.
    pub signature: String,
    /// Leading whitespace of the item's first line.
    pub indent: String,
    /// A doc comment (or docstring) directly above or inside it.
    pub documented: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stub {
    pub item: Item,
    /// What to replace with the implementation (inside the braces, or the Python body).
    pub replace: Range<usize>,
}

/// Where tests for a function go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestPlace {
    /// Insert at this byte offset of the same file (Rust: inside or after a `mod tests`).
    SameFile { at: usize, wrap_in_module: bool },
    /// A file beside or under the source (created if missing, appended to otherwise).
    File { relative: String },
}

impl SyntaxTree {
    pub fn new(lang: Lang, text: &str) -> Self {
        let mut parser = parser(lang);
        let tree = parser.parse(text, None);
        Self { lang, parser, tree, stale: false }
    }

    /// Apply an edit (byte offsets and row/byte-column points before and after it), then re-parse `new_text`
    /// reusing the unchanged parts of the old tree. With an empty `new_text` only the edit is recorded:
    /// several edits can be recorded and re-parsed once with [`Self::reparse_incremental`].
    #[allow(clippy::too_many_arguments)]
    pub fn edit(
        &mut self,
        start: usize,
        old_end: usize,
        new_end: usize,
        start_pt: (usize, usize),
        old_end_pt: (usize, usize),
        new_end_pt: (usize, usize),
        new_text: &str,
    ) {
        if let Some(t) = self.tree.as_mut() {
            t.edit(&InputEdit {
                start_byte: start,
                old_end_byte: old_end,
                new_end_byte: new_end,
                start_position: Point::new(start_pt.0, start_pt.1),
                old_end_position: Point::new(old_end_pt.0, old_end_pt.1),
                new_end_position: Point::new(new_end_pt.0, new_end_pt.1),
            });
        }
        self.stale = true;
        if !new_text.is_empty() {
            self.reparse_incremental(new_text);
        }
    }

    pub fn reparse_incremental(&mut self, text: &str) {
        self.tree = self.parser.parse(text, self.tree.as_ref());
        self.stale = false;
    }

    pub fn reparse(&mut self, text: &str) {
        self.tree = self.parser.parse(text, None);
        self.stale = false;
    }

    /// Edits were recorded since the last parse.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Re-parse incrementally from text handed out in pieces (a rope's chunks), so that the document is never
    /// copied whole: `chunk(at)` returns the text from byte `at` to the end of some piece, empty at the end.
    pub fn reparse_chunks<'a>(&mut self, mut chunk: impl FnMut(usize) -> &'a [u8]) {
        self.tree = self.parser.parse_with_options(&mut |at, _| chunk(at), self.tree.as_ref(), None);
        self.stale = false;
    }

    pub fn sexp(&self) -> String {
        self.tree.as_ref().map(|t| t.root_node().to_sexp()).unwrap_or_default()
    }

    fn root(&self) -> Option<Node<'_>> {
        self.tree.as_ref().map(|t| t.root_node())
    }

    fn item(&self, n: Node, text: &str) -> Item {
        let lang = self.lang;
        let kind = if lang.functions().contains(&n.kind()) { ItemKind::Function } else { ItemKind::Type };
        let name = n
            .child_by_field_name("name")
            .or_else(|| n.child_by_field_name("type"))
            .or_else(|| n.named_child(0).and_then(|c| c.child_by_field_name("name")))
            .map(|c| text[c.byte_range()].to_string())
            .unwrap_or_else(|| "item".into());
        let body = n.child_by_field_name("body").map(|b| b.byte_range());
        let sig_end = body.as_ref().map(|b| b.start).unwrap_or(n.end_byte());
        let line_start = text[..n.start_byte()].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let indent: String = text[line_start..].chars().take_while(|c| *c == ' ' || *c == '\t').collect();
        let before = text[..line_start].trim_end_matches(['\n', ' ', '\t']);
        let last = before.rsplit('\n').next().unwrap_or("").trim_start();
        let documented = last.starts_with("///")
            || last.starts_with("/**")
            || last.ends_with("*/")
            || last.starts_with("#[doc")
            || (lang == Lang::Go && last.starts_with("//"))
            || (lang == Lang::Python
                && body.as_ref().is_some_and(|b| text[b.clone()].trim_start().starts_with(['"', '\''])));
        Item {
            kind,
            name,
            range: n.byte_range(),
            body,
            signature: text[n.start_byte()..sig_end].trim_end().to_string(),
            indent,
            documented,
        }
    }

    /// The innermost function, or else type, around `range`.
    pub fn enclosing_item(&self, text: &str, range: Range<usize>) -> Option<Item> {
        let root = self.root()?;
        // A cursor at the end of a token belongs to that token (and so to the item it ends).
        let (a, b) = if range.is_empty() && range.start > 0 {
            (range.start - 1, range.start)
        } else {
            (range.start, range.end.max(range.start))
        };
        let mut n = root.descendant_for_byte_range(a, b)?;
        let mut ty = None;
        loop {
            if self.lang.functions().contains(&n.kind()) {
                return Some(self.item(n, text));
            }
            if ty.is_none() && self.lang.types().contains(&n.kind()) {
                ty = Some(n);
            }
            match n.parent() {
                Some(p) => n = p,
                None => return ty.map(|t| self.item(t, text)),
            }
        }
    }

    /// Functions whose body is still waiting to be written.
    pub fn stubs(&self, text: &str) -> Vec<Stub> {
        let Some(root) = self.root() else { return vec![] };
        let mut out = Vec::new();
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            for i in (0..n.named_child_count()).rev() {
                stack.push(n.named_child(i).unwrap());
            }
            if !self.lang.functions().contains(&n.kind()) {
                continue;
            }
            let Some(body) = n.child_by_field_name("body") else { continue };
            let inner = &text[body.byte_range()];
            let (replace, content) = if self.lang == Lang::Python {
                (body.byte_range(), inner.trim().to_string())
            } else {
                let r = body.start_byte() + 1..body.end_byte().saturating_sub(1).max(body.start_byte() + 1);
                (r.clone(), text[r].trim().to_string())
            };
            let c = content.trim_end_matches(';').trim();
            let lower = c.to_ascii_lowercase();
            let is_stub = match self.lang {
                Lang::Rust => c.is_empty() || c.starts_with("todo!(") || c.starts_with("unimplemented!("),
                Lang::Python => c == "pass" || c == "..." || c.starts_with("raise NotImplementedError"),
                Lang::TypeScript | Lang::Tsx => {
                    c.is_empty() || (c.starts_with("throw new Error(") && lower.contains("not implemented"))
                }
                Lang::Go => {
                    c.is_empty()
                        || (c.starts_with("panic(") && (lower.contains("todo") || lower.contains("not implemented")))
                }
            };
            if is_stub {
                out.push(Stub { item: self.item(n, text), replace });
            }
        }
        out
    }

    /// Imports and the signatures of the file's other items, as compact context for the model.
    pub fn context(&self, text: &str, except: Option<&Range<usize>>) -> String {
        let Some(root) = self.root() else { return String::new() };
        let mut out = String::new();
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            let k = n.kind();
            if self.lang.imports().contains(&k) {
                out.push_str(text[n.byte_range()].trim());
                out.push('\n');
                continue;
            }
            if self.lang.functions().contains(&k) || self.lang.types().contains(&k) {
                if except.is_some_and(|e| e.start == n.start_byte()) {
                    continue;
                }
                let it = self.item(n, text);
                if it.kind == ItemKind::Function {
                    out.push_str(&format!("{}{};\n", it.indent, it.signature));
                    continue;
                }
                out.push_str(&format!("{}{}\n", it.indent, it.signature));
            }
            for i in (0..n.named_child_count()).rev() {
                stack.push(n.named_child(i).unwrap());
            }
        }
        out
    }

    /// Where tests for `item` go, by the language's custom. `path` is the file's path relative to its root.
    pub fn test_place(&self, text: &str, path: &str) -> TestPlace {
        let stem = path.rsplit('/').next().unwrap_or(path).rsplit_once('.').map(|(s, _)| s).unwrap_or(path);
        let dir = path.rsplit_once('/').map(|(d, _)| format!("{d}/")).unwrap_or_default();
        match self.lang {
            Lang::Rust => {
                let module = self.root().and_then(|r| {
                    (0..r.named_child_count()).filter_map(|i| r.named_child(i)).find(|n| {
                        n.kind() == "mod_item"
                            && n.child_by_field_name("name").is_some_and(|c| &text[c.byte_range()] == "tests")
                    })
                });
                match module.and_then(|m| m.child_by_field_name("body")) {
                    Some(body) => TestPlace::SameFile { at: body.end_byte() - 1, wrap_in_module: false },
                    None => TestPlace::SameFile { at: text.len(), wrap_in_module: true },
                }
            }
            Lang::Python => TestPlace::File { relative: format!("tests/test_{stem}.py") },
            Lang::TypeScript => TestPlace::File { relative: format!("{dir}{stem}.test.ts") },
            Lang::Tsx => TestPlace::File { relative: format!("{dir}{stem}.test.js") },
            Lang::Go => TestPlace::File { relative: format!("{dir}{stem}_test.go") },
        }
    }
}

/// Where generated code does not parse: the first error's (row, column), or `None` when it parses.
pub fn first_error(lang: Lang, text: &str) -> Option<(usize, usize)> {
    let tree = parser(lang).parse(text, None)?;
    let root = tree.root_node();
    if !root.has_error() {
        return None;
    }
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if n.is_error() || n.is_missing() {
            let p = n.start_position();
            return Some((p.row, p.column));
        }
        for i in (0..n.child_count()).rev() {
            stack.push(n.child(i).unwrap());
        }
    }
    Some((0, 0))
}

/// ERROR and MISSING nodes in a parse of `text`.
pub fn error_count(lang: Lang, text: &str) -> usize {
    let Some(tree) = parser(lang).parse(text, None) else { return usize::MAX };
    let mut n = 0;
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        if node.is_error() || node.is_missing() {
            n += 1;
        }
        if node.has_error() {
            for i in 0..node.child_count() {
                stack.push(node.child(i).unwrap());
            }
        }
    }
    n
}

/// Whether `after` (a file with generated code spliced in) parses at least as well as `before` did: the
/// user's own unfinished code must not make every insertion fail.
pub fn no_new_errors(lang: Lang, before: &str, after: &str) -> bool {
    first_error(lang, after).is_none() || error_count(lang, after) <= error_count(lang, before)
}

/// The longest run of whole lines from the start of `code` for which `ok` holds.
pub fn longest_prefix_where(code: &str, ok: impl Fn(&str) -> bool) -> Option<String> {
    let lines: Vec<&str> = code.lines().collect();
    (1..=lines.len()).rev().map(|n| lines[..n].join("\n")).find(|c| !c.trim().is_empty() && ok(c))
}

/// The longest run of whole lines from the start of `code` that, spliced into `whole` by `splice`, parses.
/// Generated code is cut back to that rather than inserted broken; `None` when not even one line fits.
pub fn longest_parsing_prefix(lang: Lang, code: &str, splice: impl Fn(&str) -> String) -> Option<String> {
    let lines: Vec<&str> = code.lines().collect();
    (1..=lines.len())
        .rev()
        .map(|n| lines[..n].join("\n"))
        .find(|c| !c.trim().is_empty() && first_error(lang, &splice(c)).is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> (String, usize) {
        let i = text.find("$0").unwrap();
        (text.replace("$0", ""), i)
    }

    #[test]
    fn stubs_per_language() {
        let cases = [
            (Lang::Rust, "fn a() -> i32 { todo!() }\nfn b() {}\nfn c() -> i32 { 1 }\nimpl X { fn d(&self) { unimplemented!(\"x\"); } }\n", vec!["a", "b", "d"]),
            (Lang::Python, "def a():\n    pass\n\ndef b():\n    return 1\n\nclass C:\n    def d(self):\n        raise NotImplementedError()\n", vec!["a", "d"]),
            (Lang::TypeScript, "function a(): number { throw new Error(\"Not implemented\"); }\nfunction b() { return 1; }\nclass C { d() {} }\n", vec!["a", "d"]),
            (Lang::Go, "package p\nfunc a() int { panic(\"TODO\") }\nfunc b() int { return 1 }\nfunc (s S) d() {}\n", vec!["a", "d"]),
        ];
        for (lang, text, want) in cases {
            let t = SyntaxTree::new(lang, text);
            let names: Vec<String> = t.stubs(text).into_iter().map(|s| s.item.name).collect();
            assert_eq!(names, want, "{lang:?}");
        }
        let text = "fn a() -> i32 { todo!() }\n";
        let s = &SyntaxTree::new(Lang::Rust, text).stubs(text)[0];
        assert_eq!(&text[s.replace.clone()], " todo!() ");
    }

    #[test]
    fn enclosing_items() {
        let (text, i) =
            at("struct S;\nimpl S {\n    /// Doc.\n    fn area(&self) -> f64 {\n        let x = 1$0;\n    }\n}\n");
        let t = SyntaxTree::new(Lang::Rust, &text);
        let it = t.enclosing_item(&text, i..i).unwrap();
        assert_eq!((it.name.as_str(), it.kind.clone(), it.documented), ("area", ItemKind::Function, true));
        assert_eq!(it.signature, "fn area(&self) -> f64");
        assert_eq!(it.indent, "    ");
        let (text, i) = at("class C:\n    x = 1$0\n");
        let it = SyntaxTree::new(Lang::Python, &text).enclosing_item(&text, i..i).unwrap();
        assert_eq!((it.name.as_str(), it.kind), ("C", ItemKind::Type));
    }

    #[test]
    fn errors_in_generated_code() {
        assert_eq!(first_error(Lang::Rust, "fn a() { let x = 1; }"), None);
        assert!(first_error(Lang::Rust, "fn a() { let x = ; }").is_some());
        assert!(first_error(Lang::Python, "def a(:\n  pass").is_some());
        let fixed = longest_parsing_prefix(Lang::Rust, "let x = 1;\nlet y = x +\n", |c| format!("fn f() {{\n{c}\n}}"));
        assert_eq!(fixed.as_deref(), Some("let x = 1;"));
    }

    #[test]
    fn incremental_edit_matches_a_fresh_parse() {
        let old = "fn a() {\n    let x = 1;\n}\n";
        let new = "fn a() {\n    let xy = 1;\n}\n";
        let mut t = SyntaxTree::new(Lang::Rust, old);
        // Insert "y" after "x" at byte 17 (row 1, column 9).
        t.edit(17, 17, 18, (1, 9), (1, 9), (1, 10), new);
        assert_eq!(t.sexp(), SyntaxTree::new(Lang::Rust, new).sexp());
    }

    #[test]
    fn context_and_test_places() {
        let text = "use std::fmt;\nfn a(x: i32) -> i32 { x }\nfn b() {}\n#[cfg(test)]\nmod tests {\n    fn t() {}\n}\n";
        let t = SyntaxTree::new(Lang::Rust, text);
        let ctx = t.context(text, None);
        assert!(ctx.contains("use std::fmt;") && ctx.contains("fn a(x: i32) -> i32;"), "{ctx}");
        match t.test_place(text, "src/lib.rs") {
            TestPlace::SameFile { at, wrap_in_module: false } => assert_eq!(&text[at..at + 1], "}"),
            other => panic!("{other:?}"),
        }
        let py = SyntaxTree::new(Lang::Python, "def f():\n  pass\n");
        assert_eq!(py.test_place("", "pkg/mod.py"), TestPlace::File { relative: "tests/test_mod.py".into() });
        let go = SyntaxTree::new(Lang::Go, "package p\n");
        assert_eq!(go.test_place("", "pkg/x.go"), TestPlace::File { relative: "pkg/x_test.go".into() });
    }
}
