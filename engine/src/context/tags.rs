//! Definitions and imports of one source file, read from its tree-sitter tree: what the workspace index
//! keeps of a file instead of its text. Grammars are the ones [`crate::syntax`] uses; no other language
//! server is involved, so this works the same in every editor.
use crate::syntax::Lang;
use tree_sitter::{Node, Parser};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TagKind {
    Function,
    Method,
    /// Structs, classes, enums, traits, interfaces and type aliases.
    Type,
    Const,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    pub kind: TagKind,
    /// 0-based line of the declaration's first line.
    pub line: usize,
    /// The declaration up to its body, trimmed (`pub fn total(&self) -> i64`).
    pub signature: String,
    /// What a prompt shows of it: a function's signature closed as a declaration without body, a short
    /// type whole (its fields are what completions need), a long one as its signature.
    pub text: String,
    /// The header of the impl block or class a method belongs to (`impl Invoice`, `class Report(Base)`).
    pub container: Option<String>,
}

/// One import statement: the module it names and the names it takes from it (empty: the module itself
/// or all of it). `module` keeps the language's spelling (`crate::invoice`, `.models`, `./api`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Import {
    pub module: String,
    pub names: Vec<String>,
}

/// Longest type shown whole; longer ones show only their signature.
const TYPE_LINES: usize = 12;
/// Signatures longer than this are cut (a generated or minified declaration must not fill a budget).
const MAX_SIGNATURE: usize = 400;

pub(crate) fn grammar(lang: Lang) -> tree_sitter::Language {
    match lang {
        Lang::Rust => tree_sitter_rust::LANGUAGE.into(),
        Lang::Python => tree_sitter_python::LANGUAGE.into(),
        Lang::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
        Lang::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
        Lang::Go => tree_sitter_go::LANGUAGE.into(),
    }
}

/// Definitions and imports of `text` in one parse.
pub fn scan(lang: Lang, text: &str) -> (Vec<Tag>, Vec<Import>) {
    let mut p = Parser::new();
    if p.set_language(&grammar(lang)).is_err() {
        return (vec![], vec![]);
    }
    let Some(tree) = p.parse(text, None) else { return (vec![], vec![]) };
    let mut w = Walk { lang, text, tags: vec![], imports: vec![] };
    w.children(tree.root_node(), None);
    (w.tags, w.imports)
}

pub fn tags(lang: Lang, text: &str) -> Vec<Tag> {
    scan(lang, text).0
}

pub fn imports(lang: Lang, text: &str) -> Vec<Import> {
    scan(lang, text).1
}

struct Walk<'a> {
    lang: Lang,
    text: &'a str,
    tags: Vec<Tag>,
    imports: Vec<Import>,
}

