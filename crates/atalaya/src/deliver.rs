//! Alert delivery at run time, from the outbox in the store: the engine writes each alert with
//! one delivery row per routed channel (in the writer's transaction); [`dispatch`] sends the
//! pending rows through one worker per channel, which keeps the channel's token bucket, quiet
//! hours and pace, and records each outcome: delivered; pending again with exponential backoff
//! and jitter (or the provider's retry delay) after a transient failure; dead-lettered after
//! [`MAX_ATTEMPTS`] or a permanent refusal. A crash loses nothing: what was not recorded as
//! delivered is sent at the next start.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use atalaya_alerts::chart::{ChartBar, Levels, render_png};
use atalaya_alerts::discord::DiscordNotifier;
use atalaya_alerts::routing::{Channel, QuietHours, TokenBucket};
use atalaya_alerts::sms::SmsNotifier;
use atalaya_alerts::telegram::TelegramNotifier;
use atalaya_alerts::webhook::WebhookNotifier;
use atalaya_alerts::{ConsoleNotifier, Notifier};
use atalaya_model::{Alert, AlertPriority, Clock, DeliveryState, LiveClock};
use atalaya_store::{DeliveryUpdate, DueDelivery, Store};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::AlertsConfig;

/// Attempts per alert and channel before it is dead-lettered.
const MAX_ATTEMPTS: u32 = 6;

/// At the end of a run, retries due within this long are still made.
const FINISH_GRACE_NS: i64 = 10_000_000_000;

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
        deliveries: Vec::new(),
        timeframe: None,
        short: None,
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

/// What a worker did with one delivery.
enum Outcome {
    /// It tried, and recorded the outcome.
    Sent,
    /// It did not try: the run is finishing and the channel would have had to wait (budget
    /// or quiet hours). The row stays pending for the next start.
    Deferred,
}

/// Folding alerts below critical into one message per window, per channel.
#[derive(Clone, Copy, Debug)]
pub struct Digest {
    /// How long the first folded alert waits for others.
    pub window: Duration,
    /// At most this many alerts per digest.
    pub max_items: usize,
}

/// The alert sent for several folded ones: one line each, newest last.
fn digest_alert(items: &[DueDelivery]) -> Alert {
    let priority = items
        .iter()
        .map(|d| d.alert.priority)
        .max()
        .unwrap_or(AlertPriority::Low);
    let mut body = String::new();
    for d in items {
        let first = d.alert.body.lines().next().unwrap_or("");
        body.push_str(&format!(
            "• {}  {}: {}\n",
            atalaya_model::format_utc(d.alert.created_at),
            d.alert.title,
            first
        ));
    }
    body.push_str("Not financial advice.");
    Alert {
        id: items
            .first()
            .map_or(0, |d| u64::try_from(d.alert_id).unwrap_or(0)),
        opportunity_id: None,
        instrument: None,
        priority,
        title: format!("Atalaya digest: {} alerts", items.len()),
        body,
        created_at: items.iter().map(|d| d.alert.created_at).max().unwrap_or(0),
        deliveries: Vec::new(),
        timeframe: None,
        short: None,
    }
}

