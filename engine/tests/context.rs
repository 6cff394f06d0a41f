//! Workspace context: tags per language (fixtures in tests/fixtures/context), the symbol index on real
//! directories (ignore rules, huge and binary files, memory bound, incremental updates), and context
//! assembly under a token budget. No model: token counts come from a counting closure.
use lokal_engine::context::index::{normalize, IndexLimits, Origin, Skip, SymbolIndex, Watched};
use lokal_engine::context::tags::{self, TagKind};
use lokal_engine::syntax::Lang;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/context")
}

fn kind_name(k: TagKind) -> &'static str {
    match k {
        TagKind::Function => "function",
        TagKind::Method => "method",
        TagKind::Type => "type",
        TagKind::Const => "const",
    }
}

/// Each `tags/NAME` source against `tags/NAME.tags`, line by line.
#[test]
fn tags_per_language() {
    let dir = fixtures().join("tags");
    let mut seen = vec![];
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(lang) = Lang::from_id_or_path("", &name) else { continue };
        let text = std::fs::read_to_string(&path).unwrap();
        let want = std::fs::read_to_string(dir.join(format!("{name}.tags"))).unwrap();
        let (tags, imports) = tags::scan(lang, &text);
        let mut got: Vec<String> = tags
            .iter()
            .map(|t| {
                let sig = t.signature.replace('\n', "\\n");
                let mut s = format!("{} {} {} | {sig}", kind_name(t.kind), t.line, t.name);
                if let Some(c) = &t.container {
                    s += &format!(" | in {c}");
                }
                s
            })
            .collect();
        got.extend(
            imports.iter().map(|i| {
                format!("import {}:{}", i.module, i.names.iter().map(|n| format!(" {n}")).collect::<String>())
            }),
        );
        let want: Vec<&str> = want.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(got, want, "{name}");
        seen.push(lang);
    }
    for lang in [Lang::Rust, Lang::Python, Lang::TypeScript, Lang::Go] {
        assert!(seen.contains(&lang), "no fixture for {lang:?}");
    }
}

#[test]
fn shown_text_closes_functions_and_keeps_short_types_whole() {
    let text = std::fs::read_to_string(fixtures().join("tags/sample.rs")).unwrap();
    let tags = tags::tags(Lang::Rust, &text);
    let by = |name: &str| tags.iter().find(|t| t.name == name).unwrap();
    assert_eq!(by("LineItem").text, "pub struct LineItem {\n    pub description: String,\n    pub cents: i64,\n}");
    assert!(by("compute_total").text.ends_with("-> Money;"), "{}", by("compute_total").text);
    let py = tags::tags(Lang::Python, "def f(x: int) -> int:\n    return x\n");
    assert_eq!(py[0].text, "def f(x: int) -> int: ...");
    // A long type shows only its signature.
    let long = format!("pub struct Big {{\n{}}}\n", (0..30).map(|i| format!("    f{i}: u8,\n")).collect::<String>());
    assert_eq!(tags::tags(Lang::Rust, &long)[0].text, "pub struct Big");
}

fn write(root: &Path, rel: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    normalize(&p)
}

fn indexed_names(ix: &SymbolIndex) -> Vec<String> {
    let mut v: Vec<String> = ix.paths().map(|p| ix.display_path(p)).collect();
    v.sort();
    v
}

