use clap::{Parser, Subcommand};
use lokal_engine::EngineConfig;
use std::path::PathBuf;

mod models_cli;

/// lokal: AI code completion from a resident local model, over LSP.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Serve LSP over stdio (the default when no command is given).
    #[arg(long, global = true)]
    stdio: bool,
    /// Write logs to this file instead of stderr.
    #[arg(long, global = true)]
    log_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve LSP over stdio.
    Serve,
    /// Keep the model loaded and serve every editor window over a Unix socket (owner-only, or a team's).
    Daemon {
        #[command(subcommand)]
        action: Option<DaemonCmd>,
        #[arg(long)]
        model: Option<PathBuf>,
        /// Documents kept resident across all sessions.
        #[arg(long, default_value_t = 16)]
        sequences: u32,
        /// Serve the members of this Unix group (also LOKAL_DAEMON_GROUP): the socket belongs to the group,
        /// each user's documents, statistics and cache stay that user's. Members set LOKAL_DAEMON_GROUP too.
        #[arg(long)]
        group: Option<String>,
        /// Listen on this path (default: LOKAL_SOCKET, else /run/lokal-GROUP/ as root or the temporary
        /// directory's lokal-GROUP/ with --group, else the user's runtime directory).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Print one suggestion at FILE:LINE:COL (1-based) and its timings.
    Complete {
        location: String,
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long, default_value_t = 64)]
        max_tokens: usize,
    },
    /// Replay an edit trace over LSP with the prefix cache on and off; print latency figures.
    Bench {
        #[arg(long, default_value = "fixtures/traces/billing.json")]
        trace: PathBuf,
        /// Write the JSON report here (otherwise it follows the table on stdout).
        #[arg(long)]
        json: Option<PathBuf>,
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long, default_value_t = 32)]
        max_tokens: usize,
        #[arg(long)]
        threads: Option<i32>,
        /// Only the run with the cache on.
        #[arg(long)]
        only_on: bool,
        /// Replay beside another engine, request by request: `llama-server` (built by scripts/fetch-peer.sh).
        #[arg(long)]
        peer: Option<String>,
        /// Directory holding llama-server and llama-bench.
        #[arg(long)]
        peer_bin: Option<PathBuf>,
        /// Wait for the device after each prompt pass, so the phase table shows where lokal's time to first
        /// token goes (costs the overlap of consecutive passes).
        #[arg(long)]
        profile: bool,
        /// An engine setting for lokal's side, as in initializationOptions (repeatable): `--set reuseMinChunk=0`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Also measure the scheduler: keystrokes alone vs while a design document is generated, and 1, 2, 4
        /// sessions typing at once, batched vs one at a time (the report's "sched" key).
        #[arg(long)]
        sched: bool,
        /// Keystrokes of the trace the scheduler measurement types (0: all of them).
        #[arg(long, default_value_t = 0)]
        sched_keys: usize,
        /// The user's pause before each accept of the trace (ms): the time lokal has to compute the
        /// suggestion after it ahead (`prefetch`). 0: the accept follows the answer at once.
        #[arg(long, default_value_t = 0)]
        read_ms: u64,
    },
    /// Completion quality over LSP, with and without workspace context: exact match, edit similarity, time
    /// to first token, latency, per case class and model. DIR: a repository to cut cases from with
    /// tree-sitter (default: the current directory), a folder with cases.json (fixtures/eval), or a case
    /// file written by --write-cases. Each model's summary is kept for `lokal models`.
    Eval {
        dir: Option<PathBuf>,
        /// A model file to evaluate; repeat to compare models on the same cases (default: the test model).
        #[arg(long)]
        model: Vec<PathBuf>,
        /// Print the runs as JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// At most this many cases cut from a repository (spread over classes and files).
        #[arg(long, default_value_t = 30)]
        cases: usize,
        /// The same repository and seed cut the same cases.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Save the cases to FILE; `lokal eval FILE` runs them again.
        #[arg(long, value_name = "FILE")]
        write_cases: Option<PathBuf>,
        /// Threads the model uses (default: the server's).
        #[arg(long)]
        threads: Option<u32>,
        /// Do not keep the summary under ~/.cache/lokal/eval (what `lokal models` reads).
        #[arg(long)]
        no_save: bool,
    },
    /// The model catalog scored against this machine (memory, GPU layers, tokens/s, fit).
    Models {
        #[command(subcommand)]
        action: Option<ModelsCmd>,
        #[arg(long)]
        json: bool,
        /// Add a GGUF file of your own to the list (kept in ~/.config/lokal/models.toml).
        #[arg(long)]
        add: Option<PathBuf>,
        #[arg(long, default_value_t = 2048)]
        ctx_per_sequence: u32,
        #[arg(long, default_value_t = 8)]
        sequences: u32,
    },
    /// Check the set-up (model, backend, GPU, memory, tier files, audit log, cloud model) and say what to fix.
    Doctor {
        /// Workspace folders whose tier files to check.
        #[arg(long)]
        workspace: Vec<PathBuf>,
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Show the egress audit log: every request that left this machine, per workspace.
    Audit {
        /// Only records of workspaces whose path contains this text.
        #[arg(long)]
        workspace: Option<String>,
        /// Print the raw JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Type through a fixture workspace and show each suggestion with its latency.
    Demo {
        #[arg(long, default_value = "fixtures/traces/demo.json")]
        trace: PathBuf,
        #[arg(long)]
        model: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DaemonCmd {
    /// The running daemon: sessions (user, since, open documents), model, requests in flight, memory.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ModelsCmd {
    /// Download a catalog model (or hf://OWNER/REPO/FILE.gguf) into the model directory, sha256-checked;
    /// resumes an interrupted download. HF_ENDPOINT: a hub mirror; HF_TOKEN: gated repositories.
    Pull {
        /// Catalog id (see `lokal models`) or hf://OWNER/REPO[@REVISION]/FILE.gguf.
        what: String,
        /// The file's expected sha256 (needed where the catalog pins none, and for hf:// URLs).
        #[arg(long)]
        sha256: Option<String>,
        /// Progress as JSON lines on stdout (for editor extensions).
        #[arg(long)]
        progress_json: bool,
    },
    /// Make a model the default of every session (catalog id or name on disk, or a GGUF path); LOKAL_MODEL
    /// and the modelPath setting still win over it.
    Use { what: String },
}

fn init_logging(file: Option<&PathBuf>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LOKAL_LOG")
        .unwrap_or_else(|_| EnvFilter::new("warn,lokal_engine=info,lokal_server=info"));
    // Never stdout: it is the LSP channel.
    match file.and_then(|f| std::fs::OpenOptions::new().create(true).append(true).open(f).ok()) {
        Some(f) => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .init(),
        None => tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init(),
    }
}

fn main() {
    let cli = Cli::parse();
    init_logging(cli.log_file.as_ref());
    let code = match cli.command {
        None | Some(Cmd::Serve) => serve(),
        Some(Cmd::Daemon { action: Some(DaemonCmd::Status { json }), .. }) => {
            report(lokal_server::daemon::status_cmd(json))
        }
        Some(Cmd::Daemon { action: None, model, sequences, group, socket }) => report(lokal_server::daemon::run(
            EngineConfig { model_path: model, sequences, ..Default::default() },
            lokal_server::daemon::Options { group, socket },
        )),
        Some(Cmd::Eval { dir, model, json, cases, seed, write_cases, threads, no_save }) => {
            let args = lokal_bench::eval::EvalArgs {
                dir,
                models: model,
                json,
                cut: lokal_bench::cases::Options { cases, seed },
                write_cases,
                threads,
                results: (!no_save).then(lokal_engine::catalog::measured::dir),
            };
            report(
                std::env::current_exe()
                    .map_err(|e| e.to_string())
                    .and_then(|exe| lokal_bench::eval::main(&exe, args))
                    .map(|(text, notes)| {
                        for n in notes {
                            eprintln!("{n}");
                        }
                        print!("{text}");
                    }),
            )
        }
        Some(Cmd::Complete { location, model, max_tokens }) => {
            report(lokal_bench::complete::run(&location, model, max_tokens))
        }
        Some(Cmd::Bench {
            trace,
            json,
            model,
            max_tokens,
            threads,
            only_on,
            peer,
            peer_bin,
            profile,
            set,
            sched,
            sched_keys,
            read_ms,
        }) => report(lokal_bench::bench::run(lokal_bench::bench::BenchArgs {
            trace,
            json,
            model,
            max_tokens,
            threads,
            only_on,
            peer,
            peer_bin,
            profile,
            set,
            sched,
            sched_keys,
            read_ms,
        })),
        Some(Cmd::Models { action: Some(ModelsCmd::Pull { what, sha256, progress_json }), .. }) => {
            report(models_cli::pull(&what, sha256, progress_json))
        }
        Some(Cmd::Models { action: Some(ModelsCmd::Use { what }), .. }) => report(models_cli::use_model(&what)),
        Some(Cmd::Models { action: None, json, add, ctx_per_sequence, sequences }) => {
            use lokal_engine::catalog;
            if let Some(p) = add {
                match catalog::add_model(&p) {
                    Ok(e) => eprintln!(
                        "added {} ({} layers, {}) to {}",
                        e.name,
                        e.n_layers,
                        e.quant,
                        catalog::registry_path().display()
                    ),
                    Err(e) => {
                        eprintln!("lokal: {e}");
                        std::process::exit(1);
                    }
                }
            }
            let r = catalog::models_report(
                &catalog::hardware::detect(),
                &catalog::FitConfig { ctx_per_sequence, sequences },
            );
            if json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap());
            } else {
                print!("{}", r.render_text());
            }
            0
        }
        Some(Cmd::Doctor { workspace, model }) => {
            use lokal_engine::catalog::{doctor, hardware};
            let cfg = EngineConfig { model_path: model, ..Default::default() };
            let hw = hardware::detect();
            let findings = doctor::run(&doctor::DoctorInput {
                model: cfg.resolved_model_path(),
                hardware: &hw,
                gpu_offload_supported: lokal_engine::gpu_offload_supported(),
                ctx_per_sequence: cfg.ctx_per_sequence,
                sequences: cfg.sequences,
                workspaces: workspace,
                setup: doctor::Setup::from_env(),
            });
            print!("{}", doctor::render(&findings));
            i32::from(findings.iter().any(|f| f.status == doctor::Status::Fail))
        }
        Some(Cmd::Audit { workspace, json }) => {
            let log = lokal_engine::policy::audit::AuditLog::default_location();
            let records = log.read();
            if json {
                for r in records.iter().filter(|r| workspace.as_deref().is_none_or(|w| r.workspace.contains(w))) {
                    println!("{}", serde_json::to_string(r).unwrap());
                }
            } else {
                eprintln!("audit log: {}", log.path().display());
                print!("{}", lokal_engine::policy::audit::render(&records, workspace.as_deref()));
            }
            0
        }
        Some(Cmd::Demo { trace, model }) => report(lokal_bench::demo::run(&trace, model.as_deref())),
    };
    // Models are freed before exit: a GPU backend aborts the process when its destructors find one alive.
    if !lokal_engine::stop_all(std::time::Duration::from_secs(5)) {
        tracing::warn!("a model thread did not stop within 5 s; exiting anyway");
    }
    std::process::exit(code);
}

fn report(r: Result<(), String>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("lokal: {e}");
            1
        }
    }
}

fn serve() -> i32 {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let code = rt.block_on(async {
        // A running daemon serves this editor window from its resident model; otherwise run our own.
        let sock = lokal_server::daemon::client_socket_path();
        if let (Err(why), None) = (&sock, std::env::var_os("LOKAL_NO_DAEMON")) {
            tracing::warn!("not using the team daemon: {why}");
        }
        if let (Ok(sock), None) = (sock, std::env::var_os("LOKAL_NO_DAEMON")) {
            if let Some(conn) = lokal_server::proxy::try_connect(&sock).await {
                tracing::info!("using the lokal daemon at {}", sock.display());
                return match lokal_server::proxy::run(sock, conn).await {
                    Ok(code) => code,
                    Err(e) => {
                        tracing::error!("proxy: {e}");
                        1
                    }
                };
            }
        }
        let (service, socket) = lokal_server::lsp::service();
        lokal_server::lifecycle::serve_guarded(tokio::io::stdin(), tokio::io::stdout(), service, socket, true).await
    });
    // The stdin reader sits in a blocking read that would hold a normal runtime shutdown open forever.
    rt.shutdown_background();
    code
}