enum Next {
    Item(Option<Box<DueDelivery>>),
    Flush,
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    store: Arc<dyn Store>,
    channel: Channel,
    n: Arc<dyn Notifier>,
    quiet: Option<QuietHours>,
    (budget, digest): (Option<u32>, Option<Digest>),
    mut rx: mpsc::Receiver<DueDelivery>,
    done: mpsc::Sender<(DueDelivery, Outcome)>,
    finish: CancellationToken,
    cancel: CancellationToken,
) {
    let clock = LiveClock;
    let mut bucket = match budget {
        Some(per_hour) => Some(TokenBucket::new(per_hour, 3_600_000_000_000, clock.now())),
        None => TokenBucket::hourly_default(channel, clock.now()),
    };
    let mut last_sent = i64::MIN / 2;
    let mut batch: Vec<DueDelivery> = Vec::new();
    let mut deadline = tokio::time::Instant::now();
    loop {
        // The next job: one alert, or a digest of several.
        let full = digest.is_some_and(|g| batch.len() >= g.max_items);
        let job: Vec<DueDelivery> = if !batch.is_empty() && (finish.is_cancelled() || full) {
            std::mem::take(&mut batch)
        } else {
            let next = if batch.is_empty() {
                Next::Item(rx.recv().await.map(Box::new))
            } else {
                tokio::select! {
                    x = rx.recv() => Next::Item(x.map(Box::new)),
                    () = tokio::time::sleep_until(deadline) => Next::Flush,
                    () = finish.cancelled() => Next::Flush,
                    () = cancel.cancelled() => return,
                }
            };
            match next {
                Next::Flush => std::mem::take(&mut batch),
                Next::Item(None) if batch.is_empty() => return,
                Next::Item(None) => std::mem::take(&mut batch),
                Next::Item(Some(d)) => match digest {
                    Some(g) if d.alert.priority < AlertPriority::Critical => {
                        if batch.is_empty() {
                            deadline = tokio::time::Instant::now() + g.window;
                        }
                        batch.push(*d);
                        continue;
                    }
                    _ => vec![*d],
                },
            }
        };
        let alert = match job.as_slice() {
            [one] => one.alert.clone(),
            many => digest_alert(many),
        };
        // Waits end early when the run finishes (the rows stay pending) or is cancelled.
        let wait = |ns: i64| {
            let (finish, cancel) = (finish.clone(), cancel.clone());
            async move {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_nanos(ns.max(1) as u64)) => true,
                    () = finish.cancelled() => false,
                    () = cancel.cancelled() => false,
                }
            }
        };
        let mut deferred = false;
        if let Some(end) = quiet
            .filter(|_| alert.priority < AlertPriority::Critical)
            .and_then(|q| q.ends_at(clock.now()))
        {
            tracing::info!(channel = n.name(), "quiet hours; alert held until they end");
            deferred = !wait(end - clock.now()).await;
        }
        if let Some(b) = bucket.as_mut().filter(|_| !deferred) {
            while let Err(wait_ns) = b.try_take(clock.now()) {
                tracing::info!(
                    channel = n.name(),
                    wait_s = wait_ns / 1_000_000_000,
                    "alert budget used up; waiting"
                );
                if !wait(wait_ns).await {
                    deferred = true;
                    break;
                }
            }
        }
        if deferred {
            for d in job {
                if done.send((d, Outcome::Deferred)).await.is_err() {
                    return;
                }
            }
            continue;
        }
        // Telegram asks for at most one message per second in a chat.
        if channel == Channel::Telegram {
            let since = clock.now() - last_sent;
            if since < 1_000_000_000 {
                tokio::time::sleep(Duration::from_nanos((1_000_000_000 - since) as u64)).await;
            }
        }
        if cancel.is_cancelled() {
            return;
        }
        let chart = if job.len() == 1 && matches!(channel, Channel::Telegram | Channel::Email) {
            chart_for(store.as_ref(), &alert).await
        } else {
            None
        };
        let result = n.send_with_chart(&alert, chart.as_deref()).await;
        last_sent = clock.now();
        // Recorded before the next send: a crash leaves at most this one message sent but
        // not recorded, to be sent again at the next start.
        let first = next_state(&job[0], result, clock.now());
        for d in job {
            let u = DeliveryUpdate {
                alert_id: d.alert_id,
                channel: d.channel.clone(),
                attempts: d.attempts + 1,
                ..first.clone()
            };
            if let Err(e) = store.update_delivery(&u).await {
                tracing::error!(error = %e, "recording a delivery; it stays pending and may be sent again");
            }
            if done.send((d, Outcome::Sent)).await.is_err() {
                return;
            }
        }
    }
}

