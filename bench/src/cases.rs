//! `lokal eval` on a repository: cut cases where an editor's user would be typing, chosen from the files'
//! tree-sitter trees, deterministically for a repository and a seed.
//!
//! Classes:
//! * `identifier`: the rest of a name at a use site, after its first 1-3 characters;
//! * `cross-file`: the same, for a name defined only in other files of the repository (the engine's tags
//!   say where) and not yet written above the cursor; the defining file is `visited` (opened first);
//! * `line`: the rest of a line after one of its tokens;
//! * `block`: the body of a function, `if`, `for` or `while`, cut right after its opening line; only short
//!   bodies (a few lines), so that small models are evaluated in reasonable time.
//!
//! Files are walked as the workspace index walks them (`.gitignore`, hidden files skipped), then vendored
//! and generated code, minified, large and binary files are left out: what people do not type.
use crate::eval::Case;
use lokal_engine::context::index::{self, IndexLimits};
use lokal_engine::context::tags;
use lokal_engine::syntax::tree_sitter::Node;
use lokal_engine::syntax::{self, Lang};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub const CLASSES: [&str; 4] = ["identifier", "cross-file", "line", "block"];

/// Larger files are mostly generated or data; the index reads up to 1 MB, an editor's user types in less.
const MAX_FILE_BYTES: u64 = 256 << 10;
/// A line this long means minified or generated code.
const MAX_LINE: usize = 400;
/// Files parsed for definitions (all of a large monorepo would take minutes).
const MAX_FILES: usize = 5000;
/// Files whose trees are searched for cut positions (drawn by the seed).
const MAX_CUT_FILES: usize = 400;
/// A block's body: at most this many lines and bytes.
pub const BLOCK_LINES: usize = 4;
const BLOCK_BYTES: usize = 240;
/// The rest of a line: between these many bytes.
const LINE_REST: std::ops::RangeInclusive<usize> = 4..=60;
/// A name defined in more files than this does not point at one definition (`new`, `run`, `is_empty`): the
/// visited file would be a guess.
const MAX_DEFINING_FILES: usize = 1;

/// Names every standard library has (Rust, Python, JavaScript, Go): a definition of one of them elsewhere
/// in the repository says nothing about the call at hand (`s.as_str()` is rarely the repository's own).
const COMMON_NAMES: &[&str] = &[
    "as_str",
    "as_ref",
    "as_mut",
    "to_string",
    "to_owned",
    "is_empty",
    "is_some",
    "is_none",
    "unwrap",
    "expect",
    "clone",
    "into",
    "from",
    "default",
    "iter",
    "iter_mut",
    "collect",
    "filter",
    "find",
    "fold",
    "count",
    "first",
    "last",
    "push",
    "insert",
    "remove",
    "contains",
    "extend",
    "append",
    "split",
    "join",
    "trim",
    "parse",
    "format",
    "write",
    "read",
    "flush",
    "close",
    "open",
    "start",
    "stop",
    "send",
    "recv",
    "lock",
    "next",
    "keys",
    "values",
    "items",
    "update",
    "sort",
    "reverse",
    "index",
    "length",
    "toString",
    "forEach",
    "indexOf",
    "then",
    "catch",
    "String",
    "Error",
    "Result",
    "Option",
    "Some",
    "None",
    "self",
    "this",
    "super",
    "main",
    "test",
    "setUp",
];

const VENDORED: &[&str] = &[
    "vendor",
    "vendored",
    "third_party",
    "third-party",
    "thirdparty",
    "node_modules",
    "bower_components",
    "dist",
    "build",
    "target",
    "out",
    "external",
    "extern",
    "deps",
    "site-packages",
    "__pycache__",
    "venv",
    "generated",
    "gen",
];

fn generated_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [".min.js", ".bundle.js", ".d.ts", "_pb2.py", "_pb2_grpc.py", ".pb.go", "_generated.go", ".generated.ts"]
        .iter()
        .any(|s| n.ends_with(s))
        || n.starts_with("zz_generated")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// At most this many cases.
    pub cases: usize,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { cases: 30, seed: 1 }
    }
}

