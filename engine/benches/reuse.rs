//! `cargo bench -p lokal-engine`: time to first token for a cold prompt against a one-character edit and a
//! return to a file after another one, with the real model (the one `scripts/fetch-model.sh` fetches, or
//! `LOKAL_MODEL`). Prints figures; asserts nothing about speed.
use lokal_engine::{CompletionRequest, Engine, EngineConfig};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn source(lines: usize, salt: &str) -> String {
    (0..lines)
        .map(|i| format!("    let value_{salt}_{i} = compute_{salt}(input[{i}], factor * {i}.0);\n"))
        .collect::<String>()
}

fn main() {
    let cfg = EngineConfig { max_tokens: 1, prefix_tokens: 1536, ctx_per_sequence: 2048, ..Default::default() };
    let path = cfg.resolved_model_path();
    if !path.exists() {
        eprintln!("no model at {}: run scripts/fetch-model.sh first", path.display());
        return;
    }
    let engine = Engine::start(cfg, |_| {});
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(engine.wait_ready()).expect("model loads");
    let req = |doc: &str, before: String| CompletionRequest {
        doc: doc.into(),
        before,
        first_line: 0,
        after: "\n}\n".into(),
        max_tokens: Some(1),
        max_lines: None,
        context: None,
    };
    let (mut cold, mut key, mut back, mut restored) = (vec![], vec![], vec![], vec![]);
    let mut prompt_tokens = 0;
    for rep in 0..5 {
        let a = format!("fn a{rep}() {{\n{}", source(60, &format!("a{rep}")));
        let b = format!("fn b{rep}() {{\n{}", source(60, &format!("b{rep}")));
        let doc_a = format!("a{rep}");
        let t = Instant::now();
        let c = engine.complete_blocking(req(&doc_a, a.clone())).unwrap();
        cold.push(t.elapsed().as_secs_f64() * 1e3);
        prompt_tokens = c.timings.prompt_tokens;
        let typed = format!("{a}    let z");
        let c = engine.complete_blocking(req(&doc_a, typed.clone())).unwrap();
        key.push(c.timings.ttft_ms);
        engine.complete_blocking(req(&format!("b{rep}"), b)).unwrap();
        let c = engine.complete_blocking(req(&doc_a, format!("{typed}q"))).unwrap();
        back.push(c.timings.ttft_ms);
        restored.push(c.timings.redecoded_tokens as f64);
    }
    println!("prompt of {prompt_tokens} tokens, median of 5:");
    println!("  cold (whole prompt)        {:>8.1} ms", median(cold.clone()));
    println!("  one-character edit         {:>8.1} ms", median(key.clone()));
    println!("  back from another file     {:>8.1} ms  ({} tokens re-decoded)", median(back), median(restored));
    println!("  cold / keystroke           {:>8.1}x", median(cold) / median(key));
    engine.shutdown();
}
