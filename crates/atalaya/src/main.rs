//! `atalaya`: parse the command line, load the configuration, run the command, map errors
//! to exit codes (0 success, 1 failure, 2 bad usage or configuration).

use std::process::ExitCode;

use anyhow::Context as _;
use atalaya::cli::{Cli, Command, ConfigAction, DbAction};
use atalaya::config::{self, AppConfig};
use atalaya::replay::{ReplayOptions, replay};
use atalaya::run::{RunOptions, run};
use atalaya_store::StoreConfig;
use clap::Parser;
use std::io::IsTerminal;
use tokio_util::sync::CancellationToken;

fn init_logging(filter: Option<&str>) {
    let filter = filter
        .map(str::to_owned)
        .or_else(|| std::env::var("ATALAYA_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    let env_filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn load_config(cli: &Cli) -> Result<AppConfig, ExitCode> {
    match config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(l) => Ok(l.config),
        Err(problems) => {
            eprintln!(
                "error: the configuration has {} problem(s):",
                problems.len()
            );
            for p in &problems {
                eprintln!("  {p}");
            }
            Err(ExitCode::from(2))
        }
    }
}

fn with_db(mut cfg: AppConfig, db: Option<&std::path::Path>) -> AppConfig {
    if let Some(p) = db {
        cfg.store = StoreConfig::Sqlite { path: p.to_owned() };
    }
    cfg
}

/// Cancels `token` on Ctrl-C or SIGTERM.
fn on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_err() { std::future::pending::<()>().await },
            () = term => {}
        }
        eprintln!("shutting down gracefully (press Ctrl-C again to force)");
        token.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
}

async fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    let cfg = match load_config(&cli) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    match cli.command {
        Command::Config {
            action: ConfigAction::Check,
        } => {
            println!("configuration OK");
        }
        Command::Config {
            action: ConfigAction::Show,
        } => {
            print!("{}", config::show(&cfg)?);
        }
        Command::Db {
            action: DbAction::Migrate { db },
        } => {
            let cfg = with_db(cfg, db.as_deref());
            let store = atalaya::run::open_store(&cfg).await?;
            let stats = store.stats().await?;
            println!(
                "{} is at schema version {:?}",
                stats.location,
                stats.migrations.last().unwrap_or(&0)
            );
            store.close().await;
        }
        Command::Db {
            action: DbAction::Stats { db, json },
        } => {
            let cfg = with_db(cfg, db.as_deref());
            let store = atalaya::run::open_store(&cfg).await?;
            let s = store.stats().await?;
            store.close().await;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!("{} ({}, {} bytes)", s.location, s.backend, s.size_bytes);
                println!(
                    "candles {}  opportunities {}  alerts {}  text items {}  on-chain metrics {}",
                    s.candles, s.opportunities, s.alerts, s.text_items, s.onchain_metrics
                );
                for r in &s.series {
                    println!(
                        "  {:<24} {:<4} {:>9} bars  {} .. {}",
                        r.instrument,
                        r.timeframe,
                        r.rows,
                        atalaya_model::format_utc(r.first),
                        atalaya_model::format_utc(r.last)
                    );
                }
            }
        }
        Command::Indicators(a) => {
            let specs = match atalaya_ta::set::parse_set(&a.set) {
                Ok(s) if !s.is_empty() => s,
                Ok(_) => {
                    eprintln!("error: --set names no indicator");
                    return Ok(ExitCode::from(2));
                }
                Err(errors) => {
                    eprintln!("error: --set has {} problem(s):", errors.len());
                    for e in &errors {
                        eprintln!("  {e}");
                    }
                    return Ok(ExitCode::from(2));
                }
            };
            let rows = match &a.out {
                Some(path) => {
                    let f = std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let mut w = std::io::BufWriter::new(f);
                    atalaya::indicators::write_table(&a.file, specs, a.timeframe, a.format, &mut w)?
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut w = std::io::BufWriter::new(stdout.lock());
                    atalaya::indicators::write_table(&a.file, specs, a.timeframe, a.format, &mut w)?
                }
            };
            if let Some(path) = &a.out {
                eprintln!("wrote {rows} rows to {}", path.display());
            }
        }
        Command::Alerts {
            action: atalaya::cli::AlertsAction::Test { channel },
        } => {
            use atalaya_model::Clock as _;
            let (lines, ok) = atalaya::deliver::test_channels(
                &cfg.alerts,
                channel.as_deref(),
                atalaya_model::LiveClock.now(),
            )
            .await?;
            for l in &lines {
                println!("{l}");
            }
            if !ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Alerts {
            action: atalaya::cli::AlertsAction::List { limit, db, json },
        } => {
            let cfg = with_db(cfg, db.as_deref());
            let store = atalaya::run::open_store(&cfg).await?;
            let page = store.alerts(None, 1, limit.clamp(1, 1000)).await?;
            let counts = store.delivery_counts().await?;
            store.close().await;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                println!("{} alerts stored; newest {}:", page.total, page.items.len());
                for a in &page.items {
                    let states: Vec<String> = a
                        .deliveries
                        .iter()
                        .map(|d| format!("{}: {}", d.channel, d.state))
                        .collect();
                    println!(
                        "  {}  {:<8}  {}  [{}]",
                        atalaya_model::format_utc(a.created_at),
                        a.priority,
                        a.title,
                        states.join(", ")
                    );
                    for d in &a.deliveries {
                        if let Some(why) = d.reason.as_ref().or(d.last_error.as_ref()) {
                            println!("      {} ({} attempts): {why}", d.channel, d.attempts);
                        }
                    }
                }
                let summary: Vec<String> = counts
                    .iter()
                    .map(|(c, s, n)| format!("{c} {s} {n}"))
                    .collect();
                println!("deliveries: {}", summary.join(", "));
            }
        }
        Command::Bench {
            what: atalaya::cli::BenchWhat::Ta { file, runs },
        } => {
            print!("{}", atalaya::bench::ta(&file, runs)?);
        }
        Command::Sentiment {
            action:
                atalaya::cli::SentimentAction::Eval {
                    data,
                    labels,
                    model,
                    base,
                    lexicon,
                    finance,
                },
        } => {
            use atalaya_ml::eval::read_labelled;
            let map = match atalaya::sentiment::label_map(labels.as_deref()) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let rows = read_labelled(&data, &map)?;
            let spec = model.as_deref().unwrap_or("ensemble");
            let progress = std::io::stderr().is_terminal();
            if let Some(t) = atalaya::sentiment::transformer_for(spec, base.as_deref())? {
                let (report, rate) = atalaya::sentiment::eval_transformer(&t, &rows, progress)?;
                println!(
                    "{} texts; model {} ({}), {rate:.0} texts/s",
                    rows.len(),
                    t.encoder().dir().display(),
                    t.kind()
                );
                print!("{}", report.render());
                return Ok(ExitCode::SUCCESS);
            }
            let mut scfg = cfg.engine.sentiment.clone();
            if lexicon.is_some() {
                scfg.lexicon_dir = lexicon;
            }
            if finance.is_some() {
                scfg.finance_lexicon_dir = finance;
            }
            if scfg.lexicon_dir.is_none() {
                eprintln!(
                    "warning: no --lexicon directory (VADER's vader_lexicon.txt): scoring with the crypto-slang lexicon alone"
                );
            }
            if spec == "lexicon" {
                scfg.model_dir = None;
                (scfg.transformer_weight, scfg.keyword_weight) = (0.0, 0.0);
                scfg.lexicon_weight = 1.0;
            }
            let model = atalaya_engine::sentiment_model(&scfg)?;
            let (description, report) =
                atalaya::sentiment::eval_ensemble(&model, &scfg, &rows, progress);
            println!("{} texts; {description}", rows.len());
            print!("{}", report.render());
        }
        Command::Sentiment {
            action:
                atalaya::cli::SentimentAction::Train {
                    data,
                    labels,
                    out,
                    base,
                    l2,
                    fine_tune,
                    epochs,
                    learning_rate,
                    head_learning_rate,
                    rank,
                    objective,
                },
        } => {
            let s = atalaya::sentiment::train(
                &data,
                labels.as_deref(),
                &out,
                base.as_deref(),
                atalaya_ml::head::TrainOptions {
                    l2,
                    objective: objective.into(),
                    ..Default::default()
                },
                fine_tune.map(|layers| atalaya_ml::finetune::FineTuneOptions {
                    layers,
                    epochs,
                    learning_rate,
                    head_learning_rate: head_learning_rate.unwrap_or(10.0 * learning_rate),
                    rank,
                    objective: objective.into(),
                    ..Default::default()
                }),
                std::io::stderr().is_terminal(),
            )?;
            println!("{s}");
        }
        Command::Models {
            action:
                atalaya::cli::ModelsAction::Download {
                    name,
                    revision,
                    dir,
                    endpoint,
                    force,
                },
        } => {
            let s = atalaya::sentiment::download(
                &name,
                &revision,
                dir.as_deref(),
                &endpoint,
                force,
                std::io::stderr().is_terminal(),
            )
            .await?;
            print!("{s}");
        }
        Command::Patterns(a) => {
            let parsed: Result<Vec<usize>, _> = a
                .horizons
                .split(',')
                .map(|h| h.trim().parse::<usize>())
                .collect();
            let horizons = match parsed {
                Ok(v) if !v.is_empty() && v.iter().all(|h| *h > 0) => v,
                _ => {
                    eprintln!(
                        "error: --horizons must be positive whole numbers of bars, e.g. 6,24,72"
                    );
                    return Ok(ExitCode::from(2));
                }
            };
            let st = atalaya::patterns::study(&a.files, &a.until, &horizons, a.zigzag_atr)?;
            print!("{}", st.markdown());
        }
        Command::Backtest(a) => {
            let opts = a.history.options(std::io::stderr().is_terminal());
            let outcome = atalaya::backtest::backtest(&cfg, &opts, &a.out)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&outcome.backtest)?);
            } else {
                print!("{}", atalaya::backtest::describe(&outcome));
            }
        }
        Command::Optimize(a) => {
            let opts = a.history.options(std::io::stderr().is_terminal());
            let (wf, files) = atalaya::backtest::optimize(&cfg, &opts, &a.out)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&wf)?);
            } else {
                print!("{}", atalaya::backtest::describe_walk(&wf, &files));
            }
        }
        Command::Calibrate(a) => {
            let opts = ReplayOptions {
                files: a.data,
                timeframe: a.timeframe,
                instrument: None,
                venue: a.venue,
                from: a.from,
                to: a.to,
                save: false,
                progress: false,
            };
            let (c, written) =
                atalaya::calibrate::calibrate(&cfg, &opts, &a.split, a.out.as_deref())?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                print!(
                    "{}",
                    atalaya::calibrate::describe(&c, &a.split, written.as_deref())
                );
            }
        }
        Command::Download(a) => {
            let cfg = with_db(cfg, a.db.as_deref());
            let opts = atalaya::download::DownloadOptions {
                venue: a.venue,
                symbols: a.symbols,
                timeframe: a.timeframe,
                from: a.from,
                to: a.to,
                progress: std::io::stderr().is_terminal(),
            };
            let s = atalaya::download::download(&cfg, &opts).await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                for d in &s.series {
                    println!(
                        "{} ({}): {} bars fetched, {} already stored, last {}",
                        d.symbol,
                        d.instrument,
                        d.fetched,
                        d.already,
                        d.last.as_deref().unwrap_or("-")
                    );
                }
                println!(
                    "{} requests ({} refused by the venue and retried)",
                    s.requests.0, s.requests.1
                );
            }
        }
        Command::Replay(a) => {
            let cfg = with_db(cfg, a.db.as_deref());
            let opts = ReplayOptions {
                files: a.files,
                timeframe: a.timeframe,
                instrument: a.instrument,
                venue: a.venue,
                from: a.from,
                to: a.to,
                save: a.save,
                progress: std::io::stderr().is_terminal(),
            };
            let summary = replay(&cfg, &opts).await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", summary.describe());
            }
        }
        Command::Run(a) => {
            let mut cfg = with_db(cfg, a.db.as_deref());
            if let Some(seed) = a.seed {
                cfg.sim.seed = seed;
            }
            if let Some(l) = a.listen {
                cfg.server.listen = l;
            }
            if a.no_server {
                cfg.server.enabled = false;
            }
            if a.quiet {
                cfg.alerts.console.enabled = false;
            }
            let shutdown = CancellationToken::new();
            on_signal(shutdown.clone());
            let opts = RunOptions {
                demo: a.demo,
                speed: a.speed,
                for_: a.for_,
                progress: std::io::stderr().is_terminal(),
            };
            let s = run(cfg, opts, shutdown).await?;
            eprintln!(
                "done: {} events, {} bars closed ({} stored), {} opportunities ({} stored), {} late inputs, {:.1}s",
                s.pipeline.events,
                s.pipeline.candles_out,
                s.stored_candles,
                s.pipeline.opportunities,
                s.stored_opportunities,
                s.pipeline.late,
                s.wall_s
            );
            eprintln!(
                "paper portfolio: equity {:.2}, cash {}, {} closed trades, {} open positions{}",
                s.paper.equity,
                s.paper.cash,
                s.paper.trades,
                s.paper.open_positions,
                if s.paper.restored_bars > 0 {
                    format!(
                        " ({} stored bars replayed to restore it)",
                        s.paper.restored_bars
                    )
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.as_deref());
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(real_main(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