/// The engine's SplitMix64 (the same seed must give the same cases on every platform and release).
struct Rng(lokal_engine::rng::SplitMix64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(lokal_engine::rng::SplitMix64(seed))
    }
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// A source file the cases may be cut from.
pub struct Source {
    /// Relative to the root, with `/`.
    pub rel: String,
    pub text: String,
    pub lang: Lang,
}

/// The files cases may come from, in a stable order (see the module docs for what is left out).
pub fn sources(root: &Path) -> Vec<Source> {
    let limits = IndexLimits { max_file_bytes: MAX_FILE_BYTES, ..IndexLimits::default() };
    let mut out = Vec::new();
    for path in index::walk(root) {
        let Ok(rel) = path.strip_prefix(root) else { continue };
        let dirs: Vec<String> = rel
            .parent()
            .into_iter()
            .flat_map(|p| p.components())
            .map(|c| c.as_os_str().to_string_lossy().into())
            .collect();
        if dirs.iter().any(|d| VENDORED.contains(&d.to_ascii_lowercase().as_str())) {
            continue;
        }
        let name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if generated_name(&name) {
            continue;
        }
        let Ok(text) = index::read_source(&path, &limits) else { continue };
        // CR line ends would put a \r at the end of every line cut; such files are rare in these repos.
        if text.contains('\r') || text.lines().count() < 3 || text.lines().any(|l| l.len() > MAX_LINE) {
            continue;
        }
        let Some(lang) = Lang::from_id_or_path("", &name) else { continue };
        let rel = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        out.push(Source { rel, text, lang });
        if out.len() == MAX_FILES {
            break;
        }
    }
    out
}

/// One possible cut.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cut {
    class: usize,
    offset: usize,
    len: usize,
    visited: Option<usize>,
}

fn opaque(kind: &str) -> bool {
    kind.contains("comment") || kind.contains("string") || kind == "heredoc_body"
}

const NAME_KINDS: &[&str] =
    &["identifier", "field_identifier", "property_identifier", "type_identifier", "shorthand_property_identifier"];
const BODY_KINDS: &[&str] = &["block", "statement_block"];
const BODY_PARENTS: &[&str] = &[
    "function_item",
    "function_definition",
    "function_declaration",
    "method_declaration",
    "method_definition",
    "arrow_function",
    "function_expression",
    "function",
    "func_literal",
    "closure_expression",
    "generator_function_declaration",
    "if_expression",
    "if_statement",
    "else_clause",
    "for_expression",
    "for_statement",
    "for_in_statement",
    "while_expression",
    "while_statement",
];

/// Where a name is declared rather than used: a definition's or binding's own name, a parameter, a
/// destructuring pattern (`let (a, b)`, `Some(x) =>`, `const {a} =`), an import.
fn declares(n: Node) -> bool {
    let Some(parent) = n.parent() else { return true };
    for field in ["name", "pattern", "alias"] {
        if parent.child_by_field_name(field).is_some_and(|c| c.id() == n.id()) {
            return true;
        }
    }
    // Assigned or bound by a loop: `x = …` (Python), `for x in …`, `for i := range …` (Go).
    let binds =
        ["assignment", "for_statement", "for_in_statement", "for_in_clause", "range_clause", "short_var_declaration"];
    let left = |p: Node| {
        p.child_by_field_name("left")
            .is_some_and(|c| c.id() == n.id() || c.kind() == "expression_list" && c.id() == parent.id())
    };
    if binds.contains(&parent.kind()) && left(parent)
        || parent.kind() == "expression_list" && parent.parent().is_some_and(|g| binds.contains(&g.kind()) && left(g))
    {
        return true;
    }
    let mut a = Some(parent);
    for _ in 0..4 {
        let Some(p) = a else { break };
        let k = p.kind();
        if k.contains("parameter")
            || k.contains("pattern")
            || k.contains("import")
            || k.contains("use_declaration")
            || k == "package_clause"
        {
            return true;
        }
        a = p.parent();
    }
    false
}