fn named_children(n: Node<'_>) -> impl Iterator<Item = Node<'_>> {
    (0..n.named_child_count()).filter_map(move |i| n.named_child(i))
}

impl<'a> Walk<'a> {
    fn src(&self, n: Node) -> &'a str {
        &self.text[n.byte_range()]
    }

    fn children(&mut self, n: Node, container: Option<&str>) {
        for c in named_children(n) {
            self.node(c, container);
        }
    }

    /// The text from `n`'s start to `end` (a body's start), trimmed, as a signature.
    fn head(&self, n: Node, end: usize) -> String {
        let s = self.text[n.start_byte()..end.max(n.start_byte())].trim();
        let s = s.trim_end_matches(['{', '=', ';']).trim_end();
        match s.char_indices().nth(MAX_SIGNATURE) {
            Some((i, _)) => format!("{}…", &s[..i]),
            None => s.to_string(),
        }
    }

    /// Record a definition; `body` is where its body starts (None: it has none).
    fn push(&mut self, n: Node, name: Node, kind: TagKind, body: Option<usize>, container: Option<&str>) {
        let name = self.src(name).to_string();
        if name.is_empty() {
            return;
        }
        let signature = match kind {
            TagKind::Const => self.src(n).lines().next().unwrap_or("").trim().to_string(),
            _ => self.head(n, body.unwrap_or(n.end_byte())),
        };
        let text = match kind {
            TagKind::Function | TagKind::Method => match self.lang {
                Lang::Python => format!("{}: ...", signature.trim_end_matches(':')),
                Lang::Go => signature.clone(),
                _ if body.is_none() => signature.trim_end_matches(';').to_string() + ";",
                _ => format!("{signature};"),
            },
            TagKind::Type => {
                let whole = self.src(n).trim_end();
                if whole.lines().count() <= TYPE_LINES && whole.len() <= MAX_SIGNATURE * 2 {
                    whole.to_string()
                } else {
                    signature.clone()
                }
            }
            TagKind::Const => signature.clone(),
        };
        let line = n.start_position().row;
        self.tags.push(Tag { name, kind, line, signature, text, container: container.map(str::to_string) });
    }

    fn function_kind(container: Option<&str>) -> TagKind {
        if container.is_some() {
            TagKind::Method
        } else {
            TagKind::Function
        }
    }

    fn node(&mut self, n: Node, container: Option<&str>) {
        match self.lang {
            Lang::Rust => self.rust(n, container),
            Lang::Python => self.python(n, container),
            Lang::TypeScript | Lang::Tsx => self.typescript(n, container),
            Lang::Go => self.go(n),
        }
    }

    fn rust(&mut self, n: Node, container: Option<&str>) {
        let name = n.child_by_field_name("name");
        let body = n.child_by_field_name("body");
        let at = body.map(|b| b.start_byte());
        match (n.kind(), name) {
            ("function_item" | "function_signature_item", Some(name)) => {
                self.push(n, name, Self::function_kind(container), at, container)
            }
            ("struct_item" | "enum_item" | "union_item" | "type_item", Some(name)) => {
                self.push(n, name, TagKind::Type, at, container)
            }
            ("trait_item", Some(name)) => {
                self.push(n, name, TagKind::Type, at, container);
                if let Some(b) = body {
                    let header = self.head(n, b.start_byte());
                    self.children(b, Some(&header));
                }
            }
            ("const_item" | "static_item", Some(name)) => self.push(n, name, TagKind::Const, None, container),
            ("impl_item", _) => {
                if let Some(b) = body {
                    let header = self.head(n, b.start_byte());
                    self.children(b, Some(&header));
                }
            }
            // Test modules define nothing other files call.
            ("mod_item", Some(name)) if self.src(name) != "tests" => match body {
                Some(b) => self.children(b, None),
                None => self.imports.push(Import { module: format!("self::{}", self.src(name)), names: vec![] }),
            },
            ("use_declaration", _) => {
                if let Some(arg) = n.child_by_field_name("argument") {
                    self.imports.push(rust_use(&without_aliases(self.src(arg))));
                }
            }
            _ => {}
        }
    }

    fn python(&mut self, n: Node, container: Option<&str>) {
        let name = n.child_by_field_name("name");
        let body = n.child_by_field_name("body");
        let at = body.map(|b| b.start_byte());
        match (n.kind(), name) {
            ("function_definition", Some(name)) => self.push(n, name, Self::function_kind(container), at, container),
            ("class_definition", Some(name)) => {
                self.push(n, name, TagKind::Type, at, container);
                if let Some(b) = body {
                    let header = self.head(n, b.start_byte()).trim_end_matches(':').to_string();
                    self.children(b, Some(&header));
                }
            }
            ("decorated_definition", _) => {
                if let Some(d) = n.child_by_field_name("definition") {
                    self.python(d, container);
                }
            }
            // Module-level constants, by the convention that names them in capitals.
            ("expression_statement", _) if container.is_none() => {
                let Some(a) = n.named_child(0).filter(|a| a.kind() == "assignment") else { return };
                let Some(left) = a.child_by_field_name("left").filter(|l| l.kind() == "identifier") else { return };
                let s = self.src(left);
                if s.len() > 1 && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
                    self.push(n, left, TagKind::Const, None, None);
                }
            }
            ("import_statement", _) => {
                for m in named_children(n) {
                    let m = if m.kind() == "aliased_import" { m.child_by_field_name("name").unwrap_or(m) } else { m };
                    self.imports.push(Import { module: self.src(m).to_string(), names: vec![] });
                }
            }
            ("import_from_statement", _) => {
                let Some(m) = n.child_by_field_name("module_name") else { return };
                let names = named_children(n)
                    .filter(|c| c.id() != m.id())
                    .map(|c| if c.kind() == "aliased_import" { c.child_by_field_name("name").unwrap_or(c) } else { c })
                    .filter(|c| c.kind() == "dotted_name")
                    .map(|c| self.src(c).to_string())
                    .collect();
                self.imports.push(Import { module: self.src(m).to_string(), names });
            }
            _ => {}
        }
    }

    fn typescript(&mut self, n: Node, container: Option<&str>) {
        let name = n.child_by_field_name("name");
        let body = n.child_by_field_name("body");
        let at = body.map(|b| b.start_byte());
        match (n.kind(), name) {
            ("function_declaration" | "generator_function_declaration" | "function_signature", Some(name)) => {
                self.push(n, name, TagKind::Function, at, container)
            }
            ("method_definition" | "abstract_method_signature", Some(name)) => {
                self.push(n, name, TagKind::Method, at, container)
            }
            ("class_declaration" | "abstract_class_declaration", Some(name)) => {
                self.push(n, name, TagKind::Type, at, container);
                if let Some(b) = body {
                    let header = self.head(n, b.start_byte());
                    self.children(b, Some(&header));
                }
            }
            ("interface_declaration" | "type_alias_declaration" | "enum_declaration", Some(name)) => {
                self.push(n, name, TagKind::Type, at, container)
            }
            ("export_statement" | "ambient_declaration", _) => {
                self.children(n, container);
                if let Some(src) = n.child_by_field_name("source") {
                    self.imports.push(Import { module: unquote(self.src(src)), names: vec![] });
                }
            }
            ("lexical_declaration", _) if container.is_none() => {
                let constant = self.src(n).starts_with("const");
                for d in named_children(n).filter(|d| d.kind() == "variable_declarator") {
                    let Some(name) = d.child_by_field_name("name").filter(|x| x.kind() == "identifier") else {
                        continue;
                    };
                    let value = d.child_by_field_name("value");
                    match value.filter(|v| matches!(v.kind(), "arrow_function" | "function_expression" | "function")) {
                        Some(f) => self.push(
                            n,
                            name,
                            TagKind::Function,
                            f.child_by_field_name("body").map(|b| b.start_byte()),
                            None,
                        ),
                        None if constant => self.push(n, name, TagKind::Const, None, None),
                        None => {}
                    }
                }
            }
            ("import_statement", _) => {
                let Some(src) = n.child_by_field_name("source") else { return };
                let mut names = vec![];
                let mut stack: Vec<Node> = named_children(n).filter(|c| c.kind() == "import_clause").collect();
                while let Some(c) = stack.pop() {
                    match c.kind() {
                        "identifier" => names.push(self.src(c).to_string()),
                        "import_specifier" => {
                            if let Some(x) = c.child_by_field_name("name") {
                                names.push(self.src(x).to_string());
                            }
                        }
                        _ => stack.extend(named_children(c).collect::<Vec<_>>().into_iter().rev()),
                    }
                }
                self.imports.push(Import { module: unquote(self.src(src)), names });
            }
            _ => {}
        }
    }

    fn go(&mut self, n: Node) {
        let name = n.child_by_field_name("name");
        let body = n.child_by_field_name("body");
        let at = body.map(|b| b.start_byte());
        match (n.kind(), name) {
            ("function_declaration", Some(name)) => self.push(n, name, TagKind::Function, at, None),
            // The receiver is part of the signature, so a method needs no container.
            ("method_declaration", Some(name)) => self.push(n, name, TagKind::Method, at, None),
            ("type_declaration", _) => {
                let single = n.named_child_count() == 1;
                for spec in named_children(n).filter(|s| matches!(s.kind(), "type_spec" | "type_alias")) {
                    let Some(name) = spec.child_by_field_name("name") else { continue };
                    // `type X struct {…}` alone is shown whole; a spec of a grouped `type (…)` on its own.
                    let node = if single { n } else { spec };
                    let body = spec
                        .child_by_field_name("type")
                        .filter(|t| matches!(t.kind(), "struct_type" | "interface_type"));
                    let body = body.and_then(|t| self.src(t).find('{').map(|i| t.start_byte() + i));
                    let before = self.tags.len();
                    self.push(node, name, TagKind::Type, body, None);
                    if !single {
                        if let Some(t) = self.tags.get_mut(before) {
                            t.signature = format!("type {}", t.signature);
                            t.text = format!("type {}", t.text);
                        }
                    }
                }
            }
            ("const_declaration", _) => {
                for spec in named_children(n).filter(|s| s.kind() == "const_spec") {
                    let Some(name) = spec.child_by_field_name("name") else { continue };
                    let before = self.tags.len();
                    self.push(spec, name, TagKind::Const, None, None);
                    if let Some(t) = self.tags.get_mut(before) {
                        t.text = format!("const {}", t.text);
                    }
                }
            }
            ("import_declaration", _) => {
                let mut stack = vec![n];
                while let Some(c) = stack.pop() {
                    match c.kind() {
                        "import_spec" => {
                            if let Some(p) = c.child_by_field_name("path") {
                                self.imports.push(Import { module: unquote(self.src(p)), names: vec![] });
                            }
                        }
                        // Reversed, so the stack yields them in source order.
                        _ => stack.extend(named_children(c).collect::<Vec<_>>().into_iter().rev()),
                    }
                }
            }
            _ => {}
        }
    }
}

