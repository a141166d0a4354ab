//! Configuration: defaults, then `atalaya.toml` (or `--config FILE`), then `ATALAYA_*`
//! environment variables, then command-line flags.
//!
//! Every problem is reported at once with its field path. Each value the user set is checked
//! on its own against the defaults (so one bad field cannot hide another), then the whole is
//! checked for rules that span fields.

use std::path::{Path, PathBuf};

use atalaya_alerts::ConsoleConfig;
use atalaya_alerts::routing::Routes;
use atalaya_engine::{EngineConfig, PortfolioConfig, RiskConfig};
use atalaya_server::ServerConfig;
use atalaya_sources::SimConfig;
use atalaya_store::StoreConfig;
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

/// Environment variables with this prefix override configuration fields:
/// `ATALAYA_SERVER__LISTEN=0.0.0.0:8080` sets `server.listen`.
pub const ENV_PREFIX: &str = "ATALAYA_";

/// Variables with the prefix that are not configuration (test and tooling switches). Only
/// variables with a `__` (SECTION__FIELD) are read as configuration at all.
const ENV_RESERVED: [&str; 5] = [
    "ATALAYA_LOG",
    "ATALAYA_DATA_DIR",
    "ATALAYA_TEST_",
    "ATALAYA_TALIB_",
    "ATALAYA_BENCH_",
];

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AppConfig {
    /// What `atalaya run` (without `--demo`) collects from.
    pub live: LiveConfig,
    /// The market simulator (`--demo`, or `live.sources = ["sim"]`).
    pub sim: SimConfig,
    /// Bars, indicators, weights and thresholds.
    pub engine: EngineConfig,
    /// Where data is kept.
    pub store: StoreConfig,
    /// The HTTP API.
    pub server: ServerConfig,
    /// The event bus.
    pub bus: BusConfig,
    /// Alert channels.
    pub alerts: AlertsConfig,
    /// The paper portfolio (backtests, and the live paper trader).
    pub portfolio: PortfolioConfig,
    /// The risk manager's limits.
    pub risk: RiskConfig,
    /// Walk-forward optimisation (`atalaya optimize`).
    pub optimize: atalaya_backtest::walk::OptimizeConfig,
    /// Exchange endpoints (testnets, proxies and test servers work).
    pub venues: VenuesConfig,
    /// CoinGecko market statistics (`live.sources = ["sim", "coingecko"]`).
    pub coingecko: atalaya_sources::coingecko::CoinGeckoConfig,
    /// RSS and Atom news feeds (`live.sources = ["news"]`).
    pub news: atalaya_sources::news::NewsConfig,
    /// Reddit listings (`live.sources = ["reddit"]`).
    pub reddit: atalaya_sources::reddit::RedditConfig,
    /// On-chain metrics (`live.sources = ["onchain"]`).
    pub onchain: atalaya_sources::onchain::OnchainConfig,
    /// NewsAPI headlines (`live.sources = ["newsapi"]`, with a key).
    pub newsapi: atalaya_sources::newsapi::NewsApiConfig,
    /// X recent search (`live.sources = ["x"]`, with a bearer token).
    pub x: atalaya_sources::x::XConfig,
}

/// Exchange endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct VenuesConfig {
    /// Binance Spot: endpoints, symbols, streams (`live.sources = ["binance"]`, `download`).
    pub binance: atalaya_sources::binance_ws::BinanceConfig,
    /// Coinbase Advanced Trade (`live.sources = ["coinbase"]`, `download`).
    pub coinbase: atalaya_sources::coinbase_ws::CoinbaseConfig,
    /// Kraken Spot (`live.sources = ["kraken"]`).
    pub kraken: atalaya_sources::kraken_ws::KrakenConfig,
}

/// Live sources.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    /// Sources to run: `sim` (the built-in simulator), `binance` (Binance Spot live over
    /// WebSocket, `[venues.binance]`), `coingecko` (market statistics). News, social and
    /// on-chain collectors are added by later releases.
    pub sources: Vec<LiveSource>,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            sources: vec![LiveSource::Binance],
        }
    }
}