struct Leaf {
    start: usize,
    end: usize,
    row: usize,
    end_row: usize,
    opaque: bool,
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

fn line_end(text: &str, at: usize) -> usize {
    text[at..].find('\n').map_or(text.len(), |i| at + i)
}

/// Every cut in one file, in tree order.
fn cuts(srcs: &[Source], me: usize, defs: &BTreeMap<String, BTreeSet<usize>>, rng: &mut Rng) -> Vec<Cut> {
    let src = &srcs[me];
    let Some(tree) = syntax::parse(src.lang, &src.text) else { return vec![] };
    let text = src.text.as_str();
    let mut out = Vec::new();
    let mut leaves = Vec::new();
    let mut stack = vec![tree.root_node()];
    while let Some(n) = stack.pop() {
        let kind = n.kind();
        if n.is_error() || n.is_missing() {
            continue;
        }
        if n.child_count() == 0 || opaque(kind) {
            leaves.push(Leaf {
                start: n.start_byte(),
                end: n.end_byte(),
                row: n.start_position().row,
                end_row: n.end_position().row,
                opaque: opaque(kind),
            });
            if NAME_KINDS.contains(&kind) {
                if let Some(c) = name_cut(srcs, me, n, defs, rng) {
                    out.push(c);
                }
            }
            continue;
        }
        if BODY_KINDS.contains(&kind) && n.parent().is_some_and(|p| BODY_PARENTS.contains(&p.kind())) {
            if let Some(c) = block_cut(src, n) {
                out.push(c);
            }
        }
        for i in (0..n.child_count()).rev() {
            if let Some(c) = n.child(i) {
                stack.push(c);
            }
        }
    }
    leaves.sort_by_key(|l| l.start);
    out.extend(line_cuts(text, &leaves, rng));
    out
}

/// `get_config_var`, `CodecInfo`, `fetchOrders`: names of more than one word. Definitions are matched by
/// name only, and a one-word name defined somewhere in the repository (`header`, `lstrip`) is at least as
/// often a standard library's or a field of the same name.
fn compound(name: &str) -> bool {
    // Python's `__dunder__` protocol names are everybody's.
    if name.starts_with("__") {
        return false;
    }
    let b = name.trim_start_matches('_').as_bytes();
    b.iter().skip(1).any(|&c| c == b'_') || b.windows(2).any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
}

/// TypeScript and JavaScript call each other; other languages only themselves.
fn family(l: Lang) -> Lang {
    match l {
        Lang::Tsx => Lang::TypeScript,
        l => l,
    }
}

fn name_cut(
    srcs: &[Source],
    me: usize,
    n: Node,
    defs: &BTreeMap<String, BTreeSet<usize>>,
    rng: &mut Rng,
) -> Option<Cut> {
    let text = srcs[me].text.as_str();
    let name = &text[n.byte_range()];
    if !(4..=40).contains(&name.len()) || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    if declares(n) {
        return None;
    }
    let typed = 1 + rng.below(3).min(name.len() - 3);
    let cut = Cut { class: 0, offset: n.start_byte() + typed, len: name.len() - typed, visited: None };
    let elsewhere = defs.get(name).filter(|files| {
        !files.contains(&me)
            && !COMMON_NAMES.contains(&name)
            && compound(name)
            && files.len() <= MAX_DEFINING_FILES
            && name.len() >= 5
            && files.iter().all(|&f| family(srcs[f].lang) == family(srcs[me].lang))
    });
    match elsewhere {
        // Written above the cursor, the name is in the single-file prompt already: not a test of context.
        Some(files) if !text[..n.start_byte()].contains(name) => {
            Some(Cut { class: 1, visited: files.iter().next().copied(), ..cut })
        }
        Some(_) => None,
        None => Some(cut),
    }
}

fn block_cut(src: &Source, body: Node) -> Option<Cut> {
    let text = src.text.as_str();
    let (offset, end) = if src.lang == Lang::Python {
        // The body starts on the line after the colon.
        let start = line_start(text, body.start_byte());
        // ... right after the colon's line (a comment in between would put the cursor inside the body).
        if body.start_position().row == body.parent()?.start_position().row
            || !text[start..body.start_byte()].trim().is_empty()
            || !text[..start].trim_end().ends_with(':')
        {
            return None;
        }
        (start, start + text[start..body.end_byte()].trim_end().len())
    } else {
        // `{` ends its line and `}` stands on a line of its own.
        let open = body.start_byte();
        let after = line_end(text, open);
        let close = body.end_byte().checked_sub(1)?;
        if !text[open + 1..after].trim().is_empty() || after >= close {
            return None;
        }
        let close_line = line_start(text, close);
        if !text[close_line..close].trim().is_empty() || close_line <= after + 1 {
            return None;
        }
        (after + 1, close_line - 1)
    };
    let body_text = text.get(offset..end)?;
    if body_text.trim().is_empty() || body_text.len() > BLOCK_BYTES || body_text.lines().count() > BLOCK_LINES {
        return None;
    }
    Some(Cut { class: 3, offset, len: end - offset, visited: None })
}

fn line_cuts(text: &str, leaves: &[Leaf], rng: &mut Rng) -> Vec<Cut> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < leaves.len() {
        let row = leaves[i].row;
        let mut j = i;
        while j < leaves.len() && leaves[j].row == row {
            j += 1;
        }
        let on_line = &leaves[i..j];
        i = j;
        let start = line_start(text, on_line[0].start);
        let end = line_end(text, on_line[0].start);
        let indent = start + (text[start..end].len() - text[start..end].trim_start().len());
        // The whole line is made of tokens that start on it: not inside a string or comment that began above.
        if on_line[0].start != indent || on_line[0].opaque && text[on_line[0].start..].starts_with(['/', '#']) {
            continue;
        }
        if on_line.iter().any(|l| l.end_row != row)
            || on_line.last().is_some_and(|l| l.end != start + text[start..end].trim_end().len())
        {
            continue;
        }
        if on_line.len() < 3 {
            continue;
        }
        // After the second token at the earliest: the rest of a line after `pub` or `return` is a whole
        // statement, not the rest of one.
        let points: Vec<usize> = on_line[1..on_line.len() - 1]
            .iter()
            .map(|l| l.end)
            .filter(|&p| {
                let rest = &text[p..end];
                p >= indent + 3 && LINE_REST.contains(&rest.len()) && rest.bytes().any(|b| b.is_ascii_alphanumeric())
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let p = points[rng.below(points.len())];
        out.push(Cut { class: 2, offset: p, len: end - p, visited: None });
    }
    out
}

/// What `Case::at` shows of the text before the cursor: its line (the line above when the cursor starts a
/// line), without indentation, at most 80 bytes.
fn shown_before(text: &str, offset: usize) -> String {
    let mut s = line_start(text, offset);
    if s == offset && s > 0 {
        s = line_start(text, s - 1);
    }
    let mut before = text[s..offset].trim_start();
    while before.len() > 80 {
        let mut k = before.len() - 80;
        while !before.is_char_boundary(k) {
            k += 1;
        }
        before = &before[k..];
    }
    before.to_string()
}

/// Up to `opts.cases` cases cut from the files under `root`, spread over the classes (the same number of
/// each where the repository has them; what one class lacks goes to the others) and, within a class, over
/// files (one cut per file in turn). The same repository and seed give the same cases.
pub fn generate(root: &Path, opts: &Options) -> Result<Vec<Case>, String> {
    let root: PathBuf = root.canonicalize().map_err(|e| format!("{}: {e}", root.display()))?;
    let srcs = sources(&root);
    if srcs.is_empty() {
        return Err(format!(
            "{}: no Rust, Python, TypeScript/JavaScript or Go files to cut cases from",
            root.display()
        ));
    }
    let mut defs: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for (i, s) in srcs.iter().enumerate() {
        for t in tags::tags(s.lang, &s.text) {
            defs.entry(t.name).or_default().insert(i);
        }
    }
    let mut rng = Rng::new(opts.seed);
    let mut order: Vec<usize> = (0..srcs.len()).collect();
    rng.shuffle(&mut order);
    order.truncate(MAX_CUT_FILES);
    // Per class: the files that have cuts of it (in the drawn order), each with its cuts.
    let mut per_class: Vec<Vec<(usize, Vec<Cut>)>> = vec![vec![]; CLASSES.len()];
    for &f in &order {
        let mut by_class: Vec<Vec<Cut>> = vec![vec![]; CLASSES.len()];
        for c in cuts(&srcs, f, &defs, &mut rng) {
            by_class[c.class].push(c);
        }
        for (k, v) in by_class.into_iter().enumerate() {
            if !v.is_empty() {
                per_class[k].push((f, v));
            }
        }
    }
    let mut chosen: Vec<(usize, Cut)> = Vec::new();
    let mut next_file = vec![0usize; CLASSES.len()];
    let mut taken: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut used: BTreeSet<usize> = BTreeSet::new();
    while chosen.len() < opts.cases && per_class.iter().any(|files| !files.is_empty()) {
        for k in 0..CLASSES.len() {
            if chosen.len() == opts.cases {
                break;
            }
            let files = &mut per_class[k];
            if files.is_empty() {
                continue;
            }
            // The next file in turn that no case came from yet, else the next in turn: classes and files both
            // spread, rather than each file giving one case of every class.
            let start = next_file[k] % files.len();
            let slot = (0..files.len())
                .map(|d| (start + d) % files.len())
                .find(|&i| !used.contains(&files[i].0))
                .unwrap_or(start);
            let (f, cuts) = &mut files[slot];
            let c = cuts.swap_remove(rng.below(cuts.len()));
            let f = *f;
            if cuts.is_empty() {
                files.remove(slot);
                next_file[k] = slot;
            } else {
                next_file[k] = slot + 1;
            }
            // Two classes may cut at the same place (a name at the start of a line's rest): one case of it.
            if taken.insert((f, c.offset)) {
                used.insert(f);
                chosen.push((f, c));
            }
        }
    }
    Ok(chosen
        .into_iter()
        .map(|(f, c)| {
            let s = &srcs[f];
            Case {
                class: CLASSES[c.class].to_string(),
                file: s.rel.clone(),
                visited: c.visited.map(|v| srcs[v].rel.clone()).into_iter().collect(),
                at: shown_before(&s.text, c.offset),
                expected: s.text[c.offset..c.offset + c.len].to_string(),
                offset: Some(c.offset),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lokal-cases-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let files: &[(&str, &str)] = &[
            (
                "src/ledger.rs",
                "pub struct Ledger {\n    pub entries: Vec<i64>,\n}\n\npub fn quarantine_suspicious(ledger: &mut Ledger) -> usize {\n    let before = ledger.entries.len();\n    ledger.entries.retain(|e| *e >= 0);\n    before - ledger.entries.len()\n}\n\npub fn reconcile_balances(ledger: &Ledger) -> i64 {\n    ledger.entries.iter().sum()\n}\n",
            ),
            (
                "src/main.rs",
                "mod ledger;\n\nfn main() {\n    let mut book = ledger::Ledger { entries: vec![3, -1, 4] };\n    let removed = ledger::quarantine_suspicious(&mut book);\n    let total = ledger::reconcile_balances(&book);\n    if total > 0 {\n        println!(\"removed {removed}, total {total}\");\n    }\n}\n",
            ),
            (
                "app/billing.py",
                "def compute_invoice_total(items, discount):\n    subtotal = sum(item.price for item in items)\n    return subtotal - discount\n\n\ndef format_currency(amount):\n    return f\"{amount:.2f} EUR\"\n",
            ),
            (
                "app/report.py",
                "import billing\n\n\ndef render_summary(items):\n    total = billing.compute_invoice_total(items, 0)\n    label = billing.format_currency(total)\n    return \"Total: \" + label\n",
            ),
            (
                "web/api.ts",
                "export function fetchCustomerOrders(customerId: string): Promise<string[]> {\n  const url = `/customers/${customerId}/orders`;\n  return fetch(url).then((r) => r.json());\n}\n",
            ),
            (
                "web/view.ts",
                "import * as api from \"./api\";\n\nexport async function showOrders(id: string) {\n  const orders = await api.fetchCustomerOrders(id);\n  console.log(orders.length);\n}\n",
            ),
            ("cmd/tool.go", "package main\n\nimport \"fmt\"\n\nfunc describeShipment(weight int) string {\n\tif weight > 10 {\n\t\treturn \"heavy\"\n\t}\n\treturn fmt.Sprintf(\"light %d\", weight)\n}\n"),
            // Ignored, vendored, generated and binary files: full of cut places, never chosen.
            (".gitignore", "ignored/\nsecret_generated.rs\n"),
            ("ignored/skip.rs", "pub fn ignored_function_name() -> i64 {\n    let value = compute_ignored();\n    value + 1\n}\n"),
            ("secret_generated.rs", "pub fn also_ignored_name() -> i64 {\n    let value = compute_ignored();\n    value + 1\n}\n"),
            ("vendor/lib.rs", "pub fn vendored_function_name() -> i64 {\n    let value = compute_vendored();\n    value + 1\n}\n"),
            ("web/bundle.min.js", "function minifiedThing(a) {\n  return minifiedOther(a) + 1;\n}\n"),
        ];
        for (rel, text) in files {
            let p = d.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let mut bin = b"pub fn binary_function_name() -> i64 {\n    let value = 1;\n    value\n}\n".to_vec();
        bin.insert(10, 0);
        std::fs::write(d.join("src/blob.rs"), bin).unwrap();
        d
    }

    #[test]
    fn cases_cut_real_spans_of_every_class_from_source_files_only() {
        let root = repo("classes");
        let opts = Options { cases: 40, seed: 7 };
        let cases = generate(&root, &opts).unwrap();
        for class in CLASSES {
            assert!(cases.iter().any(|c| c.class == class), "no {class} case in {cases:#?}");
        }
        let files: BTreeSet<&str> = cases.iter().map(|c| c.file.as_str()).collect();
        assert!(files.iter().any(|f| f.ends_with(".py")) && files.iter().any(|f| f.ends_with(".rs")), "{files:?}");
        for c in &cases {
            assert!(
                [
                    "src/ledger.rs",
                    "src/main.rs",
                    "app/billing.py",
                    "app/report.py",
                    "web/api.ts",
                    "web/view.ts",
                    "cmd/tool.go"
                ]
                .contains(&c.file.as_str()),
                "{} is ignored, vendored, generated or binary",
                c.file
            );
            let text = std::fs::read_to_string(root.join(&c.file)).unwrap();
            let at = c.offset.unwrap();
            assert_eq!(&text[at..at + c.expected.len()], c.expected, "{c:?}");
            assert!(text[..at].ends_with(&c.at), "{c:?}");
            assert!(!c.expected.is_empty() && !c.expected.contains('\r'));
            match c.class.as_str() {
                "identifier" | "cross-file" => {
                    assert!(c.expected.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{c:?}");
                    assert!(text.as_bytes()[at - 1].is_ascii_alphanumeric() || text.as_bytes()[at - 1] == b'_');
                }
                "line" => {
                    assert!(!c.expected.contains('\n') && text[at + c.expected.len()..].starts_with('\n'), "{c:?}")
                }
                "block" => {
                    assert!(text[..at].ends_with('\n') && c.expected.lines().count() <= BLOCK_LINES, "{c:?}");
                    let opener = text[..at - 1].lines().last().unwrap().trim_end();
                    assert!(opener.ends_with('{') || opener.ends_with(':'), "{opener:?}");
                }
                other => panic!("class {other}"),
            }
        }
        // Cross-file: the whole name is defined in the visited file, not in the case's own file, and is not
        // written above the cursor.
        let cross: Vec<&Case> = cases.iter().filter(|c| c.class == "cross-file").collect();
        for c in &cross {
            assert_eq!(c.visited.len(), 1, "{c:?}");
            assert_ne!(c.visited[0], c.file);
            let text = std::fs::read_to_string(root.join(&c.file)).unwrap();
            let at = c.offset.unwrap();
            let start = text[..at].rfind(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')).unwrap() + 1;
            let name = format!("{}{}", &text[start..at], c.expected);
            let lang = Lang::from_id_or_path("", &c.visited[0]).unwrap();
            let there = std::fs::read_to_string(root.join(&c.visited[0])).unwrap();
            assert!(tags::tags(lang, &there).iter().any(|t| t.name == name), "{name} not defined in {}", c.visited[0]);
            let own = Lang::from_id_or_path("", &c.file).unwrap();
            assert!(!tags::tags(own, &text).iter().any(|t| t.name == name));
            assert!(!text[..start].contains(&name), "{name} already above the cursor");
        }
        assert!(cross.iter().any(|c| c.file == "app/report.py") || cross.iter().any(|c| c.file == "src/main.rs"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_same_seed_cuts_the_same_cases_and_the_cap_holds() {
        let root = repo("seed");
        let a = generate(&root, &Options { cases: 8, seed: 3 }).unwrap();
        let b = generate(&root, &Options { cases: 8, seed: 3 }).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 8);
        let files: BTreeSet<&str> = a.iter().map(|c| c.file.as_str()).collect();
        assert!(files.len() >= 6, "8 cases from only {files:?}");
        // Spread: two of each class when every class has enough places.
        for class in CLASSES {
            assert_eq!(a.iter().filter(|c| c.class == class).count(), 2, "{class}: {a:#?}");
        }
        let c = generate(&root, &Options { cases: 8, seed: 4 }).unwrap();
        assert_ne!(a, c, "another seed, other cases");
        // Written and read back, the cases are the same.
        let file = root.join("cases-out.json");
        crate::eval::write_case_file(&file, &root, 3, &a).unwrap();
        let (back_root, back) = crate::eval::load_case_file(&file).unwrap();
        assert_eq!((back_root, back), (root.clone(), a));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn only_names_of_several_words_point_at_a_definition() {
        for yes in ["get_config_var", "CodecInfo", "fetchOrders", "_load_table"] {
            assert!(compound(yes), "{yes}");
        }
        for no in ["header", "Ledger", "lstrip", "__init__", "__isabstractmethod__", "_private"] {
            assert!(!compound(no), "{no}");
        }
    }

    /// Name cuts are uses: never a definition's name, a parameter, a loop or `let` binding, a pattern.
    #[test]
    fn names_are_cut_where_used_not_where_bound() {
        let check = |rel: &str, text: &str, uses: &[&str], bindings: &[&str]| {
            let lang = Lang::from_id_or_path("", rel).unwrap();
            let srcs = vec![Source { rel: rel.into(), text: text.into(), lang }];
            let starts: BTreeSet<usize> = cuts(&srcs, 0, &BTreeMap::new(), &mut Rng::new(9))
                .into_iter()
                .filter(|c| c.class == 0)
                .map(|c| {
                    text[..c.offset].rfind(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')).map_or(0, |i| i + 1)
                })
                .collect();
            // Each marker is `name@n`: the n-th occurrence of the name in the text.
            let at = |m: &str| {
                let (name, n) = m.split_once('@').unwrap();
                text.match_indices(name).nth(n.parse().unwrap()).unwrap().0
            };
            for u in uses {
                assert!(starts.contains(&at(u)), "{rel}: use {u} not cut");
            }
            for b in bindings {
                assert!(!starts.contains(&at(b)), "{rel}: binding {b} cut");
            }
        };
        check(
            "a.py",
            "def total_of(items):\n    for item in items:\n        count = item\n    pairs = [left for left, right in items]\n    return count\n",
            &["items@1", "item@3", "items@2", "count@1"],
            &["total_of@0", "items@0", "item@1", "count@0", "pairs@0", "left@1", "right@0"],
        );
        check(
            "a.rs",
            "fn total_of(items: &[i64]) -> i64 {\n    let (first, rest) = split(items);\n    match first {\n        Some(value) => value + rest.len() as i64,\n        None => 0,\n    }\n}\n",
            &["split@0", "items@1", "first@1", "value@1", "rest@1"],
            &["total_of@0", "items@0", "first@0", "rest@0", "value@0"],
        );
    }
}
