//! Alert delivery at run time: routes each alert to its channels by priority, and runs one
//! worker per channel that waits for the channel's token bucket, sends, and retries transient
//! failures with backoff (honouring the provider's retry delay). Alerts over a budget wait in
//! the channel's queue; none is dropped while the process runs. At shutdown, what is still
//! queued is reported; the crash-safe outbox that will keep it is the alert-system issue's.

use std::sync::Arc;
use std::time::Duration;

use atalaya_alerts::discord::DiscordNotifier;
use atalaya_alerts::routing::{Channel, QuietHours, Routes, TokenBucket};
use atalaya_alerts::sms::SmsNotifier;
use atalaya_alerts::telegram::TelegramNotifier;
use atalaya_alerts::webhook::WebhookNotifier;
use atalaya_alerts::{ConsoleNotifier, Notifier};
use atalaya_bus::Subscription;
use atalaya_model::{Alert, AlertPriority, Clock, Event, LiveClock};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::AlertsConfig;

/// Attempts per alert and channel before it is given up (dead-lettered in the log).
const MAX_ATTEMPTS: u32 = 6;

/// The configured notifiers.
pub fn notifiers(cfg: &AlertsConfig) -> anyhow::Result<Vec<(Channel, Arc<dyn Notifier>)>> {
    Ok(channels(cfg)?.into_iter().map(|(c, n, _)| (c, n)).collect())
}

/// A configured channel: its notifier and its quiet hours.
pub type ChannelSetup = (Channel, Arc<dyn Notifier>, Option<QuietHours>);

/// The configured notifiers with their quiet hours.
pub fn channels(cfg: &AlertsConfig) -> anyhow::Result<Vec<ChannelSetup>> {
    let quiet = |s: &str| -> anyhow::Result<Option<QuietHours>> {
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse().map(Some).map_err(anyhow::Error::msg)
        }
    };
    let mut out: Vec<ChannelSetup> = Vec::new();
    if cfg.console.enabled {
        out.push((
            Channel::Console,
            Arc::new(ConsoleNotifier::stdout(cfg.console.min_priority)),
            None,
        ));
    }
    if cfg.telegram.enabled {
        let t = &cfg.telegram;
        out.push((
            Channel::Telegram,
            Arc::new(TelegramNotifier::new(
                &t.base_url,
                &t.bot_token,
                &t.chat_id,
            )?),
            quiet(&t.quiet_hours)?,
        ));
    }
    if cfg.discord.enabled {
        out.push((
            Channel::Discord,
            Arc::new(DiscordNotifier::new(&cfg.discord.webhook_url)?),
            quiet(&cfg.discord.quiet_hours)?,
        ));
    }
    if cfg.sms.enabled {
        let m = &cfg.sms;
        let n = SmsNotifier::new(&m.base_url, &m.account_sid, &m.auth_token, &m.from, &m.to)?;
        out.push((Channel::Sms, Arc::new(n), quiet(&m.quiet_hours)?));
    }
    if cfg.email.enabled {
        let e = &cfg.email;
        let n = atalaya_alerts::email::EmailNotifier::new(&atalaya_alerts::email::SmtpSettings {
            host: e.host.clone(),
            port: e.port,
            security: e.security,
            username: e.username.clone(),
            password: e.password.clone(),
            ca_file: (!e.ca_file.is_empty()).then(|| e.ca_file.clone().into()),
            from: e.from.clone(),
            to: e.to.clone(),
            timeout: std::time::Duration::from_secs(30),
        })?;
        out.push((Channel::Email, Arc::new(n), quiet(&e.quiet_hours)?));
    }
    if cfg.webhook.enabled {
        let w = &cfg.webhook;
        out.push((
            Channel::Webhook,
            Arc::new(WebhookNotifier::new(&w.url, &w.secret)?),
            quiet(&w.quiet_hours)?,
        ));
    }
    Ok(out)
}

/// Sends a test alert through each configured channel (or only `only`), returning one line
/// per channel and whether all succeeded.
pub async fn test_channels(
    cfg: &AlertsConfig,
    only: Option<&str>,
    now: i64,
) -> anyhow::Result<(Vec<String>, bool)> {
    let alert = Alert {
        id: 0,
        opportunity_id: None,
        instrument: None,
        priority: atalaya_model::AlertPriority::Low,
        title: "Atalaya test alert".into(),
        body: format!(
            "This is a test of the alert channel, sent at {}. No action is needed.\nNot financial advice.",
            atalaya_model::format_utc(now)
        ),
        created_at: now,
    };
    let mut lines = Vec::new();
    let mut all_ok = true;
    let chosen: Vec<_> = notifiers(cfg)?
        .into_iter()
        .filter(|(_, n)| only.is_none_or(|o| o.eq_ignore_ascii_case(n.name())))
        .collect();
    if chosen.is_empty() {
        anyhow::bail!(
            "no configured channel{}; enable one under [alerts] (see docs/CONFIGURATION.md)",
            only.map(|o| format!(" named {o}")).unwrap_or_default()
        );
    }
    for (_, n) in chosen {
        match n.send(&alert).await {
            Ok(()) => lines.push(format!("{}: ok", n.name())),
            Err(e) => {
                all_ok = false;
                lines.push(format!("{}: failed: {e:#}", n.name()));
            }
        }
    }
    Ok((lines, all_ok))
}