/// A live source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveSource {
    /// The built-in market simulator.
    Sim,
    /// Market statistics from CoinGecko (`[coingecko]`), for the fundamental factor.
    Coingecko,
    /// Binance Spot live: combined WebSocket streams with REST backfill (`[venues.binance]`).
    Binance,
    /// Coinbase Advanced Trade live: WebSocket channels with REST backfill
    /// (`[venues.coinbase]`).
    Coinbase,
    /// Kraken Spot live: WebSocket v2 with REST OHLC backfill (`[venues.kraken]`).
    Kraken,
    /// RSS and Atom news feeds with conditional GET (`[news]`).
    News,
    /// Reddit hot and new listings (`[reddit]`).
    Reddit,
    /// Bitcoin mempool, fees, hash rate; Ethereum gas, blocks and stablecoin supply
    /// (`[onchain]`).
    Onchain,
    /// NewsAPI `/v2/everything` headlines (`[newsapi]`; needs a key).
    Newsapi,
    /// X API v2 recent search (`[x]`; needs a bearer token).
    X,
}

/// Bus settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// Capacity of each queue, in messages.
    pub capacity: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self { capacity: 8192 }
    }
}

/// Alert channels and policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// The same instrument and opportunity type is not alerted again within this many minutes
    /// of event time (an escalation or a change of side is).
    pub dedup_minutes: u32,
    /// Channels per priority.
    pub routes: Routes,
    /// Printing alerts to standard output.
    pub console: ConsoleConfig,
    /// Telegram Bot API.
    pub telegram: TelegramConfig,
    /// Discord webhook.
    pub discord: DiscordConfig,
    /// Generic signed webhook.
    pub webhook: WebhookConfig,
    /// SMS through Twilio.
    pub sms: SmsConfig,
    /// Email over SMTP.
    pub email: EmailConfig,
    /// Alerts per hour per channel (token buckets).
    pub budget: BudgetConfig,
    /// Folding alerts below critical into one message per window.
    pub digest: DigestConfig,
}

/// Digest mode: on the listed channels, alerts below critical wait up to `minutes` for others
/// and go out together as one message (which costs one token of the channel's budget).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DigestConfig {
    /// The window in minutes; 0 turns digests off.
    pub minutes: u32,
    /// The channels that get digests.
    pub channels: Vec<atalaya_alerts::routing::Channel>,
    /// At most this many alerts per digest.
    pub max_items: usize,
}

impl Default for DigestConfig {
    fn default() -> Self {
        Self {
            minutes: 0,
            channels: Vec::new(),
            max_items: 30,
        }
    }
}

impl DigestConfig {
    /// The dispatcher's digest settings; `None` when off.
    pub fn settings(
        &self,
    ) -> Option<(
        crate::deliver::Digest,
        Vec<atalaya_alerts::routing::Channel>,
    )> {
        (self.minutes > 0 && !self.channels.is_empty()).then(|| {
            (
                crate::deliver::Digest {
                    window: std::time::Duration::from_secs(u64::from(self.minutes) * 60),
                    max_items: self.max_items.max(1),
                },
                self.channels.clone(),
            )
        })
    }
}

/// Alerts per hour per channel: the original plan's defaults. An alert over the budget waits
/// in the outbox, pending; it is never dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// Telegram.
    pub telegram: u32,
    /// Discord.
    pub discord: u32,
    /// Email.
    pub email: u32,
    /// SMS.
    pub sms: u32,
    /// The generic webhook.
    pub webhook: u32,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            telegram: 50,
            discord: 100,
            email: 20,
            sms: 5,
            webhook: 600,
        }
    }
}

impl BudgetConfig {
    /// The budget of each channel (the console has none).
    pub fn per_channel(&self) -> std::collections::BTreeMap<atalaya_alerts::routing::Channel, u32> {
        use atalaya_alerts::routing::Channel;
        [
            (Channel::Telegram, self.telegram),
            (Channel::Discord, self.discord),
            (Channel::Email, self.email),
            (Channel::Sms, self.sms),
            (Channel::Webhook, self.webhook),
        ]
        .into_iter()
        .collect()
    }
}

/// Email over SMTP. The password comes from `ATALAYA_ALERTS__EMAIL__PASSWORD`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// Whether to send email.
    pub enabled: bool,
    /// SMTP server host name.
    pub host: String,
    /// Port: 587 for STARTTLS, 465 for implicit TLS.
    pub port: u16,
    /// `starttls`, `tls`, or `none` (loopback only).
    pub security: atalaya_alerts::email::Security,
    /// SMTP user name; empty for no authentication.
    pub username: String,
    /// SMTP password (secret; environment only).
    pub password: String,
    /// PEM file of extra certificate authorities to trust; empty for the public roots only.
    pub ca_file: String,
    /// Sender, `Name <address>` or `address`.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Daily UTC window (`22:00-07:00`) in which alerts below critical wait; empty for none.
    pub quiet_hours: String,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: String::new(),
            port: 587,
            security: atalaya_alerts::email::Security::Starttls,
            username: String::new(),
            password: String::new(),
            ca_file: String::new(),
            from: String::new(),
            to: Vec::new(),
            quiet_hours: String::new(),
        }
    }
}

