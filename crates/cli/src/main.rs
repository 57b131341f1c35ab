//! The `offerloop` command line: thin argument parsing over [`offerloop_cli`]'s commands.

// A command-line program talks to people through stdout and stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use offerloop_cli::init;
use offerloop_cli::policy_cmd::{self, PolicyCommand};
use offerloop_cli::validate::{self, Verdict};

/// mimalloc instead of the system allocator: a daily run allocates and frees millions of small
/// strings and JSON texts, and glibc's malloc keeps the freed memory (a 1M-customer run's peak RSS
/// was twice its live heap) and spends a tenth of the run in `malloc`/`free`. See docs/benchmarks.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// offerloop: per-customer AI decisions for lifecycle marketing, activated through Braze.
#[derive(Debug, Parser)]
#[command(name = "offerloop", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `offerloop=debug`. Also `OFFERLOOP_LOG`.
    #[arg(long, global = true, env = "OFFERLOOP_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a realistic, valid use-case file to start from.
    Init {
        /// The use-case kind: cross_sell, upsell, renewal, retention, repeat_purchase, winback, referral,
        /// lead_nurture or loyalty.
        #[arg(long, value_name = "KIND")]
        template: String,
        /// Where to write it (`-` for standard output). Default: `<kind>.toml` in the current directory.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Check use-case files and report every problem with file, line, column and field path.
    Validate {
        /// Use-case TOML files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Talk to the Braze workspace of a use case.
    Braze {
        #[command(subcommand)]
        command: BrazeCommand,
    },
    /// Drive a policy through files: init a model, decide for a JSONL of customers, learn from a JSONL of
    /// rewards, evaluate off-policy from logs.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Is a use case ready to run? Checks the key's permissions, the segment and its size (the smallest
    /// detectable uplift), every campaign and canvas, the Liquid properties, the options' email
    /// templates and the conversion events, with read calls only, and the inputs a run reads outside
    /// Braze (the audience ids file, the Currents bucket); prints ✓ / ✗ / ⚠ with a fix for each
    /// problem and exits 1 on any ✗.
    Check {
        /// The use-case file.
        #[arg(long = "use-case", value_name = "FILE")]
        use_case: PathBuf,
    },
    /// The options' email templates in Braze.
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// Run (or resume) one day of a use case: audience, outcomes, learning, decisions, activation.
    Run {
        /// The use-case file.
        #[arg(long = "use-case", value_name = "FILE")]
        use_case: PathBuf,
        /// The run's date (YYYY-MM-DD); default: today in the use case's time zone.
        #[arg(long, value_name = "DATE")]
        date: Option<jiff::civil::Date>,
        /// Decide the day without sending or storing anything: runs on a copy of the store, in
        /// `<store dir>/dry-run/<use case>/<date>/` (`state.db`, and `batches.jsonl`: every request
        /// that would have been sent); the store itself is left untouched.
        #[arg(long)]
        dry_run: bool,
        /// Resend the day's batches that were certainly not sent (`failed`: rejected before Braze
        /// processed them, e.g. a revoked key or 429s past the retry budget), also when the day is
        /// done. Batches whose fate is unknown are never resent.
        #[arg(long, conflicts_with = "dry_run")]
        resend_failed: bool,
        /// The store: an SQLite file or a `postgres://user@host/db[?schema=NAME]` URL (the password
        /// from the environment variable `[store] password_env` names, default
        /// OFFERLOOP_STORE_PASSWORD). Default: the use case's `[store] url`, else .offerloop/state.db.
        #[arg(long, value_name = "PATH|URL")]
        store: Option<String>,
        /// Share the day among N workers in this process (shards leased through the store; other
        /// processes may join with `offerloop worker`). 0: one single-process run.
        #[arg(long, value_name = "N", default_value_t = 0)]
        workers: usize,
        #[command(flatten)]
        shards: ShardArgs,
        /// Send batches in flight at once (each follows the send ledger on its own).
        #[arg(long, value_name = "N", default_value_t = 4)]
        concurrency: usize,
        /// How long to wait for Braze's segment export before giving up (e.g. 90s, 45m, 2h, 1h 30m);
        /// while waiting, a line a minute says how long it has been. Nothing is written before the
        /// export succeeds, so a run that timed out can simply be run again.
        #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = offerloop_cli::export_wait::parse_timeout)]
        export_timeout: std::time::Duration,
    },
    /// Last runs, pending and unknown batches, the model version of a use case, and for a day shared
    /// by workers its shards, their leases and the workers.
    Status {
        /// The use-case file.
        #[arg(long = "use-case", value_name = "FILE")]
        use_case: PathBuf,
        /// The store: an SQLite file or a `postgres://user@host/db[?schema=NAME]` URL (the password
        /// from the environment variable `[store] password_env` names, default
        /// OFFERLOOP_STORE_PASSWORD). Default: the use case's `[store] url`, else .offerloop/state.db.
        #[arg(long, value_name = "PATH|URL")]
        store: Option<String>,
    },
    /// Take part in a day shared by workers: plan it if nobody has, then lease, decide and send
    /// shards until every one is done. Start any number, on any hosts that reach the store.
    Worker {
        /// The use-case file (every worker of a day must use the same version).
        #[arg(long = "use-case", value_name = "FILE")]
        use_case: PathBuf,
        /// The run's date (YYYY-MM-DD); default: today in the use case's time zone.
        #[arg(long, value_name = "DATE")]
        date: Option<jiff::civil::Date>,
        /// The store: an SQLite file or a `postgres://user@host/db[?schema=NAME]` URL (the password
        /// from the environment variable `[store] password_env` names, default
        /// OFFERLOOP_STORE_PASSWORD). Default: the use case's `[store] url`, else .offerloop/state.db.
        #[arg(long, value_name = "PATH|URL")]
        store: Option<String>,
        /// How many worker processes share the day: this one takes 1/N of every Braze rate-limit
        /// budget, so that together they stay under Braze's limits.
        #[arg(long, value_name = "N", default_value_t = 1)]
        processes: u32,
        #[command(flatten)]
        shards: ShardArgs,
        /// Send batches in flight at once.
        #[arg(long, value_name = "N", default_value_t = 4)]
        concurrency: usize,
        /// Read the clock of the simulator at this URL (`offerloop sim serve`) instead of the
        /// system's: for tests and demos against the simulator.
        #[arg(long, value_name = "URL", hide = true)]
        sim_clock: Option<String>,
        /// How long the planning worker waits for Braze's segment export.
        #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = offerloop_cli::export_wait::parse_timeout)]
        export_timeout: std::time::Duration,
    },
    /// The store itself: bring its schema up to date, or export the decision log.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// The evidence for a use case: uplift against the holdout with 95 % intervals, what-if
    /// estimates, what the model learned, drift, and Braze's own figures; writes `report.html` (one
    /// self-contained file) and `report.json` to `--out`.
    Report {
        /// The use-case file.
        #[arg(long = "use-case", value_name = "FILE")]
        use_case: PathBuf,
        /// First decision date (YYYY-MM-DD); default: the first run's.
        #[arg(long, value_name = "DATE")]
        from: Option<jiff::civil::Date>,
        /// Last decision date (YYYY-MM-DD); default: the last run's.
        #[arg(long, value_name = "DATE")]
        to: Option<jiff::civil::Date>,
        /// Output directory.
        #[arg(long, value_name = "DIR", default_value = ".offerloop/report")]
        out: PathBuf,
        /// The store: an SQLite file or a `postgres://user@host/db[?schema=NAME]` URL (the password
        /// from the environment variable `[store] password_env` names, default
        /// OFFERLOOP_STORE_PASSWORD). Default: the use case's `[store] url`, else .offerloop/state.db.
        #[arg(long, value_name = "PATH|URL")]
        store: Option<String>,
        /// Do not ask Braze for its campaign and canvas analytics.
        #[arg(long)]
        no_braze: bool,
    },
    /// Run the whole loop on a simulated world for N days and compare the AI with the control and, through
    /// the simulator's oracle, with uniform random, the best single action and the best per customer.
    Demo {
        /// Simulated days.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Customers in the simulated world.
        #[arg(long, default_value_t = 20_000)]
        customers: usize,
        /// Where the use case, the store, the simulated Currents bucket and the report are written.
        #[arg(long, value_name = "DIR", default_value = ".offerloop/demo")]
        out: PathBuf,
        /// The simulated world's seed; default: the scenario's own.
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// A scenario file (see crates/sim/scenarios/); default: the embedded win-back world.
        #[arg(long, value_name = "FILE")]
        scenario: Option<PathBuf>,
        /// A use-case file; default: the shipped example aligned with the scenario (by its name).
        #[arg(long = "use-case", value_name = "FILE")]
        use_case: Option<PathBuf>,
        /// Also write the result (groups, oracle, daily learning curve) as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Also write the oracle's value of every eligible action for 4,000 of the AI's decisions, as
        /// JSON lines (for studying model classes offline: xtask/analysis/model_classes.py).
        #[arg(long = "oracle-dump", value_name = "FILE")]
        oracle_dump: Option<PathBuf>,
    },
    /// The simulated Braze workspace: a seeded customer world behind a faithful fake Braze REST API.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// A Braze Currents bucket (Currents for Data Storage), as `[outcomes] currents` reads it.
    Currents {
        #[command(subcommand)]
        command: CurrentsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum CurrentsCommand {
    /// What the bucket holds before a first run: files and events per event type and day, users,
    /// events without an external id, purchase revenue per currency, duplicates, unreadable files.
    /// Credentials come from the environment (AWS_*, GOOGLE_*, AZURE_STORAGE_*).
    Scan {
        /// The connector's prefix: s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or
        /// file:///path.
        url: String,
        /// Only files Braze queued at or after this time (RFC 3339, e.g. 2026-12-01T00:00:00Z).
        #[arg(long, value_name = "TIME")]
        since: Option<jiff::Timestamp>,
        /// Print the result as JSON (fields documented in docs/configuration.md).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SimCommand {
    /// Serve a scenario's simulated Braze REST API on 127.0.0.1 until interrupted (Ctrl-C); prints the
    /// base URL and the API keys it accepts with their permissions.
    Serve {
        /// The scenario file (see crates/sim/scenarios/).
        #[arg(long, value_name = "FILE")]
        scenario: PathBuf,
        /// Port on 127.0.0.1; 0 picks a free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Population size instead of the scenario's.
        #[arg(long, value_name = "N")]
        customers: Option<usize>,
        /// Seed instead of the scenario's.
        #[arg(long, value_name = "SEED")]
        seed: Option<u64>,
    },
}

/// How a day shared by workers is cut and leased.
#[derive(Debug, clap::Args)]
struct ShardArgs {
    /// Customers per shard (the planning worker's value is the day's).
    #[arg(long, value_name = "N", default_value_t = offerloop_engine::WorkerOptions::DEFAULT_SHARD_SIZE)]
    shard_size: u64,
    /// How long a shard's lease lasts unless renewed (every third of it); a dead worker's shard is
    /// taken over this long after its last renewal.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = offerloop_cli::export_wait::parse_timeout)]
    lease_ttl: std::time::Duration,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Bring the store's schema to this offerloop's version (every command also does on opening;
    /// this does nothing else, for a deployment step).
    Migrate {
        /// The store: an SQLite file or a `postgres://` URL (password from OFFERLOOP_STORE_PASSWORD).
        #[arg(long, value_name = "PATH|URL", default_value = offerloop_cli::run_cmd::DEFAULT_STORE)]
        store: String,
    },
    /// Export the decision log of a use case (every decision with its logged propensity, options,
    /// reward and delivery) for a warehouse.
    Export {
        /// The use-case file.
        #[arg(long = "use-case", value_name = "FILE")]
        use_case: PathBuf,
        /// The store: an SQLite file or a `postgres://user@host/db[?schema=NAME]` URL (the password
        /// from the environment variable `[store] password_env` names, default
        /// OFFERLOOP_STORE_PASSWORD). Default: the use case's `[store] url`, else .offerloop/state.db.
        #[arg(long, value_name = "PATH|URL")]
        store: Option<String>,
        /// The format (one JSON object per line).
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// First run date (YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        from: Option<jiff::civil::Date>,
        /// Last run date (YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        to: Option<jiff::civil::Date>,
        /// Output file (`-`: stdout).
        #[arg(long, value_name = "FILE", default_value = "-")]
        out: PathBuf,
    },
}

/// Formats of `offerloop store export`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    /// JSON Lines.
    Jsonl,
}

#[derive(Debug, Subcommand)]
enum TemplatesCommand {
    /// Create or update, as Braze email templates, the template files the use case's options point at
    /// (looked up by name; a second run changes nothing and says so); records their ids.
    Sync {
        /// The use-case file.
        #[arg(long = "use-case", value_name = "FILE")]
        use_case: PathBuf,
        /// Show what would change (a diff per template) and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Where the template ids are recorded.
        #[arg(long, value_name = "PATH", default_value = offerloop_cli::templates_cmd::TEMPLATE_IDS_FILE)]
        state_file: PathBuf,
        /// The store whose use-case lock the sync takes (a run of the same use case on it waits for
        /// nothing: one of the two fails fast naming the other): an SQLite file or a `postgres://`
        /// URL; default: the use case's `[store] url`, else .offerloop/state.db.
        #[arg(long, value_name = "PATH|URL")]
        store: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum BrazeCommand {
    /// Check that the API key holds every permission the use case needs (side-effect-free probes).
    Check {
        /// The use-case file (its `[braze]` section names the endpoint and the key's environment variable).
        #[arg(long = "use-case", value_name = "FILE")]
        use_case: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Init { template, out, force } => run_init(&template, out.as_deref(), force),
        Command::Validate { files } => Ok(run_validate(&files)),
        Command::Braze {
            command: BrazeCommand::Check { use_case },
        } => run_braze_check(&use_case),
        Command::Check { use_case } => run_check(&use_case),
        Command::Templates {
            command:
                TemplatesCommand::Sync {
                    use_case,
                    dry_run,
                    state_file,
                    store,
                },
        } => run_templates_sync(&use_case, dry_run, &state_file, store.as_deref()),
        Command::Currents {
            command: CurrentsCommand::Scan { url, since, json },
        } => run_currents_scan(&url, since, json),
        Command::Sim {
            command:
                SimCommand::Serve {
                    scenario,
                    port,
                    customers,
                    seed,
                },
        } => run_sim_serve(offerloop_cli::sim_cmd::ServeArgs {
            scenario,
            port,
            customers,
            seed,
        }),
        Command::Run {
            use_case,
            date,
            dry_run,
            resend_failed,
            store,
            workers,
            shards,
            concurrency,
            export_timeout,
        } => run_daily(offerloop_cli::run_cmd::RunArgs {
            use_case,
            date,
            dry_run,
            resend_failed,
            progress: offerloop_cli::progress::TerminalProgress::for_stderr(),
            store,
            workers,
            shard_size: shards.shard_size,
            lease_ttl: shards.lease_ttl,
            concurrency,
            export_timeout,
            export_progress: Some(offerloop_cli::export_wait::ExportWaitLines::callback(
                print_progress_line,
            )),
        }),
        Command::Worker {
            use_case,
            date,
            store,
            processes,
            shards,
            concurrency,
            sim_clock,
            export_timeout,
        } => run_worker(
            offerloop_cli::run_cmd::RunArgs {
                use_case,
                date,
                dry_run: false,
                resend_failed: false,
                progress: offerloop_cli::progress::TerminalProgress::for_stderr(),
                store,
                workers: 1,
                shard_size: shards.shard_size,
                lease_ttl: shards.lease_ttl,
                concurrency,
                export_timeout,
                export_progress: Some(offerloop_cli::export_wait::ExportWaitLines::callback(
                    print_progress_line,
                )),
            },
            processes,
            sim_clock.as_deref(),
        ),
        Command::Store { command } => run_store(command),
        Command::Status { use_case, store } => {
            let use_case = offerloop_cli::run_cmd::load_use_case(&use_case)?;
            let location = offerloop_cli::store_cmd::location(store.as_deref(), Some(&use_case))?;
            let store = offerloop_cli::store_cmd::open(&location)?;
            print!(
                "{}",
                offerloop_cli::status_cmd::status_at(
                    store.as_ref(),
                    use_case.name.as_str(),
                    offerloop_engine::Clock::now(&offerloop_cli::run_cmd::SystemClock)
                )?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            use_case,
            from,
            to,
            out,
            store,
            no_braze,
        } => run_report(offerloop_cli::report_cmd::ReportArgs {
            use_case,
            from,
            to,
            out,
            store,
            braze: !no_braze,
        }),
        Command::Demo {
            days,
            customers,
            out,
            seed,
            scenario,
            use_case,
            json,
            oracle_dump,
        } => run_demo(offerloop_cli::demo_cmd::DemoArgs {
            days,
            customers,
            out,
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            seed,
            scenario,
            use_case,
            json,
            oracle_dump,
            ..offerloop_cli::demo_cmd::DemoArgs::default()
        }),
        Command::Policy { command } => {
            let output = policy_cmd::run(&command)?;
            print!("{}", output.stdout);
            eprint!("{}", output.stderr);
            Ok(if output.failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run_worker(
    args: offerloop_cli::run_cmd::RunArgs,
    processes: u32,
    sim_clock: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let use_case = offerloop_cli::run_cmd::load_use_case(&args.use_case)?;
    let braze = offerloop_cli::run_cmd::braze_client_sharing(&use_case, processes)?;
    let runtime = runtime()?;
    let clock: std::sync::Arc<dyn offerloop_engine::Clock> = match sim_clock {
        Some(url) => std::sync::Arc::new(runtime.block_on(offerloop_cli::run_cmd::OffsetClock::of_simulator(url))?),
        None => std::sync::Arc::new(offerloop_cli::run_cmd::SystemClock),
    };
    let outcome = runtime.block_on(offerloop_cli::run_cmd::run_with(&args, use_case, braze, clock))?;
    print!("{}", offerloop_cli::run_cmd::render_outcome(&outcome));
    Ok(ExitCode::from(outcome.exit_code()))
}

fn run_store(command: StoreCommand) -> anyhow::Result<ExitCode> {
    match command {
        StoreCommand::Migrate { store } => {
            let location = offerloop_cli::store_cmd::location(Some(&store), None)?;
            print!("{}", offerloop_cli::store_cmd::migrate(&location)?);
        }
        StoreCommand::Export {
            use_case,
            store,
            format: ExportFormat::Jsonl,
            from,
            to,
            out,
        } => {
            let use_case = offerloop_cli::run_cmd::load_use_case(&use_case)?;
            let location = offerloop_cli::store_cmd::location(store.as_deref(), Some(&use_case))?;
            let store = offerloop_cli::store_cmd::open(&location)?;
            let lines = offerloop_cli::store_cmd::export_to(store.as_ref(), &use_case, from, to, &out)?;
            eprintln!("{lines} decisions exported from {location}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_daily(args: offerloop_cli::run_cmd::RunArgs) -> anyhow::Result<ExitCode> {
    let clock = std::sync::Arc::new(offerloop_cli::run_cmd::SystemClock);
    let outcome = runtime()?.block_on(offerloop_cli::run_cmd::run(&args, clock))?;
    print!("{}", offerloop_cli::run_cmd::render_outcome(&outcome));
    Ok(ExitCode::from(outcome.exit_code()))
}

/// Prints a progress line to stderr; on a terminal, first clears the line a progress bar may be
/// drawing, which redraws below it.
fn print_progress_line(line: &str) {
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!("\r\x1b[2K{line}");
    } else {
        eprintln!("{line}");
    }
}

fn run_check(use_case: &Path) -> anyhow::Result<ExitCode> {
    let results = runtime()?.block_on(offerloop_cli::check_cmd::run(use_case))?;
    print!("{}", offerloop_cli::check_cmd::render(&results));
    Ok(ExitCode::from(offerloop_cli::check_cmd::exit_code(&results)))
}

fn run_templates_sync(
    use_case: &Path,
    dry_run: bool,
    state_file: &Path,
    store: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let text = runtime()?.block_on(offerloop_cli::templates_cmd::sync(use_case, dry_run, state_file, store))?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn run_report(args: offerloop_cli::report_cmd::ReportArgs) -> anyhow::Result<ExitCode> {
    let (report, written) = runtime()?.block_on(offerloop_cli::report_cmd::run(
        &args,
        &offerloop_cli::run_cmd::SystemClock,
    ))?;
    let u = &report.headline.uplift;
    println!(
        "uplift {} − {}: {:+.3} (95 % CI {:+.3} to {:+.3}){}",
        u.group,
        u.baseline,
        u.difference.estimate,
        u.difference.low,
        u.difference.high,
        if u.includes_zero {
            " — the interval still includes zero"
        } else {
            ""
        }
    );
    println!("report: {}", written.html.display());
    println!("data:   {}", written.json.display());
    Ok(ExitCode::SUCCESS)
}

fn run_demo(args: offerloop_cli::demo_cmd::DemoArgs) -> anyhow::Result<ExitCode> {
    let report = runtime()?.block_on(offerloop_cli::demo_cmd::run(&args, |day, s| {
        eprintln!(
            "day {:>2} {}: {} decisions, {} messages, {} batches sent, {} learned, model {}",
            day + 1,
            s.date,
            s.decisions,
            s.messages,
            s.batches.sent,
            s.rewards_learned,
            s.model_version
        );
    }))?;
    print!("{}", offerloop_cli::demo_cmd::render(&report));
    Ok(ExitCode::SUCCESS)
}

fn run_currents_scan(url: &str, since: Option<jiff::Timestamp>, json: bool) -> anyhow::Result<ExitCode> {
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("reading {pos}/{len} files {wide_bar} {eta}")
            .context("the progress bar's template")?,
    );
    let report = runtime()?.block_on(offerloop_cli::currents_cmd::scan(url, since, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    }))?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", offerloop_cli::currents_cmd::render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_sim_serve(args: offerloop_cli::sim_cmd::ServeArgs) -> anyhow::Result<ExitCode> {
    let world =
        offerloop_cli::sim_cmd::load_world(&args).with_context(|| format!("loading {}", args.scenario.display()))?;
    let scenario = world.scenario().clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let server = offerloop_cli::sim_cmd::start(world, &args).await?;
        print!("{}", offerloop_cli::sim_cmd::banner(&server.base_url(), &scenario));
        std::io::stdout().flush()?;
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        eprintln!("stopping");
        drop(server);
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn run_braze_check(path: &Path) -> anyhow::Result<ExitCode> {
    let name = path.display().to_string();
    let use_case = match validate::check_file(path) {
        (Verdict::Valid(use_case), _) => use_case,
        (Verdict::Invalid(diagnostics), source) => bail!("{}", validate::render_problems(&name, &source, &diagnostics)),
        (Verdict::Unreadable(message), _) => bail!("{message}"),
    };
    let key = offerloop_braze::ApiKey::from_env(&use_case.braze.api_key_env)?;
    let config = offerloop_braze::BrazeConfig::builder(use_case.braze.endpoint.clone(), key)
        .retry(offerloop_braze::retry::RetryPolicy::disabled())
        .build()?;
    let client = offerloop_braze::BrazeClient::new(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let rows = runtime.block_on(offerloop_cli::braze_check::check(&client, &use_case));
    let (table, all_ok) = offerloop_cli::braze_check::render(&rows);
    println!("Braze {} — use case `{}`", use_case.braze.endpoint, use_case.name);
    print!("{table}");
    if all_ok {
        println!("every permission the use case needs is granted");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: the API key lacks permissions (or a probe failed); see the table above");
        Ok(ExitCode::FAILURE)
    }
}

fn run_init(kind: &str, out: Option<&Path>, force: bool) -> anyhow::Result<ExitCode> {
    let template = init::template(kind).map_err(anyhow::Error::msg)?;
    let text = template.text();
    let path = out.map_or_else(|| PathBuf::from(template.file_name), Path::to_path_buf);
    if path.as_os_str() == "-" {
        std::io::stdout()
            .write_all(text.as_bytes())
            .context("writing to standard output")?;
        return Ok(ExitCode::SUCCESS);
    }
    if path.exists() && !force {
        bail!("{} already exists; pass --force to overwrite it", path.display());
    }
    // Write to a temporary file beside the target, then rename, so a failure never leaves half a file.
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("moving {} to {}", tmp.display(), path.display()))?;
    tracing::info!(template = template.kind, path = %path.display(), "wrote use case");
    println!("wrote {} ({}: {})", path.display(), template.kind, template.about);
    println!(
        "next: edit the Braze ids and segment, then `offerloop validate {}`",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_validate(files: &[PathBuf]) -> ExitCode {
    let mut failed = 0usize;
    for path in files {
        let name = path.display().to_string();
        match validate::check_file(path) {
            (Verdict::Valid(use_case), _) => println!("{}", validate::summary(&name, &use_case)),
            (Verdict::Invalid(diagnostics), source) => {
                failed += 1;
                eprintln!("{}", validate::render_problems(&name, &source, &diagnostics));
            }
            (Verdict::Unreadable(message), _) => {
                failed += 1;
                eprintln!("error: {message}");
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