#[test]
fn scan_honours_gitignore_and_skips_huge_and_binary_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".gitignore", "target/\n*.gen.rs\n!keep.gen.rs\n");
    write(root, "src/lib.rs", "pub fn kept() {}\n");
    write(root, "src/out.gen.rs", "pub fn generated() {}\n");
    write(root, "src/keep.gen.rs", "pub fn whitelisted() {}\n");
    write(root, "target/debug/build.rs", "pub fn built() {}\n");
    write(root, "web/sub/.gitignore", "local.ts\n");
    write(root, "web/sub/local.ts", "export function local() {}\n");
    write(root, "web/sub/api.ts", "export function api() {}\n");
    write(root, ".hidden/x.py", "def hidden(): pass\n");
    write(root, "notes.txt", "fn not_source() {}\n");
    // Over 1 MB: generated code nobody calls by hand.
    write(root, "src/huge.rs", format!("pub fn huge() {{}}\n{}", "// padding\n".repeat(110_000)));
    write(root, "src/blob.py", b"def blob():\n    pass\n\x00\x01\x02");
    write(root, "src/latin1.go", b"package p\n// caf\xe9\nfunc Latin() {}\n");

    let mut ix = SymbolIndex::new(IndexLimits::default());
    let report = ix.scan(root);
    assert_eq!(indexed_names(&ix), ["src/keep.gen.rs", "src/lib.rs", "web/sub/api.ts"]);
    assert_eq!((report.indexed, report.too_large, report.binary, report.full), (3, 1, 2, false));
    assert_eq!(ix.lookup("kept").len(), 1);
    assert!(ix.lookup("generated").is_empty() && ix.lookup("huge").is_empty() && ix.lookup("blob").is_empty());

    // The same rules for single files from the watcher.
    let gen = write(root, "src/new.gen.rs", "pub fn fresh_generated() {}\n");
    assert_eq!(ix.watched(&gen, Watched::Created), Err(Skip::Ignored));
    let built = write(root, "target/release/x.rs", "pub fn built2() {}\n");
    assert_eq!(ix.watched(&built, Watched::Created), Err(Skip::Ignored));
    let local = normalize(&root.join("web/sub/local.ts"));
    assert_eq!(ix.watched(&local, Watched::Changed), Err(Skip::Ignored));
    let fresh = write(root, "src/fresh.rs", "pub fn fresh() {}\n");
    assert_eq!(ix.watched(&fresh, Watched::Created), Ok(()));
    assert_eq!(ix.lookup("fresh").len(), 1);

    // Editing .gitignore rescans: what it now ignores leaves, what it no longer ignores joins.
    let gi = write(root, ".gitignore", "target/\nlib.rs\n");
    ix.watched(&gi, Watched::Changed).unwrap();
    assert!(ix.lookup("kept").is_empty());
    assert_eq!(ix.lookup("generated").len(), 1);
}

#[test]
fn incremental_updates_from_editor_and_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = write(root, "src/a.rs", "pub fn on_disk() {}\n");
    let mut ix = SymbolIndex::new(IndexLimits::default());
    ix.scan(root);
    assert_eq!(ix.get(&a).unwrap().origin, Origin::Disk);
    // The editor's text replaces the disk's, and a disk event does not overwrite an open document.
    ix.update(&a, "pub fn typed_in_editor() {}\n", Origin::Open);
    std::fs::write(&a, "pub fn saved_elsewhere() {}\n").unwrap();
    ix.watched(&a, Watched::Changed).unwrap();
    assert!(ix.lookup("on_disk").is_empty() && ix.lookup("saved_elsewhere").is_empty());
    assert_eq!(ix.lookup("typed_in_editor").len(), 1);
    // Closed, it is a visited file; a later disk change applies and it stays visited.
    ix.close(&a);
    ix.watched(&a, Watched::Changed).unwrap();
    assert_eq!(ix.get(&a).unwrap().origin, Origin::Visited);
    assert_eq!(ix.lookup("saved_elsewhere").len(), 1);
    assert!(ix.lookup("typed_in_editor").is_empty());
    // Deleting a directory removes what was under it.
    write(root, "src/m/b.rs", "pub fn in_b() {}\n");
    ix.watched(&root.join("src/m/b.rs"), Watched::Created).unwrap();
    assert_eq!(ix.lookup("in_b").len(), 1);
    ix.watched(&root.join("src/m"), Watched::Deleted).unwrap();
    assert!(ix.lookup("in_b").is_empty());
    // Prefix lookup, in name order.
    ix.update(
        &root.join("src/c.rs"),
        "pub fn compute_total() {}\npub fn compute_tax() {}\npub fn other() {}\n",
        Origin::Open,
    );
    assert_eq!(ix.names_with_prefix("compute_t", 10), ["compute_tax", "compute_total"]);
}