fn unquote(s: &str) -> String {
    s.trim_matches(['"', '\'', '`']).to_string()
}

/// A `use` argument without whitespace: `crate::a::{B, c::D}` takes B and D from `crate::a` (D's module
/// path is kept in the name, `c::D`, so resolution can follow it); `crate::a::*` takes all of it.
fn rust_use(s: &str) -> Import {
    if let Some((module, list)) = s.split_once("::{") {
        let list = list.trim_end_matches('}');
        let names = split_top(list).into_iter().filter(|n| !n.is_empty() && *n != "self" && !n.ends_with('*'));
        return Import { module: module.to_string(), names: names.map(str::to_string).collect() };
    }
    if let Some(module) = s.strip_suffix("::*") {
        return Import { module: module.to_string(), names: vec![] };
    }
    match s.rsplit_once("::") {
        Some((module, name)) => Import { module: module.to_string(), names: vec![name.to_string()] },
        None => Import { module: s.to_string(), names: vec![] },
    }
}

/// A use argument without whitespace and without `as` renames (the original name is what is defined).
fn without_aliases(s: &str) -> String {
    let mut out = String::new();
    let mut words = s.split_whitespace();
    while let Some(w) = words.next() {
        if w == "as" {
            // The alias itself goes; what punctuation follows it (`}` `,`) stays.
            let next = words.next().unwrap_or("");
            out.push_str(next.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_'));
        } else {
            out.push_str(w);
        }
    }
    out
}

/// Split a use list at its top-level commas (nested `{…}` lists stay whole).
fn split_top(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0usize, 0usize, vec![]);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_use_forms() {
        let cases = [
            ("crate::invoice::{Invoice,tax::Rate}", "crate::invoice", vec!["Invoice", "tax::Rate"]),
            ("crate::ledger::*", "crate::ledger", vec![]),
            ("super::customer::Customer", "super::customer", vec!["Customer"]),
            ("std::fmt", "std", vec!["fmt"]),
            ("crate::x::{self,Y}", "crate::x", vec!["Y"]),
            ("crate::a::Long", "crate::a", vec!["Long"]),
        ];
        for (spelled, module, names) in cases {
            let i = rust_use(spelled);
            assert_eq!(
                (i.module.as_str(), i.names.iter().map(String::as_str).collect::<Vec<_>>()),
                (module, names),
                "{spelled}"
            );
        }
        // `as` renames are dropped only where they are the keyword, not inside a name.
        assert_eq!(rust_use(&without_aliases("crate::a::Base as B")).names, vec!["Base"]);
        assert_eq!(rust_use(&without_aliases("crate::a::{Tax as T, Alias}")).names, vec!["Tax", "Alias"]);
        assert_eq!(rust_use(&without_aliases("crate::basket::Cart")).module, "crate::basket");
    }
}