/// SMS through Twilio. The auth token comes from `ATALAYA_ALERTS__SMS__AUTH_TOKEN`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    /// Whether to send SMS.
    pub enabled: bool,
    /// API base URL.
    pub base_url: String,
    /// Twilio account SID (`AC…`).
    pub account_sid: String,
    /// Auth token (secret; environment only).
    pub auth_token: String,
    /// Sending number, E.164 (`+15017122661`).
    pub from: String,
    /// Receiving number, E.164.
    pub to: String,
    /// Daily UTC window (`22:00-07:00`) in which alerts below critical wait; empty for none.
    pub quiet_hours: String,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            base_url: "https://api.twilio.com".into(),
            account_sid: String::new(),
            auth_token: String::new(),
            from: String::new(),
            to: String::new(),
            quiet_hours: String::new(),
        }
    }
}

/// A generic webhook: the alert as JSON, signed with HMAC-SHA256 over timestamp and body.
/// The signing secret comes from `ATALAYA_ALERTS__WEBHOOK__SECRET`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Whether to post alerts.
    pub enabled: bool,
    /// Where to post them.
    pub url: String,
    /// Signing secret (secret; environment only).
    pub secret: String,
    /// Daily UTC window (`22:00-07:00`) in which alerts below critical wait; empty for none.
    pub quiet_hours: String,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            dedup_minutes: 30,
            routes: Routes::default(),
            console: ConsoleConfig::default(),
            telegram: TelegramConfig::default(),
            discord: DiscordConfig::default(),
            webhook: WebhookConfig::default(),
            sms: SmsConfig::default(),
            email: EmailConfig::default(),
            budget: BudgetConfig::default(),
            digest: DigestConfig::default(),
        }
    }
}

/// Telegram settings. The token is a secret: set it with `ATALAYA_ALERTS__TELEGRAM__BOT_TOKEN`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramConfig {
    /// Whether to send to Telegram.
    pub enabled: bool,
    /// API base URL.
    pub base_url: String,
    /// Chat id (a number) or `@channelusername`.
    pub chat_id: String,
    /// Bot token (secret; environment only).
    pub bot_token: String,
    /// Daily UTC window (`22:00-07:00`) in which alerts below critical wait; empty for none.
    pub quiet_hours: String,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            base_url: "https://api.telegram.org".into(),
            chat_id: String::new(),
            bot_token: String::new(),
            quiet_hours: String::new(),
        }
    }
}

/// Discord settings. The webhook URL carries its token: set it with
/// `ATALAYA_ALERTS__DISCORD__WEBHOOK_URL`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordConfig {
    /// Whether to send to Discord.
    pub enabled: bool,
    /// Webhook URL (secret; environment only).
    pub webhook_url: String,
    /// Daily UTC window (`22:00-07:00`) in which alerts below critical wait; empty for none.
    pub quiet_hours: String,
}

/// One configuration problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted field path (`engine.decision.buy`), or the file for syntax errors.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// Where the bad value came from (`atalaya.toml`, `ATALAYA_X`, `default`).
    pub origin: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (from {})", self.path, self.message, self.origin)
    }
}

/// A loaded configuration and where it came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The effective configuration.
    pub config: AppConfig,
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// The environment variables applied.
    pub env: Vec<String>,
}

fn default_value() -> Value {
    Value::try_from(AppConfig::default()).unwrap_or(Value::Table(Table::new()))
}

/// Every leaf of `v` as (path, value); arrays are leaves.
fn leaves(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
    match v {
        Value::Table(t) if !t.is_empty() => {
            for (k, child) in t {
                prefix.push(k.clone());
                leaves(child, prefix, out);
                prefix.pop();
            }
        }
        other => out.push((prefix.clone(), other.clone())),
    }
}

fn set_path(root: &mut Value, path: &[String], v: Value) {
    let mut cur = root;
    for (i, key) in path.iter().enumerate() {
        let Value::Table(t) = cur else { return };
        if i + 1 == path.len() {
            t.insert(key.clone(), v);
            return;
        }
        cur = t
            .entry(key.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        if !cur.is_table() {
            *cur = Value::Table(Table::new());
        }
    }
}

fn deser(v: Value) -> Result<AppConfig, String> {
    AppConfig::deserialize(v).map_err(|e| e.message().trim().to_owned())
}

/// Parses an environment value as a TOML value when it is one (`0.6`, `true`, `["1m"]`),
/// else as a string.
fn env_value(raw: &str) -> Value {
    let doc = format!("v = {raw}");
    match doc.parse::<Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| Value::String(raw.to_owned())),
        Err(_) => Value::String(raw.to_owned()),
    }
}

