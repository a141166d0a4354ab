//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use atalaya_model::{InstrumentId, Timeframe};
use atalaya_sources::Speed;
use clap::{Args, Parser, Subcommand};

/// Atalaya: an autonomous crypto-market agent.
#[derive(Debug, Parser)]
#[command(name = "atalaya", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default: ./atalaya.toml when present).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log filter, e.g. `info`, `debug`, `atalaya_store=debug` (or ATALAYA_LOG).
    #[arg(long, global = true, value_name = "FILTER")]
    pub log: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent: collect, analyse, decide, store, alert and serve the API.
    Run(RunArgs),
    /// Run the pipeline over history files as fast as possible and summarise what it found.
    Replay(ReplayArgs),
    /// Backtest the configured strategy (rules, or the decision's opportunities) on history
    /// files through the live pipeline and paper trader; compare with buy-and-hold.
    Backtest(BacktestArgs),
    /// Walk-forward optimisation of the configured strategy: search `[optimize]`'s parameters
    /// on rolling train windows, test each choice on the following window, report the
    /// stitched out-of-sample result.
    Optimize(OptimizeArgs),
    /// Measure the decision's opportunities on history before the holdout: the reliability
    /// table (stated confidence against hit rate) and the calibration buckets.
    Calibrate(CalibrateArgs),
    /// Fill the store with history from a venue's REST API (resumable, within its limits).
    Download(DownloadArgs),
    /// Compute technical indicators over a history file, one column per output.
    Indicators(IndicatorsArgs),
    /// Measure what chart patterns were worth: forward returns after each pattern against all
    /// bars, on history up to 2023 (2024 on is the holdout).
    Patterns(PatternsArgs),
    /// Alert channels: `atalaya alerts test [--channel NAME]`.
    Alerts {
        /// What to do.
        #[command(subcommand)]
        action: AlertsAction,
    },
    /// Time things on a file: `atalaya bench ta FILE`.
    Bench {
        /// What to time.
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Model files: `atalaya models download NAME`.
    Models {
        /// What to do.
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// Text sentiment: `atalaya sentiment eval --data LABELED.csv [--model DIR]`,
    /// `atalaya sentiment train --data LABELED.csv --out DIR [--base MODEL_DIR]`.
    Sentiment {
        /// What to do.
        #[command(subcommand)]
        action: SentimentAction,
    },
    /// Check or show the configuration.
    Config {
        /// check: list every problem; show: print the effective configuration.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Database maintenance.
    Db {
        /// migrate: bring the schema up to date; stats: row counts and coverage.
        #[command(subcommand)]
        action: DbAction,
    },
}

/// `atalaya run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Use the built-in market simulator (no network, no keys).
    #[arg(long)]
    pub demo: bool,
    /// Simulation speed: simulated seconds per wall second (1 = real time), or `max`.
    #[arg(long, value_name = "N|max", default_value = "60")]
    pub speed: Speed,
    /// Stop after this long on the run's clock (simulated time for the simulator), e.g.
    /// `1d`, `6h`, `90m`. Default: until Ctrl-C.
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub for_: Option<std::time::Duration>,
    /// Simulator seed (overrides `sim.seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// API address (overrides `server.listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Do not start the HTTP API.
    #[arg(long)]
    pub no_server: bool,
    /// SQLite database file (overrides `store.path`).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Do not print alerts to the console.
    #[arg(long)]
    pub quiet: bool,
}

/// `atalaya replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Binance kline CSV or freqtrade JSON files.
    #[arg(required = true, value_name = "FILES")]
    pub files: Vec<PathBuf>,
    /// Bar timeframe of the files (default: from the file name, else from the rows).
    #[arg(long, value_name = "TF")]
    pub timeframe: Option<Timeframe>,
    /// Instrument of every file (default: from each file name).
    #[arg(long, value_name = "venue:BASE/QUOTE")]
    pub instrument: Option<InstrumentId>,
    /// Venue for instruments read from file names.
    #[arg(long, default_value = "binance")]
    pub venue: String,
    /// Only bars opening at or after this time (YYYY-MM-DD or ISO-8601 UTC).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Only bars opening before this time.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Also write bars and opportunities to the store.
    #[arg(long)]
    pub save: bool,
    /// SQLite database file for --save (overrides `store.path`).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `atalaya backtest`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// The history.
    #[command(flatten)]
    pub history: HistoryArgs,
    /// Folder for trades.csv, metrics.json, equity.svg and audit.jsonl.
    #[arg(long, default_value = "backtest", value_name = "DIR")]
    pub out: PathBuf,
    /// Print the metrics as JSON.
    #[arg(long)]
    pub json: bool,
}

