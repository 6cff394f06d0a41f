//! `cargo bench -p lokal-engine --bench context [DIR]`: the workspace context on a real tree (default:
//! this repository): time to scan and index it, its size in the index, and the time to assemble a block
//! at cursors in its files, as a completion request would. Prints figures; asserts nothing about speed.
use lokal_engine::context::{BlockStyle, ContextConfig, Cursor, WorkspaceContext};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let root = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    let root = lokal_engine::context::index::normalize(&std::fs::canonicalize(&root).unwrap_or(root));
    let mut ctx = WorkspaceContext::new(ContextConfig::default());
    let t = Instant::now();
    let report = ctx.add_folder(&root);
    let scan = t.elapsed();
    let names: usize = ctx.index.paths().filter_map(|p| ctx.index.get(p)).map(|e| e.tags.len()).sum();
    println!(
        "scan {}: {} files ({} too large, {} binary), {names} definitions, ~{} KiB held, {:.0} ms",
        root.display(),
        report.indexed,
        report.too_large,
        report.binary,
        ctx.index.bytes() / 1024,
        scan.as_secs_f64() * 1e3
    );
    let files: Vec<PathBuf> = ctx.index.paths().map(|p| p.to_path_buf()).take(50).collect();
    let count = |s: &str| s.len().div_ceil(4);
    let (mut times, mut tokens) = (vec![], vec![]);
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else { continue };
        ctx.open(f, &text, 0);
        let style = BlockStyle::choose(None, None, "bench", &f.to_string_lossy());
        // Cursors every 40 lines, mid-word where there is a word.
        for (line, _) in text.lines().enumerate().step_by(40) {
            let at: usize = text.lines().take(line).map(|l| l.len() + 1).sum::<usize>()
                + text.lines().nth(line).map_or(0, |l| l.len().min(12));
            let (before, after) = text.split_at(at.min(text.len()));
            let cur = Cursor { path: f, before, after, line };
            // The least of a few runs: on a shared machine the others measure the scheduler.
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = Instant::now();
                let got = ctx.assemble(&cur, &style, 512, &count);
                best = best.min(t.elapsed().as_secs_f64() * 1e3);
                tokens.push(got.tokens);
            }
            times.push(best);
        }
        ctx.close(f);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = times.len().max(1);
    println!(
        "assemble (512-token budget, 4 characters a token, least of 5 runs each): {} cursors in {} files, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms, mean block {} tokens",
        times.len(),
        files.len(),
        times.get(n / 2).copied().unwrap_or(0.0),
        times.get(n * 95 / 100).copied().unwrap_or(0.0),
        times.last().copied().unwrap_or(0.0),
        tokens.iter().sum::<usize>() / tokens.len().max(1)
    );
}