#[test]
fn memory_is_bounded_and_disk_entries_are_evicted_first() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for i in 0..40 {
        write(
            root,
            &format!("src/f{i:02}.rs"),
            format!("pub fn disk_{i}(x: i32) -> i32 {{ x }}\npub struct S{i} {{ a: u8 }}\n"),
        );
    }
    // Room for 10 files by count.
    let mut ix = SymbolIndex::new(IndexLimits { max_files: 10, ..IndexLimits::default() });
    let report = ix.scan(root);
    assert!(report.full && ix.len() <= 10, "{report:?} {}", ix.len());
    // A disk entry used by a prompt recently is kept over older ones.
    let used = normalize(&root.join("src/f05.rs"));
    let older = normalize(&root.join("src/f09.rs"));
    ix.touch(&used);
    let open = normalize(&root.join("src/open.rs"));
    let visited = normalize(&root.join("src/visited.rs"));
    ix.update(&visited, "pub fn was_visited() {}\n", Origin::Open);
    ix.close(&visited);
    ix.update(&open, "pub fn is_open() {}\n", Origin::Open);
    for i in 0..20 {
        ix.update(&root.join(format!("src/more{i}.rs")), &format!("pub fn more_{i}() {{}}\n"), Origin::Disk);
        if i == 6 {
            assert!(ix.contains(&used) && !ix.contains(&older), "least recently used first");
        }
    }
    assert_eq!(ix.len(), 10);
    assert!(ix.contains(&open) && ix.contains(&visited), "open and visited files outlive disk-only ones");
    assert!(ix.lookup("more_19").len() == 1 && ix.lookup("disk_1").is_empty());
    // Only disk entries were evicted while any were left.
    assert!(ix.paths().filter(|p| ix.get(p).unwrap().origin == Origin::Disk).count() == 8);

    // By bytes: a budget of about 20 small files' tags holds about that many, whatever the file count cap.
    let mut ix = SymbolIndex::new(IndexLimits { max_bytes: 20_000, ..IndexLimits::default() });
    for i in 0..200 {
        ix.update(
            &root.join(format!("g/{i}.py")),
            &format!("def f_{i}(a, b):\n    return a\n\nclass C{i}:\n    pass\n"),
            Origin::Disk,
        );
    }
    assert!(ix.bytes() <= 20_000 && ix.len() > 10 && ix.len() < 100, "{} files, {} bytes", ix.len(), ix.bytes());
    assert_eq!(ix.lookup("f_199").len(), 1, "the newest stays");
    assert!(ix.lookup("f_0").is_empty(), "the oldest went");
}

// ---- assembly ----

use lokal_engine::context::assemble::Source;
use lokal_engine::context::{resolve, BlockStyle, ContextConfig, Cursor, WorkspaceContext};
use lokal_engine::fim::FimFamily;

/// A stand-in for the model's tokenizer: about four characters a token, as code tokenizes.
fn tokens(s: &str) -> usize {
    s.len().div_ceil(4)
}

const INVOICE: &str = "pub struct LineItem {\n    pub cents: i64,\n}\n\npub struct Invoice {\n    pub items: Vec<LineItem>,\n}\n\nimpl Invoice {\n    pub fn total(&self) -> i64 {\n        compute_total(&self.items)\n    }\n}\n\npub fn compute_total(items: &[LineItem]) -> i64 {\n    items.iter().map(|i| i.cents).sum()\n}\n\npub fn compute_tax(net: i64, basis_points: i64) -> i64 {\n    net * basis_points / 10_000\n}\n";
const LEDGER: &str = "pub struct Entry {\n    pub amount: i64,\n}\n\npub fn balance(entries: &[Entry]) -> i64 {\n    entries.iter().map(|e| e.amount).sum()\n}\n";
const REPORT_HEAD: &str = "use crate::ledger::*;\n\npub fn summary(lines: &[String]) -> String {\n    let mut out = String::new();\n    for l in lines {\n        out.push_str(l);\n    }\n";
const REPORT_TAIL: &str = "\n    out\n}\n";

/// A small crate, plus `extra` unrelated modules to fill budgets with.
fn workspace(extra: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "src/lib.rs", "pub mod invoice;\npub mod ledger;\npub mod report;\n");
    write(root, "src/invoice.rs", INVOICE);
    write(root, "src/ledger.rs", LEDGER);
    write(root, "src/report.rs", format!("{REPORT_HEAD}{REPORT_TAIL}"));
    for i in 0..extra {
        write(
            root,
            &format!("src/extra/m{i}.rs"),
            format!("pub fn helper_{i}(x: i64) -> i64 {{ x }}\npub struct Thing{i} {{ pub v: u8 }}\n"),
        );
    }
    dir
}

fn comments() -> BlockStyle {
    BlockStyle::choose(None, None, "ws", "src/report.rs")
}

/// The context at the end of `typed`, a line being typed after REPORT_HEAD in src/report.rs.
fn at(
    ctx: &mut WorkspaceContext,
    root: &Path,
    typed: &str,
    style: &BlockStyle,
    budget: usize,
) -> lokal_engine::context::Assembled {
    let path = normalize(&root.join("src/report.rs"));
    let before = format!("{REPORT_HEAD}{typed}");
    let text = format!("{before}{REPORT_TAIL}");
    let line = before.lines().count() - 1;
    ctx.change(&path, &text, line..line + 1);
    let cur = Cursor { path: &path, before: &before, after: REPORT_TAIL, line };
    ctx.assemble(&cur, style, budget, &tokens)
}