/// History files for `backtest` and `optimize`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Binance kline CSV or freqtrade JSON files (one per instrument, or several periods).
    #[arg(long, required = true, num_args = 1.., value_name = "FILES")]
    pub data: Vec<PathBuf>,
    /// Bar timeframe of the files (default: from the file name, else from the rows).
    #[arg(long, value_name = "TF")]
    pub timeframe: Option<Timeframe>,
    /// Instrument of every file (default: from each file name).
    #[arg(long, value_name = "venue:BASE/QUOTE")]
    pub instrument: Option<InstrumentId>,
    /// Venue for instruments read from file names.
    #[arg(long, default_value = "binance")]
    pub venue: String,
    /// Only bars opening at or after this time (YYYY-MM-DD or ISO-8601 UTC).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Only bars opening before this time (keep 2024 on out when tuning: it is the holdout).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
}

impl HistoryArgs {
    /// The replay options for these files.
    pub fn options(self, progress: bool) -> crate::replay::ReplayOptions {
        crate::replay::ReplayOptions {
            files: self.data,
            timeframe: self.timeframe,
            instrument: self.instrument,
            venue: self.venue,
            from: self.from,
            to: self.to,
            save: false,
            progress,
        }
    }
}

/// `atalaya optimize`.
#[derive(Debug, Args)]
pub struct OptimizeArgs {
    /// The history.
    #[command(flatten)]
    pub history: HistoryArgs,
    /// Folder for walk_forward.json and oos_equity.csv.
    #[arg(long, default_value = "optimize", value_name = "DIR")]
    pub out: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `atalaya calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Binance kline CSV or freqtrade JSON files.
    #[arg(long, required = true, num_args = 1.., value_name = "FILES")]
    pub data: Vec<PathBuf>,
    /// Bar timeframe of the files (default: from the file name, else from the rows).
    #[arg(long, value_name = "TF")]
    pub timeframe: Option<Timeframe>,
    /// Venue for instruments read from file names.
    #[arg(long, default_value = "binance")]
    pub venue: String,
    /// Only bars opening at or after this time.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Only bars opening before this time (default and latest: 2024-01-01, the holdout).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Fit before this time, check the calibration after it.
    #[arg(long, default_value = "2022-01-01", value_name = "TIME")]
    pub split: String,
    /// Write the buckets as `[[engine.decision.calibration]]` TOML here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `atalaya download`.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// The venue (`binance`).
    #[arg(long, default_value = "binance")]
    pub venue: String,
    /// Comma-separated symbols: `BTCUSDT,ETHUSDT` or `BTC/USDT,ETH/USDT`.
    #[arg(long, required = true, value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// Bar timeframe.
    #[arg(long, default_value = "1h", value_name = "TF")]
    pub timeframe: Timeframe,
    /// First bar (YYYY-MM-DD or ISO-8601 UTC).
    #[arg(long, value_name = "TIME")]
    pub from: String,
    /// Up to this time (default: now).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// SQLite database file (overrides `store.path`).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Output formats of `atalaya indicators`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// CSV with a header; empty cells where an indicator is not defined yet.
    Csv,
    /// One JSON object of columns; null where an indicator is not defined yet.
    Json,
}

/// `atalaya indicators`.
#[derive(Debug, Args)]
pub struct IndicatorsArgs {
    /// A Binance kline CSV or freqtrade JSON file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Comma-separated indicators, each `name[:param…]`, e.g. `rsi:14,ema:20,macd:12:26:9`.
    #[arg(long, default_value = "rsi:14,ema:20,macd:12:26:9,bbands:20:2,atr:14")]
    pub set: String,
    /// Bar timeframe of the file (default: from the file name, else from the rows).
    #[arg(long, value_name = "TF")]
    pub timeframe: Option<Timeframe>,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Format,
    /// Write here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `atalaya patterns`.
#[derive(Debug, Args)]
pub struct PatternsArgs {
    /// Binance kline CSV or freqtrade JSON files.
    #[arg(required = true, value_name = "FILES")]
    pub files: Vec<PathBuf>,
    /// Only bars opening before this time; later than 2024-01-01 is refused (the holdout).
    #[arg(long, default_value = "2024-01-01")]
    pub until: String,
    /// Forward horizons in bars, comma-separated.
    #[arg(long, default_value = "6,24,72")]
    pub horizons: String,
    /// Zig-zag reversal threshold in ATRs.
    #[arg(long, default_value_t = 2.0)]
    pub zigzag_atr: f64,
}

/// `atalaya alerts …`.
#[derive(Debug, Subcommand)]
pub enum AlertsAction {
    /// Send a test message through each configured channel and report the result per channel.
    Test {
        /// Only this channel (console, telegram, discord, webhook).
        #[arg(long)]
        channel: Option<String>,
    },
    /// List stored alerts, newest first.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// SQLite database file (overrides `store.path`).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `atalaya sentiment …`.
#[derive(Debug, Subcommand)]
pub enum SentimentAction {
    /// Accuracy, macro-F1 and the confusion matrix on labelled CSV (`text,label`; labels
    /// positive/neutral/negative, bullish/bearish, or mapped with `--labels`).
    Eval {
        /// The labelled CSV.
        #[arg(long, value_name = "FILE")]
        data: PathBuf,
        /// Maps other label vocabularies: `0=bearish,1=bullish,2=neutral`.
        #[arg(long, value_name = "MAP")]
        labels: Option<String>,
        /// The model: `lexicon`, `default` (the shipped head over all-MiniLM-L6-v2 from
        /// `--base`), `ensemble` (as `[engine.sentiment]` configures it) or a model directory
        /// (a sequence-classification checkpoint such as FinBERT, or one written by
        /// `sentiment train`). Default: `ensemble`.
        #[arg(long, value_name = "MODEL")]
        model: Option<String>,
        /// The all-MiniLM-L6-v2 directory for `--model default` (default: the models directory's
        /// `sentence-transformers/all-MiniLM-L6-v2`).
        #[arg(long, value_name = "DIR")]
        base: Option<PathBuf>,
        /// Directory with VADER's `vader_lexicon.txt` (from the `vaderSentiment` package).
        #[arg(long, value_name = "DIR", env = "ATALAYA_LEXICON_DIR")]
        lexicon: Option<PathBuf>,
        /// Directory with FinVADER's `sentibignomics.tsv` and `henry_2008.tsv`.
        #[arg(long, value_name = "DIR", env = "ATALAYA_FINANCE_LEXICON_DIR")]
        finance: Option<PathBuf>,
    },
    /// Train a classification head over an embedding model's sentence vectors on labelled CSV
    /// and write a model directory that `--model DIR` and `[engine.sentiment] model_dir` load.
    Train {
        /// The labelled CSV.
        #[arg(long, value_name = "FILE")]
        data: PathBuf,
        /// Maps other label vocabularies: `0=bearish,1=bullish,2=neutral`.
        #[arg(long, value_name = "MAP")]
        labels: Option<String>,
        /// The model directory to write.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The embedding model (Hugging Face layout; default: the models directory's
        /// `sentence-transformers/all-MiniLM-L6-v2`).
        #[arg(long, value_name = "MODEL_DIR")]
        base: Option<PathBuf>,
        /// L2 penalty (default: chosen on a held-out sixth of the training rows).
        #[arg(long)]
        l2: Option<f64>,
        /// Then fine-tune the encoder's top N layers together with the head (back-propagation
        /// with Adam; the epoch kept is the best on a held-out sixth of the training rows). The
        /// tuned layers are written beside the head as `atalaya-layers.safetensors`.
        #[arg(long, value_name = "N")]
        fine_tune: Option<usize>,
        /// Passes over the training rows when fine-tuning.
        #[arg(long, value_name = "N", default_value_t = 4)]
        epochs: usize,
        /// Adam's step size for the layers when fine-tuning.
        #[arg(long, value_name = "RATE", default_value_t = 3e-5)]
        learning_rate: f32,
        /// Adam's step size for the head when fine-tuning (default: ten times the layers').
        #[arg(long, value_name = "RATE")]
        head_learning_rate: Option<f32>,
        /// Fine-tune rank-R updates of the layers' weights (LoRA) instead of the whole weights,
        /// biases and norms left as they are; the tuned layers are then stored as those factors
        /// (about a megabyte for all six layers of all-MiniLM-L6-v2 at rank 16).
        #[arg(long, value_name = "R")]
        rank: Option<usize>,
        /// What the model is trained and chosen for: `macro-f1` weights the classes by inverse
        /// frequency so that each counts the same; `accuracy` weights every row the same.
        #[arg(long, value_enum, default_value_t = Objective::MacroF1)]
        objective: Objective,
    },
}

/// `atalaya models …`.
#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// Download a BERT-family model (`config.json`, `tokenizer.json`, weights) from the Hugging
    /// Face Hub, e.g. `sentence-transformers/all-MiniLM-L6-v2` or `ProsusAI/finbert`.
    Download {
        /// The Hub name, `owner/name`.
        #[arg(value_name = "NAME")]
        name: String,
        /// Branch, tag or commit.
        #[arg(long, default_value = "main")]
        revision: String,
        /// Where to write (default: the models directory's NAME: `$ATALAYA_MODELS_DIR`, else
        /// `~/.cache/atalaya/models`).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The Hub endpoint.
        #[arg(long, env = "HF_ENDPOINT", default_value = atalaya_sources::hub::DEFAULT_ENDPOINT)]
        endpoint: String,
        /// Download again files that are already there.
        #[arg(long)]
        force: bool,
    },
}

/// `atalaya bench …`.
#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Batch and streaming throughput of RSI(14), EMA(20), MACD(12,26,9), Bollinger(20,2) and
    /// ATR(14) over the file's bars.
    Ta {
        /// A Binance kline CSV or freqtrade JSON file (e.g. `make_data.py`'s 1M rows).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Timed runs after one warm-up.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

/// `atalaya config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// List every configuration problem with its field path (exit 2 when there are any).
    Check,
    /// Print the effective configuration as TOML, secrets redacted.
    Show,
}

/// `atalaya db …`.
#[derive(Debug, Subcommand)]
pub enum DbAction {
    /// Create or update the schema.
    Migrate {
        /// SQLite database file (overrides `store.path`).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
    },
    /// Row counts, coverage per series and size.
    Stats {
        /// SQLite database file (overrides `store.path`).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `sentiment train --objective`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Objective {
    /// Macro-F1 (inverse-frequency class weights).
    #[value(name = "macro-f1")]
    MacroF1,
    /// Accuracy (no class weights).
    Accuracy,
}

impl From<Objective> for atalaya_ml::head::Objective {
    fn from(o: Objective) -> Self {
        match o {
            Objective::MacroF1 => Self::MacroF1,
            Objective::Accuracy => Self::Accuracy,
        }
    }
}