/// Loads the configuration from `file` (or `./atalaya.toml` when present) and `env`.
/// Returns every problem found when it is not usable.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut overlays: Vec<(Vec<String>, Value, String)> = Vec::new();
    let implicit = Path::new("atalaya.toml");
    let path = match file {
        Some(p) => Some(p.to_owned()),
        None => implicit.exists().then(|| implicit.to_owned()),
    };
    if let Some(p) = &path {
        let origin = p.display().to_string();
        match std::fs::read_to_string(p) {
            Err(e) => problems.push(Problem {
                path: origin.clone(),
                message: format!("cannot read the file: {e}"),
                origin: "--config".into(),
            }),
            Ok(text) => match text.parse::<Table>() {
                Err(e) => problems.push(Problem {
                    path: origin.clone(),
                    message: format!("not valid TOML: {}", e.to_string().trim()),
                    origin: origin.clone(),
                }),
                Ok(t) => {
                    let mut ls = Vec::new();
                    leaves(&Value::Table(t), &mut Vec::new(), &mut ls);
                    overlays.extend(ls.into_iter().map(|(p, v)| (p, v, origin.clone())));
                }
            },
        }
    }
    let mut env_used = Vec::new();
    let mut env: Vec<(String, String)> = env.into_iter().collect();
    env.sort();
    for (k, v) in env {
        let Some(rest) = k.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if ENV_RESERVED.iter().any(|r| k.starts_with(r)) || !rest.contains("__") {
            continue;
        }
        let mut path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            problems.push(Problem {
                path: k.clone(),
                message: "empty path segment; use SECTION__FIELD".into(),
                origin: k.clone(),
            });
            continue;
        }
        // `…_FILE` names a secret file (Docker and Kubernetes secrets): the field is its
        // content, without the trailing newline.
        let from_file = path
            .last()
            .and_then(|l| l.strip_suffix("_file"))
            .filter(|field| is_secret_key(field))
            .map(str::to_owned);
        let value = match from_file {
            Some(field) => match std::fs::read_to_string(&v) {
                Ok(text) => {
                    if let Some(last) = path.last_mut() {
                        *last = field;
                    }
                    Value::String(text.trim_end_matches(['\n', '\r']).to_owned())
                }
                Err(e) => {
                    problems.push(Problem {
                        path: k.clone(),
                        message: format!("cannot read the secret file {v:?}: {e}"),
                        origin: k.clone(),
                    });
                    continue;
                }
            },
            None => env_value(&v),
        };
        env_used.push(k.clone());
        overlays.push((path, value, k));
    }
    // Secrets come only from the environment, never from a file that may be committed.
    for (path, value, origin) in &overlays {
        let set = !matches!(value, Value::String(v) if v.is_empty());
        if set && path.last().is_some_and(|k| is_secret_key(k)) && !origin.starts_with(ENV_PREFIX) {
            let var = format!("{ENV_PREFIX}{}", path.join("__").to_ascii_uppercase());
            problems.push(Problem {
                path: path.join("."),
                message: format!("secrets are read only from the environment; set {var} instead"),
                origin: origin.clone(),
            });
        }
    }
    // Each user-set value on its own against the defaults; the ones that pass are combined
    // so that rules spanning fields are checked even when some other field is broken.
    let defaults = default_value();
    let mut full = defaults.clone();
    for (path, v, origin) in &mut overlays {
        let mut candidate = defaults.clone();
        set_path(&mut candidate, path, v.clone());
        // An environment value that read as a number or boolean may be meant as text
        // (ATALAYA_ALERTS__TELEGRAM__CHAT_ID=7): try it as a string before giving up.
        if origin.starts_with(ENV_PREFIX) && !v.is_str() && deser(candidate.clone()).is_err() {
            let text = Value::String(v.to_string());
            let mut retry = defaults.clone();
            set_path(&mut retry, path, text.clone());
            if deser(retry).is_ok() {
                *v = text;
                set_path(&mut candidate, path, v.clone());
            }
        }
        match deser(candidate) {
            Ok(_) => set_path(&mut full, path, v.clone()),
            Err(message) => problems.push(Problem {
                path: path.join("."),
                message,
                origin: origin.clone(),
            }),
        }
    }
    let config = match deser(full) {
        Ok(c) => c,
        Err(message) => {
            problems.push(Problem {
                path: "(config)".into(),
                message,
                origin: "combined".into(),
            });
            return Err(problems);
        }
    };
    // Rules that span fields.
    let origin_of = |p: &str| {
        overlays
            .iter()
            .rev()
            .find(|(path, _, _)| {
                let joined = path.join(".");
                p == joined
                    || p.starts_with(&format!("{joined}."))
                    || p.starts_with(&format!("{joined}["))
                    || joined.starts_with(&format!("{p}."))
            })
            .map_or_else(|| "default".to_owned(), |(_, _, o)| o.clone())
    };
    // Rule placeholders (`{fast}`) are filled by `atalaya optimize`: check the rules with each
    // searched value at the middle of its range.
    let mut engine = config.engine.clone();
    for p in &config.optimize.params {
        if let Some(name) = p.path.strip_prefix("rules.") {
            let mid = (p.min + p.max) / 2.0;
            let v = if p.integer { mid.round() } else { mid };
            for r in &mut engine.rules {
                r.when = r.when.replace(&format!("{{{name}}}"), &format!("{v}"));
            }
        }
    }
    for i in engine.validate() {
        let path = format!("engine.{}", i.path);
        problems.push(Problem {
            origin: origin_of(&path),
            path,
            message: i.message,
        });
    }
    for (section, issues) in [
        ("portfolio", config.portfolio.validate()),
        ("risk", config.risk.validate()),
    ] {
        for i in issues {
            let path = format!("{section}.{}", i.path);
            problems.push(Problem {
                origin: origin_of(&path),
                path,
                message: i.message,
            });
        }
    }
    for (p, m) in config.sim.validate() {
        let path = format!("sim.{p}");
        problems.push(Problem {
            origin: origin_of(&path),
            path,
            message: m,
        });
    }
    if config.bus.capacity == 0 || config.bus.capacity > 10_000_000 {
        problems.push(Problem {
            path: "bus.capacity".into(),
            message: format!(
                "must be between 1 and 10000000, got {}",
                config.bus.capacity
            ),
            origin: origin_of("bus.capacity"),
        });
    }
    let t = &config.alerts.telegram;
    if t.enabled && (t.bot_token.trim().is_empty() || t.chat_id.trim().is_empty()) {
        problems.push(Problem {
            path: "alerts.telegram".into(),
            message:
                "enabled without a chat_id and a bot token (ATALAYA_ALERTS__TELEGRAM__BOT_TOKEN)"
                    .into(),
            origin: origin_of("alerts.telegram"),
        });
    }
    let d = &config.alerts.discord;
    if d.enabled && !(d.webhook_url.starts_with("https://") || d.webhook_url.starts_with("http://"))
    {
        problems.push(Problem {
            path: "alerts.discord".into(),
            message: "enabled without a webhook URL (ATALAYA_ALERTS__DISCORD__WEBHOOK_URL)".into(),
            origin: origin_of("alerts.discord"),
        });
    }
    let w = &config.alerts.webhook;
    if w.enabled
        && (!(w.url.starts_with("https://") || w.url.starts_with("http://")) || w.secret.is_empty())
    {
        problems.push(Problem {
            path: "alerts.webhook".into(),
            message: "enabled without an http(s) url and a signing secret (ATALAYA_ALERTS__WEBHOOK__SECRET)".into(),
            origin: origin_of("alerts.webhook"),
        });
    }
    let m = &config.alerts.sms;
    if m.enabled
        && [&m.account_sid, &m.auth_token, &m.from, &m.to]
            .iter()
            .any(|v| v.trim().is_empty())
    {
        problems.push(Problem {
            path: "alerts.sms".into(),
            message: "enabled without account_sid, from, to and an auth token (ATALAYA_ALERTS__SMS__AUTH_TOKEN)".into(),
            origin: origin_of("alerts.sms"),
        });
    }
    let e = &config.alerts.email;
    if e.enabled && (e.host.trim().is_empty() || e.from.trim().is_empty() || e.to.is_empty()) {
        problems.push(Problem {
            path: "alerts.email".into(),
            message: "enabled without host, from and at least one address in to".into(),
            origin: origin_of("alerts.email"),
        });
    }
    if e.enabled
        && e.security == atalaya_alerts::email::Security::None
        && !matches!(e.host.as_str(), "localhost" | "127.0.0.1" | "::1")
    {
        problems.push(Problem {
            path: "alerts.email.security".into(),
            message: format!(
                "\"none\" would send mail and password in clear to {}: use starttls or tls (none is for a relay on localhost)",
                e.host
            ),
            origin: origin_of("alerts.email.security"),
        });
    }
    for (name, q) in [
        ("email", &config.alerts.email.quiet_hours),
        ("sms", &config.alerts.sms.quiet_hours),
        ("telegram", &config.alerts.telegram.quiet_hours),
        ("discord", &config.alerts.discord.quiet_hours),
        ("webhook", &config.alerts.webhook.quiet_hours),
    ] {
        if !q.is_empty()
            && let Err(message) = q.parse::<atalaya_alerts::routing::QuietHours>()
        {
            let path = format!("alerts.{name}.quiet_hours");
            problems.push(Problem {
                origin: origin_of(&path),
                path,
                message,
            });
        }
    }
    let cg = &config.coingecko;
    if cg.coins.is_empty() || cg.poll_secs < 10 {
        problems.push(Problem {
            path: "coingecko".into(),
            message: format!(
                "needs at least one coin and poll_secs of at least 10 (got {} coins, {} s)",
                cg.coins.len(),
                cg.poll_secs
            ),
            origin: origin_of("coingecko"),
        });
    }
    for message in config
        .venues
        .binance
        .problems()
        .into_iter()
        .chain(config.venues.coinbase.problems())
        .chain(config.venues.kraken.problems())
        .chain(config.news.problems())
        .chain(config.reddit.problems())
        .chain(config.onchain.problems())
        .chain(config.newsapi.problems())
        .chain(config.x.problems())
        .chain(
            config
                .live
                .sources
                .contains(&LiveSource::Newsapi)
                .then(|| config.newsapi.key_problem())
                .flatten(),
        )
        .chain(
            config
                .live
                .sources
                .contains(&LiveSource::X)
                .then(|| config.x.token_problem())
                .flatten(),
        )
    {
        let path = message.split(':').next().unwrap_or("venues").to_owned();
        problems.push(Problem {
            origin: origin_of(&path),
            message: message[path.len()..]
                .trim_start_matches(':')
                .trim()
                .to_owned(),
            path,
        });
    }
    if config.live.sources.is_empty() {
        problems.push(Problem {
            path: "live.sources".into(),
            message: "at least one source is required".into(),
            origin: origin_of("live.sources"),
        });
    }
    if problems.is_empty() {
        Ok(Loaded {
            config,
            file: path,
            env: env_used,
        })
    } else {
        Err(problems)
    }
}

