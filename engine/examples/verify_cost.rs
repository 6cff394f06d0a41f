//! What a speculative verification batch costs on this machine (issue 18): one llama_decode of N tokens
//! with logits on every position, after a prompt of DEPTH tokens, against N = 1. The N values take turns in
//! every round, so a busy machine slows them alike. Prints medians; asserts nothing.
//!
//! `LOKAL_MODEL=... cargo run --release -p lokal-engine --example verify_cost [DEPTH] [THREADS]`
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use std::num::NonZeroU32;
use std::time::Instant;

fn main() {
    let path = std::env::var("LOKAL_MODEL").expect("LOKAL_MODEL names a GGUF model");
    let mut args = std::env::args().skip(1);
    let depth: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(760);
    let threads: i32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let backend = LlamaBackend::init().unwrap();
    let model = LlamaModel::load_from_file(&backend, &path, &LlamaModelParams::default()).unwrap();
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(2048))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_swa_full(true)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = model.new_context(&backend, params).unwrap();
    let text: String =
        (0..400).map(|i| format!("    let value_{i} = compute(input[{i}], factor * {i}.0);\n")).collect();
    let mut toks = model.vocab().tokenize(text.as_bytes(), false, false);
    toks.truncate(depth);
    let mut batch = LlamaBatch::new(512, 1);
    for (ci, chunk) in toks.chunks(512).enumerate() {
        batch.clear();
        for (i, &t) in chunk.iter().enumerate() {
            batch.add(t, (ci * 512 + i) as i32, &[0], false).unwrap();
        }
        ctx.decode(&mut batch).unwrap();
    }
    let sizes = [1usize, 2, 3, 4, 6, 8, 12];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); sizes.len()];
    for round in 0..12 {
        for (si, &n) in sizes.iter().enumerate() {
            batch.clear();
            for i in 0..n {
                batch.add(toks[(round * 7 + i) % toks.len()], (depth + i) as i32, &[0], true).unwrap();
            }
            let t = Instant::now();
            ctx.decode(&mut batch).unwrap();
            let picks: usize = (0..n).map(|i| argmax(ctx.get_logits_ith(i as i32))).sum();
            std::hint::black_box(picks);
            if round > 1 {
                times[si].push(t.elapsed().as_secs_f64() * 1e3);
            }
            ctx.clear_kv_cache_seq(Some(0), Some(depth as u32), None).unwrap();
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let one = med(&mut times[0].clone());
    println!("depth {depth}, {threads} threads: one decode of N tokens, logits on all (median of 10)");
    for (si, &n) in sizes.iter().enumerate() {
        let m = med(&mut times[si]);
        println!(
            "  N {n:>2}: {m:>7.2} ms  {:>5.2}x N=1  (+{:.2} ms a token)",
            m / one,
            (m - one) / (n as f64 - 1.0).max(1.0)
        );
    }
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |b, (i, &x)| if x > v[b] { i } else { b })
}