/// The chart of an alert about one series: its last 80 stored bars up to the alert, as PNG.
async fn chart_for(store: &dyn Store, alert: &Alert) -> Option<Vec<u8>> {
    let (Some(instrument), Some(tf)) = (alert.instrument, alert.timeframe) else {
        return None;
    };
    let q = atalaya_store::CandleQuery {
        instrument,
        timeframe: tf,
        from: Some(alert.created_at - 80 * tf.nanos()),
        to: Some(alert.created_at),
        limit: 80,
    };
    let bars: Vec<ChartBar> = store
        .candles(&q)
        .await
        .ok()?
        .iter()
        .map(|c| ChartBar {
            open: c.open(),
            high: c.high(),
            low: c.low(),
            close: c.close(),
        })
        .collect();
    let price = bars.last().map(|b| b.close);
    render_png(
        &bars,
        Levels {
            price,
            ..Levels::default()
        },
    )
}

/// The next state of a delivery after an attempt.
fn next_state(
    d: &DueDelivery,
    result: Result<(), atalaya_alerts::AlertError>,
    now: i64,
) -> DeliveryUpdate {
    let attempts = d.attempts + 1;
    let base = DeliveryUpdate {
        alert_id: d.alert_id,
        channel: d.channel.clone(),
        state: DeliveryState::Delivered,
        attempts,
        next_attempt_at: 0,
        last_error: None,
        reason: None,
        updated_at: now,
    };
    match result {
        Ok(()) => base,
        Err(e) if e.is_transient() && attempts < MAX_ATTEMPTS => {
            let wait_ns = match &e {
                atalaya_alerts::AlertError::RateLimited { retry_after_ms, .. } => {
                    i64::try_from(*retry_after_ms).unwrap_or(i64::MAX / 2) * 1_000_000
                }
                // Exponential backoff with jitter: 0.5 s, 1 s, 2 s, … ± 25%.
                _ => {
                    let b = 500_000_000i64 << attempts.min(10);
                    let jitter = (d.alert_id.wrapping_mul(2_654_435_761) ^ now) % (b / 4).max(1);
                    b + jitter.abs() - b / 8
                }
            };
            tracing::warn!(channel = %d.channel, error = %e, attempts, "alert delivery failed; will retry");
            DeliveryUpdate {
                state: DeliveryState::Pending,
                next_attempt_at: now.saturating_add(wait_ns),
                last_error: Some(format!("{e:#}")),
                ..base
            }
        }
        Err(e) => {
            tracing::error!(channel = %d.channel, error = %e, title = %d.alert.title, "alert dead-lettered");
            DeliveryUpdate {
                state: DeliveryState::DeadLettered,
                last_error: Some(format!("{e:#}")),
                reason: Some(if e.is_transient() {
                    format!("gave up after {attempts} attempts")
                } else {
                    "refused by the channel".to_owned()
                }),
                ..base
            }
        }
    }
}

