//! `lokal models pull` and `lokal models use`: the terminal side of [`lokal_engine::catalog::pull`] and
//! [`lokal_engine::catalog::choice`]. A bar on a terminal, a line every few seconds in a log, or JSON lines
//! (`--progress-json`, read by the VS Code extension). The model's path goes to stdout, everything else to
//! stderr, so `MODEL=$(lokal models pull ID)` works.
use indicatif::{ProgressBar, ProgressStyle};
use lokal_engine::catalog::{self, choice, pull};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

enum Out {
    Bar(Option<ProgressBar>),
    Lines { last: Instant },
    Json,
}

pub fn pull(what: &str, sha256: Option<String>, progress_json: bool) -> Result<(), String> {
    let mut opts = pull::PullOptions::from_env();
    opts.sha256 = sha256;
    let mut out = if progress_json {
        Out::Json
    } else if std::io::stderr().is_terminal() {
        Out::Bar(None)
    } else {
        Out::Lines { last: Instant::now() - Duration::from_secs(60) }
    };
    if !progress_json {
        eprintln!("pulling {what} into {} (from {})", opts.dir.display(), opts.endpoint);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let r = rt.block_on(pull::pull(what, &opts, &mut |e: &pull::Event| show(&mut out, e)));
    if let Out::Bar(Some(b)) = &out {
        b.finish_and_clear();
    }
    match r {
        Ok(p) => {
            let id = p.id.clone().unwrap_or_else(|| p.path.display().to_string());
            if progress_json {
                println!("{}", serde_json::json!({"event": "pulled", "path": p.path, "id": id}));
            } else {
                println!("{}", p.path.display());
                eprintln!("make it the model of every session: lokal models use {id}");
            }
            Ok(())
        }
        Err(e) => {
            if progress_json {
                println!("{}", serde_json::json!({"event": "error", "message": e}));
            }
            Err(e)
        }
    }
}

fn show(out: &mut Out, e: &pull::Event) {
    use pull::Event::*;
    match out {
        Out::Json => println!("{}", serde_json::to_string(e).unwrap_or_default()),
        Out::Bar(bar) => match e {
            Start { file, total, from } => {
                let b = match total {
                    Some(t) => ProgressBar::new(*t),
                    None => ProgressBar::new_spinner(),
                };
                b.set_style(
                    ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                b.set_message(file.clone());
                b.set_position(*from);
                if let Some(old) = bar.replace(b) {
                    old.finish_and_clear();
                }
            }
            Progress { done, .. } => {
                if let Some(b) = bar {
                    b.set_position(*done);
                }
            }
            Retry { file, attempt, error } => {
                let msg = format!("{file}: {error}; resuming (attempt {attempt})");
                match bar {
                    Some(b) => b.println(msg),
                    None => eprintln!("{msg}"),
                }
            }
            Verifying { file } => {
                if let Some(b) = bar {
                    b.set_message(format!("{file}: checking sha256"));
                }
            }
            Done { file, path, cached } => {
                let msg = if *cached {
                    format!("{file}: already there, checksum matches ({})", path.display())
                } else {
                    format!("{file}: checksum matches ({})", path.display())
                };
                match bar.take() {
                    Some(b) => {
                        b.finish_and_clear();
                        eprintln!("{msg}");
                    }
                    None => eprintln!("{msg}"),
                }
            }
        },
        Out::Lines { last } => match e {
            Start { file, total, from } => {
                eprintln!("{file}: {} of {}", size(*from), total.map(size).unwrap_or_else(|| "unknown size".into()))
            }
            Progress { file, done, total } => {
                if last.elapsed() >= Duration::from_secs(5) || total.is_some_and(|t| *done >= t) {
                    *last = Instant::now();
                    let pct = total
                        .filter(|t| *t > 0)
                        .map(|t| format!(" ({:.0}%)", *done as f64 * 100.0 / t as f64))
                        .unwrap_or_default();
                    eprintln!("{file}: {}{pct}", size(*done));
                }
            }
            Retry { file, attempt, error } => eprintln!("{file}: {error}; resuming (attempt {attempt})"),
            Verifying { file } => eprintln!("{file}: checking sha256"),
            Done { file, path, cached } => eprintln!(
                "{file}: {}checksum matches ({})",
                if *cached { "already there, " } else { "" },
                path.display()
            ),
        },
    }
}

fn size(b: u64) -> String {
    catalog::render::size(b)
}

pub fn use_model(what: &str) -> Result<(), String> {
    let c = choice::Choice::default_location();
    let path = choice::use_model(what, &catalog::Registry::default_location(), &c)?;
    println!("{}", path.display());
    eprintln!("every session now loads {} (written to {})", path.display(), c.file().display());
    let (effective, source) = choice::resolve(None);
    match source {
        choice::ModelSource::Env => {
            eprintln!("but LOKAL_MODEL is set in this environment and wins: {}", effective.display())
        }
        _ => eprintln!("a modelPath setting in an editor, or LOKAL_MODEL, still wins over it"),
    }
    Ok(())
}