fn open_report(root: &Path) -> WorkspaceContext {
    let mut ctx = WorkspaceContext::new(ContextConfig::default());
    ctx.add_folder(root);
    let path = normalize(&root.join("src/report.rs"));
    ctx.open(&path, &format!("{REPORT_HEAD}{REPORT_TAIL}"), 7);
    ctx
}

#[test]
fn a_partly_typed_name_brings_its_definition_from_another_file() {
    let ws = workspace(0);
    let root = ws.path();
    let mut ctx = open_report(root);
    let before = at(&mut ctx, root, "    let t = ", &comments(), 400);
    assert!(!before.block.contains("compute_total"), "nothing asked for it yet:\n{}", before.block);
    let mut ctx = open_report(root);
    let got = at(&mut ctx, root, "    let t = comp", &comments(), 400);
    let inv = got.snippets.iter().find(|s| s.path == "src/invoice.rs").unwrap_or_else(|| panic!("{:#?}", got.snippets));
    assert_eq!(inv.source, Source::Definition);
    assert!(inv.text.contains("pub fn compute_total(items: &[LineItem]) -> i64;"), "{}", inv.text);
    assert!(
        got.block.contains(
            "// path: src/invoice.rs\n// pub fn compute_total(items: &[LineItem]) -> i64;\n// pub fn compute_tax("
        ),
        "{}",
        got.block
    );
    // The file's own import is context too, though no name near the cursor is defined there.
    let ledger = got.snippets.iter().find(|s| s.path == "src/ledger.rs").unwrap();
    assert_eq!(ledger.source, Source::Import);
    assert!(ledger.text.contains("pub fn balance(entries: &[Entry]) -> i64;"));
    assert!(got.block.ends_with("\n\n") && got.tokens == tokens(&got.block));
}

#[test]
fn the_block_stays_put_while_typing_within_a_line() {
    let ws = workspace(0);
    let root = ws.path();
    let mut ctx = open_report(root);
    // A file visited before: its chunk is in the ring, and stays in the block throughout.
    let ledger = normalize(&root.join("src/ledger.rs"));
    ctx.open(&ledger, LEDGER, 2);
    ctx.close(&ledger);
    let line = "    let grand = compute_total(&items) + balance(&entries);";
    let mut blocks: Vec<(usize, String)> = vec![];
    for n in 0..=line.len() {
        let got = at(&mut ctx, root, &line[..n], &comments(), 400);
        assert!(got.block.contains("// path: src/ledger.rs"), "{}", got.block);
        if blocks.last().map(|(_, b)| b) != Some(&got.block) {
            blocks.push((n, got.block));
        }
    }
    let typed_at: Vec<&str> = blocks.iter().map(|(n, _)| &line[..*n]).collect();
    // One block before the name, one once its first three letters are typed, and no other change
    // (`balance` is already there as an import of the file).
    assert_eq!(typed_at, ["", "    let grand = com"], "the block changed at these points");
    // The next line of the same band keeps it too.
    let next = at(&mut ctx, root, &format!("{line}\n    let x = 1"), &comments(), 400);
    assert_eq!(next.block, blocks[1].1);
}

#[test]
fn coming_back_from_another_file_keeps_the_block() {
    let ws = workspace(3);
    let root = ws.path();
    let mut ctx = open_report(root);
    let first = at(&mut ctx, root, "    let t = comp", &comments(), 400);
    assert!(first.block.contains("compute_total"), "{}", first.block);
    // The user goes to other files (they join the ring, and one is edited), then comes back.
    for i in 0..3 {
        let p = normalize(&root.join(format!("src/extra/m{i}.rs")));
        let text = std::fs::read_to_string(&p).unwrap().repeat(3);
        ctx.open(&p, &text, 0);
        ctx.change(&p, &format!("{text}// touched\n"), 2..3);
    }
    let back = at(&mut ctx, root, "    let t = comp", &comments(), 400);
    assert_eq!(back.block, first.block, "a visit elsewhere must not re-decode this file's prompt");
    // A name the cursor asks for that the block lacks does change it, and the visited files may join.
    let asked = at(&mut ctx, root, "    let t = comp\n    let h = helper_1", &comments(), 400);
    assert_ne!(asked.block, first.block);
    assert!(asked.block.contains("helper_1"), "{}", asked.block);
    // A context that had given no block before the visits shows the visited chunks: the block was held,
    // the ring was not ignored.
    let mut fresh = open_report(root);
    for i in 0..3 {
        let p = normalize(&root.join(format!("src/extra/m{i}.rs")));
        fresh.open(&p, &std::fs::read_to_string(&p).unwrap().repeat(3), 0);
    }
    let shown = at(&mut fresh, root, "    let t = comp", &comments(), 400);
    assert!(shown.block.contains("// path: src/extra/m"), "{}", shown.block);
    // ...which the held block of the first context, made before the visits, does not.
    assert!(!first.block.contains("src/extra/m"), "{}", first.block);
}

