//! `lokal complete FILE:LINE:COL`: one suggestion straight from the engine, without the protocol, and where
//! its time went.
use lokal_engine::{CompletionRequest, Engine, EngineConfig};
use std::path::PathBuf;

pub fn run(location: &str, model: Option<PathBuf>, max_tokens: usize) -> Result<(), String> {
    let mut parts = location.rsplitn(3, ':');
    let (col, line, file) = (parts.next(), parts.next(), parts.next());
    let (Some(file), Some(line), Some(col)) =
        (file, line.and_then(|l| l.parse::<usize>().ok()), col.and_then(|c| c.parse::<usize>().ok()))
    else {
        return Err(format!("expected FILE:LINE:COL (1-based), got {location:?}"));
    };
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if line == 0 || line > lines.len().max(1) {
        return Err(format!("{file} has {} lines; line {line} is out of range", lines.len()));
    }
    let line_start: usize = lines[..line - 1].iter().map(|l| l.len()).sum();
    let line_text = lines.get(line - 1).copied().unwrap_or("").trim_end_matches('\n');
    let col_byte = line_text.char_indices().nth(col - 1).map(|(i, _)| i).unwrap_or(line_text.len());
    if col == 0 || col - 1 > line_text.chars().count() {
        return Err(format!("line {line} has {} characters; column {col} is out of range", line_text.chars().count()));
    }
    let cursor = line_start + col_byte;
    let cfg = EngineConfig { model_path: model, max_tokens, ..Default::default() };
    let t0 = std::time::Instant::now();
    let engine = Engine::start(cfg, |_| {});
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let info = rt.block_on(engine.wait_ready()).map_err(|e| e.to_string())?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let req = CompletionRequest {
        doc: file.to_string(),
        before: text[..cursor].to_string(),
        first_line: 0,
        after: text[cursor..].to_string(),
        max_tokens: None,
        max_lines: None,
        context: None,
    };
    let c = engine.complete_blocking(req).map_err(|e| e.to_string())?;
    match &c.text {
        Some(t) => println!("{t}"),
        None => println!("(no suggestion)"),
    }
    let t = &c.timings;
    eprintln!(
        "model {} loaded in {load_ms:.0} ms; prompt {} tokens in {:.0} ms; first token after {:.0} ms; {} tokens at {:.1} tokens/s; total {:.0} ms",
        info.name.as_deref().unwrap_or(&info.architecture),
        t.prompt_tokens,
        t.prompt_ms,
        t.ttft_ms,
        t.generated_tokens,
        t.gen_tokens_per_s,
        t.total_ms
    );
    engine.shutdown();
    Ok(())
}