/// Whether a key names a secret (tokens, passwords, keys).
fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "passwd",
        "api_key",
        "apikey",
        "private_key",
        "webhook_url",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Replaces secret values with `***`, and the credentials inside any URL ([`redact_url`]).
pub fn redact(v: &mut Value) {
    match v {
        Value::Table(t) => {
            for (k, child) in t.iter_mut() {
                let empty = matches!(child, Value::String(v) if v.is_empty());
                if is_secret_key(k) && !matches!(child, Value::Table(_)) && !empty {
                    *child = Value::String("***".into());
                } else {
                    redact(child);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        Value::String(s) => {
            if let Some(r) = redact_url(s) {
                *s = r;
            }
        }
        _ => {}
    }
}

/// A URL with its credentials replaced by `***`, or `None` when it is not a URL or carries
/// none: the password of `scheme://user:pass@host` (a lone user name too), query parameters named like secrets
/// (`?apikey=…`, `&token=…`), and path segments that look like keys — providers put them
/// there (`https://mainnet.infura.io/v3/<project id>`, `…/v2/<alchemy key>`). A key-like
/// segment is at least 20 characters of letters, digits, `-` and `_`, with both letters
/// and digits; words, versions and feed paths are left alone.
fn redact_url(s: &str) -> Option<String> {
    let (scheme, rest) = s.split_once("://")?;
    let (authority, tail) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            // A user name alone is often the token itself (`https://<token>@host`).
            None => format!("***@{host}"),
        },
        None => authority.to_owned(),
    };
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let key_like = |seg: &str| {
        seg.len() >= 20
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && seg.chars().any(|c| c.is_ascii_digit())
            && seg.chars().any(|c| c.is_ascii_alphabetic())
    };
    let path: Vec<&str> = path
        .split('/')
        .map(|seg| if key_like(seg) { "***" } else { seg })
        .collect();
    let mut out = format!("{scheme}://{authority}{}", path.join("/"));
    if let Some(q) = query {
        let (q, fragment) = match q.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (q, None),
        };
        let params: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, v))
                    if !v.is_empty()
                        && (is_secret_key(k)
                            || ["key", "auth"].contains(&k.to_ascii_lowercase().as_str())) =>
                {
                    format!("{k}=***")
                }
                _ => kv.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
    }
    (out != s).then_some(out)
}