#[test]
fn the_budget_is_respected() {
    let ws = workspace(40);
    let root = ws.path();
    let mut ctx = open_report(root);
    for i in 0..10 {
        let p = normalize(&root.join(format!("src/extra/m{i}.rs")));
        ctx.visit(&p, &std::fs::read_to_string(&p).unwrap().repeat(3), 0);
    }
    let typed = "    let v = helper_1(1) + helper_2(2) + helper_3(3) + comp";
    let mut last = 0;
    for budget in [0, 5, 20, 60, 120, 250, 500, 1000, 4000] {
        for style in [
            comments(),
            BlockStyle::choose(
                Some(FimFamily::QwenCoder),
                Some(("<|repo_name|>", "<|file_sep|>")),
                "ws",
                "src/report.rs",
            ),
        ] {
            let mut fresh = open_report(root);
            let got = at(&mut fresh, root, typed, &style, budget);
            assert!(tokens(&got.block) <= budget, "{budget}: {} tokens", tokens(&got.block));
            assert_eq!(got.block.is_empty(), got.snippets.is_empty());
            if budget >= 60 {
                assert!(
                    got.snippets.iter().any(|s| s.text.contains("pub fn compute_")),
                    "{budget}: the typed name comes first:\n{}",
                    got.block
                );
            }
        }
        let got = at(&mut ctx, root, typed, &comments(), budget);
        assert!(got.snippets.len() >= last, "a larger budget holds at least as much");
        last = got.snippets.len();
    }
    let all = at(&mut ctx, root, typed, &comments(), 4000);
    let sources: std::collections::BTreeSet<Source> = all.snippets.iter().map(|s| s.source).collect();
    // The file's own edits and visited chunks are in the block too: every document of the folder starts
    // with the same ring, which the KV cache then holds once.
    assert_eq!(
        sources.into_iter().collect::<Vec<_>>(),
        [Source::Definition, Source::Import, Source::Edit, Source::Visited]
    );
}

#[test]
fn qwen_gets_the_repository_format() {
    let ws = workspace(0);
    let root = ws.path();
    let mut ctx = open_report(root);
    let style = BlockStyle::choose(
        Some(FimFamily::QwenCoder),
        Some(("<|repo_name|>", "<|file_sep|>")),
        "billing",
        "src/report.rs",
    );
    let got = at(&mut ctx, root, "    let t = comp", &style, 400);
    assert!(got.block.starts_with("<|repo_name|>billing\n<|file_sep|>"), "{}", got.block);
    assert!(got.block.ends_with("<|file_sep|>src/report.rs\n"), "{}", got.block);
    for s in &got.snippets {
        assert!(got.block.contains(&format!("<|file_sep|>{}\n{}\n", s.path, s.text.trim_end())), "{}", s.path);
    }
    assert!(got.block.contains("<|file_sep|>src/invoice.rs\n") && !got.block.contains("// path:"));
}