/// The dispatcher of the alert outbox: polls the store for pending deliveries whose time has
/// come, hands each to its channel's worker (which keeps the channel's budget, quiet hours and
/// pace), and records every outcome (delivered, retry later with backoff, dead-lettered).
/// Nothing is held only in memory: a delivery interrupted by a crash is still pending in the
/// store and is sent at the next start (so a message in flight at a crash may arrive twice).
///
/// `finish`: the alerts have all been written; send what is due without waiting for budgets or
/// quiet hours, then return. `cancel`: return now.
pub async fn dispatch(
    store: Arc<dyn Store>,
    notifiers: Vec<ChannelSetup>,
    budgets: std::collections::BTreeMap<Channel, u32>,
    digest: Option<(Digest, Vec<Channel>)>,
    (finish, cancel): (CancellationToken, CancellationToken),
) {
    let (done_tx, mut done_rx) = mpsc::channel::<(DueDelivery, Outcome)>(256);
    let mut queues: Vec<(Channel, mpsc::Sender<DueDelivery>)> = Vec::new();
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    for (channel, n, quiet) in notifiers {
        let (tx, rx) = mpsc::channel(64);
        queues.push((channel, tx));
        workers.push(tokio::spawn(worker(
            store.clone(),
            channel,
            n,
            quiet,
            (
                budgets.get(&channel).copied(),
                digest
                    .as_ref()
                    .filter(|(_, on)| on.contains(&channel))
                    .map(|(g, _)| *g),
            ),
            rx,
            done_tx.clone(),
            finish.clone(),
            cancel.clone(),
        )));
    }
    drop(done_tx);
    let clock = LiveClock;
    let names: Vec<&str> = queues.iter().map(|(c, _)| c.as_str()).collect();
    match store.dead_letter_unrouted(&names, clock.now()).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            n,
            "dead-lettered deliveries for channels no longer configured"
        ),
        Err(e) => tracing::error!(error = %e, "reading the alert outbox"),
    }
    let mut in_flight: HashSet<(i64, String)> = HashSet::new();
    // While finishing: what a worker deferred or tried once, and channels out of budget.
    let mut deferred: HashSet<(i64, String)> = HashSet::new();
    let mut exhausted: HashSet<Channel> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            Some((d, outcome)) = done_rx.recv() => {
                let key = (d.alert_id, d.channel.clone());
                in_flight.remove(&key);
                if matches!(outcome, Outcome::Deferred) {
                    if let Some(c) = Channel::parse(&d.channel) {
                        exhausted.insert(c);
                    }
                    deferred.insert(key);
                }
                continue;
            }
            _ = tick.tick() => {}
        }
        let mut handed = 0;
        for (channel, tx) in &queues {
            if exhausted.contains(channel) && finish.is_cancelled() {
                continue;
            }
            // Each channel is read on its own, as much as its queue has room for, so that a
            // channel out of budget never holds the others back.
            let busy = in_flight
                .iter()
                .filter(|(_, c)| c == channel.as_str())
                .count();
            let room = tx.capacity().min(64usize.saturating_sub(busy));
            if room == 0 {
                continue;
            }
            let skip = busy
                + deferred
                    .iter()
                    .filter(|(_, c)| c == channel.as_str())
                    .count();
            let limit = u32::try_from(room + skip).unwrap_or(u32::MAX);
            let due = match store
                .due_deliveries(clock.now(), channel.as_str(), limit)
                .await
            {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "reading the alert outbox");
                    continue;
                }
            };
            for d in due {
                let key = (d.alert_id, d.channel.clone());
                if in_flight.contains(&key) || deferred.contains(&key) {
                    continue;
                }
                if tx.try_send(d).is_err() {
                    break;
                }
                in_flight.insert(key);
                handed += 1;
            }
        }
        if finish.is_cancelled() && in_flight.is_empty() && handed == 0 {
            // Finishing: wait for retries due within the grace period (a provider's short
            // `retry_after`, the first backoffs); later ones wait for the next start.
            let horizon = clock.now() + FINISH_GRACE_NS;
            let mut soon = false;
            for (channel, _) in &queues {
                if exhausted.contains(channel) {
                    continue;
                }
                if store
                    .due_deliveries(horizon, channel.as_str(), 1)
                    .await
                    .is_ok_and(|d| {
                        d.iter()
                            .any(|x| !deferred.contains(&(x.alert_id, x.channel.clone())))
                    })
                {
                    soon = true;
                }
            }
            if !soon {
                break;
            }
        }
    }
    drop(queues);
    for w in workers {
        if let Err(e) = w.await {
            tracing::error!(error = %e, "alert worker panicked");
        }
    }
    if let Ok(counts) = store.delivery_counts().await {
        let pending: u64 = counts
            .iter()
            .filter(|(_, s, _)| s == "pending")
            .map(|(_, _, n)| n)
            .sum();
        if pending > 0 {
            tracing::warn!(
                pending,
                "alert deliveries still pending; they are sent at the next start"
            );
        }
    }
}