async fn worker(
    channel: Channel,
    n: Arc<dyn Notifier>,
    quiet: Option<QuietHours>,
    mut rx: mpsc::Receiver<Alert>,
    cancel: CancellationToken,
) {
    let clock = LiveClock;
    let mut bucket = TokenBucket::hourly_default(channel, clock.now());
    let mut last_sent = i64::MIN / 2;
    'alerts: while let Some(alert) = rx.recv().await {
        if let Some(end) = quiet
            .filter(|_| alert.priority < AlertPriority::Critical)
            .and_then(|q| q.ends_at(clock.now()))
        {
            tracing::info!(channel = n.name(), "quiet hours; alert held until they end");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_nanos((end - clock.now()).max(0) as u64)) => {}
                () = cancel.cancelled() => {
                    tracing::error!(channel = n.name(), undelivered = 1 + rx.len(), "shutdown during quiet hours; alerts not delivered");
                    break 'alerts;
                }
            }
        }
        if let Some(b) = &mut bucket {
            while let Err(wait_ns) = b.try_take(clock.now()) {
                tracing::info!(
                    channel = n.name(),
                    wait_s = wait_ns / 1_000_000_000,
                    "alert budget used up; waiting"
                );
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_nanos(wait_ns.max(1) as u64)) => {}
                    () = cancel.cancelled() => {
                        let left = 1 + rx.len();
                        tracing::error!(channel = n.name(), undelivered = left, "shutdown with alerts still waiting for the channel's budget");
                        break 'alerts;
                    }
                }
            }
        }
        // Telegram asks for at most one message per second in a chat.
        if channel == Channel::Telegram {
            let since = clock.now() - last_sent;
            if since < 1_000_000_000 {
                tokio::time::sleep(Duration::from_nanos((1_000_000_000 - since) as u64)).await;
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = n.send(&alert).await;
            last_sent = clock.now();
            match result {
                Ok(()) => break,
                Err(e) if e.is_transient() && attempt < MAX_ATTEMPTS => {
                    let wait = match &e {
                        atalaya_alerts::AlertError::RateLimited { retry_after_ms, .. } => {
                            Duration::from_millis(*retry_after_ms)
                        }
                        _ => Duration::from_millis(500 << attempt.min(7)),
                    };
                    tracing::warn!(channel = n.name(), error = %e, attempt, ?wait, "alert delivery failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = cancel.cancelled() => {
                            tracing::error!(channel = n.name(), title = %alert.title, "shutdown during a retry; alert not delivered");
                            break 'alerts;
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(channel = n.name(), error = %e, title = %alert.title, "alert dead-lettered");
                    break;
                }
            }
        }
    }
}

/// Reads alerts from `sub` and hands each to the workers of its channels until `sub` ends;
/// then lets the workers finish what is queued (or stop waiting when `cancel` fires).
pub async fn run(
    mut sub: Box<dyn Subscription>,
    routes: Routes,
    notifiers: Vec<ChannelSetup>,
    cancel: CancellationToken,
) {
    let configured: Vec<Channel> = notifiers.iter().map(|(c, _, _)| *c).collect();
    let mut queues = Vec::new();
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    for (channel, n, quiet) in notifiers {
        let (tx, rx) = mpsc::channel(4096);
        queues.push((channel, tx));
        workers.push(tokio::spawn(worker(channel, n, quiet, rx, cancel.clone())));
    }
    while let Some(env) = sub.recv().await {
        let Event::Alert(alert) = env.payload else {
            continue;
        };
        for channel in routes.route(alert.priority, &configured) {
            if let Some((_, tx)) = queues.iter().find(|(c, _)| *c == channel)
                && tx.send((*alert).clone()).await.is_err()
            {
                tracing::error!(?channel, "alert worker stopped; alert not queued");
            }
        }
    }
    drop(queues);
    for w in workers {
        if let Err(e) = w.await {
            tracing::error!(error = %e, "alert worker panicked");
        }
    }
}