/// Imports resolved to indexed files, per language: (file, its source, the targets expected).
#[test]
fn imports_resolve_to_workspace_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let files = [
        ("rs/src/lib.rs", "mod billing;\n"),
        ("rs/src/billing.rs", "pub mod tax;\npub fn bill() {}\n"),
        (
            "rs/src/billing/tax.rs",
            "use super::bill;\nuse crate::billing::tax::{Rate, helpers::round};\npub struct Rate;\n",
        ),
        ("rs/src/billing/tax/helpers.rs", "pub fn round() {}\n"),
        ("py/app/models.py", "class Invoice:\n    pass\n"),
        ("py/app/__init__.py", ""),
        ("py/app/api/views.py", "from ..models import Invoice\nimport app.models\nfrom app import models\nimport os\n"),
        ("ts/src/http.ts", "export function get() {}\n"),
        ("ts/src/lib/index.ts", "export const x = 1;\n"),
        (
            "ts/src/main.ts",
            "import { get } from './http';\nimport * as lib from './lib';\nimport React from 'react';\n",
        ),
        ("go/internal/tax/tax.go", "package tax\nfunc Rate() int { return 1 }\n"),
        ("go/cmd/app/main.go", "package main\nimport (\n\t\"fmt\"\n\t\"example.com/acme/internal/tax\"\n)\n"),
        ("go/cmd/app/util.go", "package main\nfunc util() {}\n"),
        ("go/cmd/app/util_test.go", "package main\nfunc TestUtil() {}\n"),
    ];
    let mut ix = SymbolIndex::new(IndexLimits::default());
    ix.add_root(root);
    for (p, t) in files {
        ix.update(&write(root, p, t), t, Origin::Disk);
    }
    let cases: [(&str, &[&str]); 5] = [
        ("rs/src/lib.rs", &["rs/src/billing.rs"]),
        ("rs/src/billing/tax.rs", &["rs/src/billing.rs bill", "rs/src/billing/tax/helpers.rs round"]),
        ("py/app/api/views.py", &["py/app/models.py"]),
        ("ts/src/main.ts", &["ts/src/http.ts get", "ts/src/lib/index.ts lib"]),
        ("go/cmd/app/main.go", &["go/internal/tax/tax.go", "go/cmd/app/util.go"]),
    ];
    for (from, want) in cases {
        let from = normalize(&root.join(from));
        let e = ix.get(&from).unwrap();
        let got: Vec<String> = resolve::targets(&ix, &from, e.lang, &e.imports)
            .into_iter()
            .map(|t| std::iter::once(ix.display_path(&t.path)).chain(t.names).collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(got, want, "{}", from.display());
    }
}

#[test]
fn context_stays_within_the_cursors_workspace_folder() {
    let ws = workspace(0);
    let root = ws.path();
    let other = tempfile::tempdir().unwrap();
    // Another client's folder, open in the same editor window, defines a name the cursor asks for.
    let secret = write(other.path(), "src/vault.rs", "pub fn compute_secret_rate(key: &str) -> i64 { 42 }\n");
    let mut ctx = open_report(root);
    ctx.add_folder(other.path());
    ctx.open(&secret, &std::fs::read_to_string(&secret).unwrap(), 0);
    ctx.close(&secret);
    let got = at(&mut ctx, root, "    let t = compute_secret_rate(1) + comp", &comments(), 4000);
    assert!(got.snippets.iter().any(|s| s.path == "src/invoice.rs"), "{}", got.block);
    // The typed line itself may show (the file's own edits are in the ring); the other folder's text not.
    assert!(!got.block.contains("vault") && !got.block.contains("{ 42 }"), "{}", got.block);
    assert!(
        got.snippets.iter().all(|s| s.file.starts_with(root)),
        "{:?}",
        got.snippets.iter().map(|s| &s.file).collect::<Vec<_>>()
    );
}

/// On the billing fixture (real-sized files): in ledger.rs, the first letters of a helper that only
/// invoice.rs defines, and that ledger.rs does not import, bring its signature.
#[test]
fn billing_fixture_brings_a_helper_from_another_file() {
    let root = normalize(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/workspaces/billing"));
    let ledger = root.join("src/ledger.rs");
    let text = std::fs::read_to_string(&ledger).unwrap();
    let mut ctx = WorkspaceContext::new(ContextConfig::default());
    let report = ctx.add_folder(&root);
    assert!(report.indexed >= 6, "{report:?}");
    ctx.open(&ledger, &text, 0);
    let before = format!("{text}\nfn rounded(x: i64) -> i64 {{\n    rou");
    let line = before.lines().count() - 1;
    let cur = Cursor { path: &ledger, before: &before, after: "\n}\n", line };
    let style = BlockStyle::choose(
        Some(FimFamily::QwenCoder),
        Some(("<|repo_name|>", "<|file_sep|>")),
        "billing",
        "src/ledger.rs",
    );
    let got = ctx.assemble(&cur, &style, 256, &tokens);
    assert!(got.tokens <= 256);
    assert!(
        got.block.contains("<|file_sep|>src/invoice.rs\n")
            && got.block.contains("pub fn round_div(numerator: i64, denominator: i64) -> i64;"),
        "{}",
        got.block
    );
}