/// The effective configuration as TOML, secrets redacted.
pub fn show(cfg: &AppConfig) -> Result<String, toml::ser::Error> {
    let mut v = Value::try_from(cfg)?;
    redact(&mut v);
    toml::to_string(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_load_and_round_trip_through_show() {
        let l = load(Some(Path::new("/nonexistent/atalaya.toml")), env(&[]));
        assert!(l.is_err(), "a missing explicit file is an error");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.toml");
        std::fs::write(&p, show(&AppConfig::default()).unwrap()).unwrap();
        let l = load(Some(&p), env(&[])).unwrap();
        assert_eq!(l.config, AppConfig::default());
    }

    #[test]
    fn secrets_can_come_from_files_named_by_file_variables() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("tg");
        std::fs::write(&secret, "123:from-a-file\n").unwrap();
        let l = load(
            None,
            env(&[(
                "ATALAYA_ALERTS__TELEGRAM__BOT_TOKEN_FILE",
                secret.to_str().unwrap(),
            )]),
        )
        .unwrap();
        assert_eq!(l.config.alerts.telegram.bot_token, "123:from-a-file");
        let problems = load(
            None,
            env(&[(
                "ATALAYA_ALERTS__SMS__AUTH_TOKEN_FILE",
                "/nonexistent/secret",
            )]),
        )
        .unwrap_err();
        assert!(
            problems[0].message.contains("cannot read the secret file"),
            "{problems:?}"
        );
    }

    #[test]
    fn file_then_env_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.toml");
        std::fs::write(&p, "[engine.decision]\nbuy = 0.5\nstrong_buy = 0.7\n[server]\nlisten = \"127.0.0.1:9000\"\n").unwrap();
        let l = load(
            Some(&p),
            env(&[
                ("ATALAYA_ENGINE__DECISION__BUY", "0.55"),
                ("ATALAYA_LOG", "debug"),
                ("ATALAYA_TALIB_REF", "/tmp/x"),
                ("ATALAYA_SOMETHING_ELSE", "1"),
                ("ATALAYA_ENGINE__TIMEFRAMES", "[\"1m\", \"1h\"]"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(l.config.engine.decision.buy, 0.55);
        assert_eq!(l.config.engine.decision.strong_buy, 0.7);
        assert_eq!(l.config.server.listen.port(), 9000);
        assert_eq!(l.config.engine.timeframes.len(), 2);
        assert_eq!(
            l.env,
            vec![
                "ATALAYA_ENGINE__DECISION__BUY",
                "ATALAYA_ENGINE__TIMEFRAMES"
            ]
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(
            &p,
            "[engine]\ntimeframes = [\"1m\", \"7m\"]\n[engine.decision]\nbuy = \"high\"\nmin_confidence = 0.4\nfoo = 1\n\
             [server]\nlisten = \"nowhere\"\n[store]\nkind = \"mongo\"\n[bus]\ncapacity = -3\n",
        )
        .unwrap();
        let problems = load(Some(&p), env(&[("ATALAYA_SIM__SEED", "\"abc\"")])).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "engine.timeframes",
            "engine.decision.buy",
            "engine.decision.foo",
            "server.listen",
            "store.kind",
            "bus.capacity",
            "sim.seed",
        ] {
            assert!(paths.contains(&want), "{want} missing from {problems:#?}");
        }
        assert!(!paths.contains(&"engine.decision.min_confidence"));
        let seed = problems.iter().find(|p| p.path == "sim.seed").unwrap();
        assert_eq!(seed.origin, "ATALAYA_SIM__SEED");
    }

    #[test]
    fn cross_field_rules_are_checked_after() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.toml");
        std::fs::write(
            &p,
            "[engine.decision]\nbuy = 0.9\n[engine.indicators]\nema_fast = 40\n",
        )
        .unwrap();
        let problems = load(Some(&p), env(&[])).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"engine.decision"), "{problems:?}");
        assert!(
            paths.contains(&"engine.indicators.ema_fast"),
            "{problems:?}"
        );
        let d = problems
            .iter()
            .find(|p| p.path == "engine.decision")
            .unwrap();
        assert_eq!(d.origin, p.display().to_string());
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("broken.toml");
        std::fs::write(&p, "[engine\n").unwrap();
        let problems = load(Some(&p), env(&[])).unwrap_err();
        assert!(problems[0].path.ends_with("broken.toml"));
        assert!(problems[0].message.contains("not valid TOML"));
    }

    #[test]
    fn secrets_only_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(
            &p,
            "[alerts.telegram]\nenabled = true\nchat_id = \"1\"\nbot_token = \"123:abc\"\n",
        )
        .unwrap();
        let problems = load(Some(&p), env(&[])).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|x| x.path == "alerts.telegram.bot_token"
                    && x.message.contains("ATALAYA_ALERTS__TELEGRAM__BOT_TOKEN")),
            "{problems:?}"
        );
        std::fs::write(&p, "[alerts.telegram]\nenabled = true\nchat_id = \"1\"\n").unwrap();
        let l = load(
            Some(&p),
            env(&[("ATALAYA_ALERTS__TELEGRAM__BOT_TOKEN", "123:abc")]),
        )
        .unwrap();
        assert_eq!(l.config.alerts.telegram.bot_token, "123:abc");
        assert!(!show(&l.config).unwrap().contains("123:abc"));
        let problems = load(Some(&p), env(&[])).unwrap_err();
        assert!(
            problems.iter().any(|x| x.path == "alerts.telegram"),
            "{problems:?}"
        );
    }

    #[test]
    fn quiet_hours_are_checked() {
        let bad = load(
            None,
            env(&[("ATALAYA_ALERTS__DISCORD__QUIET_HOURS", "late")]),
        )
        .unwrap_err();
        assert!(
            bad.iter().any(
                |p| p.path == "alerts.discord.quiet_hours" && p.message.contains("HH:MM-HH:MM")
            ),
            "{bad:?}"
        );
        let ok = load(
            None,
            env(&[("ATALAYA_ALERTS__DISCORD__QUIET_HOURS", "22:00-07:00")]),
        )
        .unwrap();
        assert_eq!(ok.config.alerts.discord.quiet_hours, "22:00-07:00");
    }

    #[test]
    fn redacts_secrets() {
        let mut v: Value =
            "[a]\nbot_token = \"123:abc\"\nurl = \"postgres://u:pw@h/db\"\nname = \"x\"\n"
                .parse::<Table>()
                .map(Value::Table)
                .unwrap();
        redact(&mut v);
        let s = toml::to_string(&v).unwrap();
        assert!(s.contains("bot_token = \"***\""), "{s}");
        assert!(s.contains("postgres://u:***@h/db"), "{s}");
        assert!(s.contains("name = \"x\""));
    }

    #[test]
    fn redacts_keys_inside_urls() {
        let cases = [
            (
                "https://mainnet.infura.io/v3/9aa3d95b3bc440fa88ea12eaa4456161",
                Some("https://mainnet.infura.io/v3/***"),
            ),
            (
                "https://eth-mainnet.g.alchemy.com/v2/Abc123-def456_GHI789jkl0",
                Some("https://eth-mainnet.g.alchemy.com/v2/***"),
            ),
            (
                "https://api.example.com/v1/x?apikey=s3cret&symbol=BTC#top",
                Some("https://api.example.com/v1/x?apikey=***&symbol=BTC#top"),
            ),
            (
                "https://u:pw@host:8545/path?token=abc",
                Some("https://u:***@host:8545/path?token=***"),
            ),
            ("redis://127.0.0.1:6379/0", None),
            ("https://ghp_token@host/x", Some("https://***@host/x")),
            ("https://www.coindesk.com/arc/outboundfeeds/rss/", None),
            ("https://mempool.space/api", None),
            (
                "https://newsapi.org/v2/everything?q=bitcoin&language=en",
                None,
            ),
            ("https://example.com/a-very-long-path-made-of-words", None),
            ("not a url", None),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url).as_deref(), want, "{url}");
        }
        // Through `config show`: the Ethereum endpoint's key never reaches the output.
        let mut v: Value = "[onchain]\nethereum_rpc_url = \"https://mainnet.infura.io/v3/9aa3d95b3bc440fa88ea12eaa4456161\"\n"
            .parse::<Table>()
            .map(Value::Table)
            .unwrap();
        redact(&mut v);
        let s = toml::to_string(&v).unwrap();
        assert!(!s.contains("9aa3d95b"), "{s}");
    }
}
