//! `atalaya run`: wires sources, bus, engine task, store writer, notifier and API together,
//! and shuts them down in order so that nothing is lost.
//!
//! Shutdown order: sources stop (cancelled, or their input ended) → the inbound topic
//! closes → the engine drains what is queued, emits, and closes the outbound topic → the
//! store writer and the notifier drain and finish → the API stops → the store closes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use atalaya_alerts::alert_for;
use atalaya_alerts::routing::Deduplicator;
use atalaya_bus::health::{EngineStatus, Health};
use atalaya_bus::health::{PortfolioStatus, PositionStatus};
use atalaya_bus::{Bus, Delivery, InProcessBus, Subscription, Topic};
use atalaya_engine::{PaperTrader, Pipeline, PipelineStats};
use atalaya_model::{AlertPriority, InstrumentId};
use atalaya_model::{Clock, Envelope, Event, LiveClock, Symbol, UnixNanos};
use atalaya_server::AppState;
use atalaya_sources::{MarketSim, SimulatorSource, Source, SourceContext, Speed};
use atalaya_store::Store;
use atalaya_store::writer::{self, WriterConfig, WriterCounters};
use atalaya_store::{Batch, PaperAuditRow, PaperTradeRow};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{AppConfig, LiveSource};

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Use the simulator regardless of `live.sources`.
    pub demo: bool,
    /// Simulator pacing.
    pub speed: Speed,
    /// Stop after this long on the run's clock.
    pub for_: Option<Duration>,
    /// Show a progress bar on standard error (when it is a terminal).
    pub progress: bool,
}

/// What a run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunSummary {
    /// The pipeline's counters.
    pub pipeline: PipelineStats,
    /// The paper portfolio at the end.
    pub paper: PaperSummary,
    /// Alerts raised.
    pub alerts: u64,
    /// Alerts suppressed as repeats.
    pub alerts_suppressed: u64,
    /// Candle rows written.
    pub stored_candles: u64,
    /// Opportunity rows written.
    pub stored_opportunities: u64,
    /// Event time reached.
    pub last_event_ts: Option<UnixNanos>,
    /// Wall time.
    pub wall_s: f64,
    /// Where the API listened, if it did.
    pub listen: Option<std::net::SocketAddr>,
}

struct EngineReport {
    stats: PipelineStats,
    paper: PaperSummary,
    alerts: u64,
    suppressed: u64,
    last_event_ts: Option<UnixNanos>,
}

/// Which configured channels each alert goes to.
struct Routing {
    routes: atalaya_alerts::routing::Routes,
    configured: Vec<atalaya_alerts::routing::Channel>,
}

impl Routing {
    /// Fills the alert's deliveries: one per routed channel, pending, or suppressed with
    /// `suppressed`'s reason.
    fn route(&self, alert: &mut atalaya_model::Alert, suppressed: Option<String>) {
        alert.deliveries = self
            .routes
            .route(alert.priority, &self.configured)
            .into_iter()
            .map(|c| atalaya_model::AlertDelivery {
                channel: c.as_str().to_owned(),
                state: if suppressed.is_some() {
                    atalaya_model::DeliveryState::Suppressed
                } else {
                    atalaya_model::DeliveryState::Pending
                },
                reason: suppressed.clone(),
            })
            .collect();
    }
}

/// The live paper trader, its journal in the store, and where a restart's replay ended.
struct Paper {
    trader: PaperTrader,
    store: Arc<dyn Store>,
    written_trades: usize,
    written_audit: usize,
    /// Audit entries already checked for breaker changes.
    alerted_audit: usize,
    restored_until: UnixNanos,
}

/// The paper portfolio at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct PaperSummary {
    /// Cash.
    pub cash: String,
    /// Equity at the last bar.
    pub equity: f64,
    /// Closed trades.
    pub trades: usize,
    /// Open positions.
    pub open_positions: usize,
    /// Bars replayed from the store at start-up to restore the state.
    pub restored_bars: u64,
}

impl Paper {
    /// Writes the trades and audit entries not yet written (idempotent: a replay writes the
    /// same rows, which the store ignores).
    async fn persist(&mut self) {
        let trades = self.trader.trades();
        let audit = self.trader.audit();
        if trades.len() == self.written_trades && audit.len() == self.written_audit {
            return;
        }
        let mut batch = Batch::default();
        for t in &trades[self.written_trades..] {
            batch.paper_trades.push(PaperTradeRow {
                instrument: t.instrument.to_string(),
                entry_time: t.entry_time,
                exit_time: t.exit_time,
                pnl: t.pnl.to_string(),
                body: serde_json::to_string(t).unwrap_or_default(),
            });
        }
        for a in &audit[self.written_audit..] {
            batch.paper_audit.push(PaperAuditRow {
                ts: a.ts,
                instrument: a.instrument.map(|i| i.to_string()).unwrap_or_default(),
                action: a.action.clone(),
                reason: a.reason.to_string(),
            });
        }
        match self.store.write(&batch).await {
            Ok(()) => {
                self.written_trades = trades.len();
                self.written_audit = audit.len();
            }
            Err(e) => tracing::error!(error = %e, "writing the paper journal; will retry"),
        }
    }

    /// System alerts for drawdown-breaker changes since the last call: critical when it
    /// trips, low when entries resume.
    fn breaker_alerts(&mut self) -> Vec<(AlertPriority, String, String, UnixNanos)> {
        let audit = self.trader.audit();
        let new = &audit[self.alerted_audit.min(audit.len())..];
        self.alerted_audit = audit.len();
        new.iter()
            .filter(|a| a.action == "breaker")
            .filter_map(|a| {
                let (priority, title) = if a.reason.breaker()? {
                    (
                        AlertPriority::Critical,
                        "Paper portfolio: drawdown breaker tripped",
                    )
                } else {
                    (AlertPriority::Low, "Paper portfolio: entries resume")
                };
                Some((priority, title.to_owned(), a.reason.to_string(), a.ts))
            })
            .collect()
    }

    fn status(&self) -> PortfolioStatus {
        let last = self.trader.equity().last();
        PortfolioStatus {
            cash: self.trader.cash().round_dp(8).to_string(),
            equity: last.map_or_else(
                || rust_decimal::prelude::ToPrimitive::to_f64(&self.trader.cash()).unwrap_or(0.0),
                |p| p.equity,
            ),
            exposure: last.map_or(0.0, |p| p.exposure),
            closed_trades: self.trader.trades().len() as u64,
            refused: self.trader.refused(),
            positions: self
                .trader
                .positions()
                .into_iter()
                .map(|(id, q, px)| PositionStatus {
                    instrument: id.to_string(),
                    quantity: q.to_string(),
                    entry_price: px.to_string(),
                })
                .collect(),
            as_of: last.map(|p| p.ts),
        }
    }

    fn summary(&self) -> PaperSummary {
        let status = self.status();
        PaperSummary {
            cash: self.trader.cash().round_dp(2).to_string(),
            equity: status.equity,
            trades: self.trader.trades().len(),
            open_positions: status.positions.len(),
            restored_bars: 0,
        }
    }
}

/// Rebuilds the pipeline's and the paper trader's state after a restart by replaying the
/// stored bars of the shortest timeframe through both (nothing is published: those bars and
/// their consequences were handled before). Returns the number of bars replayed and the
/// close time of the last one.
async fn restore(
    store: &Arc<dyn Store>,
    pipeline: &mut Pipeline,
    trader: &mut PaperTrader,
    instruments: &[InstrumentId],
    (dedup, routing): (&mut Deduplicator, &Routing),
) -> anyhow::Result<(u64, UnixNanos)> {
    let Some(&tf) = pipeline.timeframes().first() else {
        return Ok((0, UnixNanos::MIN));
    };
    let mut bars: Vec<(UnixNanos, usize, atalaya_model::Candle)> = Vec::new();
    for (k, id) in instruments.iter().enumerate() {
        let q = atalaya_store::CandleQuery {
            instrument: *id,
            timeframe: tf,
            from: None,
            to: None,
            limit: u32::MAX,
        };
        for c in store
            .candles(&q)
            .await
            .context("reading stored bars to restore")?
        {
            bars.push((c.open_time(), k, c));
        }
    }
    bars.sort_by_key(|(t, k, _)| (*t, *k));
    // A crash can store some instruments' bars of the last minute and not the others: replay
    // only up to the last close every stored instrument reached, so the restart regenerates
    // that minute whole and in the same order as an uninterrupted run.
    let mut last_close: std::collections::HashMap<usize, UnixNanos> =
        std::collections::HashMap::new();
    for (_, k, c) in &bars {
        last_close.insert(*k, c.close_time());
    }
    if let Some(complete) = last_close.values().min().copied() {
        bars.retain(|(_, _, c)| c.close_time() <= complete);
    }
    let src = Symbol::new("restore")?;
    let mut until = UnixNanos::MIN;
    // A crash can cut a bar off from its opportunity and alert (they may fall in two writer
    // batches), but only after the last opportunity that was stored: the opportunities and
    // alerts of the replayed bars after it are written again (the store ignores copies), so
    // any that was lost is recovered with its deliveries pending.
    let stored_until = store
        .opportunities(&atalaya_store::OpportunityQuery {
            page: 1,
            per_page: 1,
            ..Default::default()
        })
        .await
        .context("reading the last stored opportunity")?
        .items
        .first()
        .map_or(UnixNanos::MIN, |o| o.opportunity.generated_at());
    // The headlines and posts the run had seen go back in too, each before the first bar that
    // closed after it became known (as they arrived live), so the sentiment index — and every
    // decision that read it — is rebuilt as it was, and is current when the run goes on.
    let texts = store
        .text_items(UnixNanos::MIN)
        .await
        .context("reading stored headlines and posts to restore the sentiment index")?;
    let n_texts = texts.len();
    let mut texts = texts.into_iter().peekable();
    let text_env = |item: atalaya_store::TextItem, at: UnixNanos| {
        let payload = match item {
            atalaya_store::TextItem::News(n) => Event::News(Box::new(n)),
            atalaya_store::TextItem::Social(p) => Event::Social(Box::new(p)),
        };
        Envelope::new(0, at, at, src, payload)
    };
    let mut batch = Batch::default();
    for (_, _, c) in &bars {
        while let Some((item, at)) = texts.next_if(|(_, at)| *at <= c.close_time()) {
            pipeline.process(&text_env(item, at));
        }
        let env = Envelope::new(0, c.close_time(), c.close_time(), src, Event::Candle(*c));
        for out in pipeline.process(&env) {
            trader.on_event(out);
            if let Event::Opportunity(o) = &out.payload {
                let mut alert = alert_for(0, o);
                let why = dedup.check(o).err().map(|w| w.to_string());
                routing.route(&mut alert, why);
                if o.generated_at() >= stored_until {
                    batch.opportunities.push(((**o).clone(), out.ts_received));
                    batch.alerts.push(alert);
                }
            }
        }
        until = until.max(c.close_time());
        if batch.len() >= 5_000 {
            store.write(&batch).await.context("restoring alerts")?;
            batch.clear();
        }
    }
    store.write(&batch).await.context("restoring alerts")?;
    for (item, at) in texts {
        pipeline.process(&text_env(item, at));
    }
    if n_texts > 0 {
        tracing::info!(
            items = n_texts,
            "sentiment index rebuilt from the stored headlines and posts"
        );
    }
    pipeline.forget_bar_sources();
    Ok((bars.len() as u64, until))
}

/// The last stored candle of each of `venue`'s series (within 90 days), for a live source to
/// backfill the time the agent was down.
async fn resume_points(
    store: &Arc<dyn Store>,
    series: &[(InstrumentId, atalaya_model::Timeframe)],
    venue: &str,
) -> anyhow::Result<Vec<(InstrumentId, atalaya_model::Timeframe, UnixNanos)>> {
    let since = LiveClock.now() - 90 * 86_400 * 1_000_000_000;
    let mut out = Vec::new();
    for (i, tf) in series.iter().filter(|(i, _)| i.venue().as_str() == venue) {
        let q = atalaya_store::CandleQuery {
            instrument: *i,
            timeframe: *tf,
            from: Some(since),
            to: None,
            limit: u32::MAX,
        };
        let last = store
            .candles(&q)
            .await
            .context("reading the last stored candles")?
            .last()
            .map(atalaya_model::Candle::open_time);
        if let Some(t) = last {
            out.push((*i, *tf, t));
        }
    }
    Ok(out)
}

/// The engine task: the only owner of the pipeline.
async fn engine_task(
    mut pipeline: Pipeline,
    mut inbound: Box<dyn Subscription>,
    bus: Arc<dyn Bus>,
    health: Arc<Health>,
    (progress, progress_origin): (ProgressBar, u64),
    (mut dedup, routing): (Deduplicator, Routing),
    mut paper: Paper,
) -> anyhow::Result<EngineReport> {
    let mut suppressed = 0u64;
    let mut buf: Vec<Envelope<Event>> = Vec::with_capacity(1024);
    let mut alerts = 0u64;
    let mut last_ts: Option<UnixNanos> = None;
    let engine_src = Symbol::new("engine")?;
    let mut tick = Instant::now();
    let mut events_at_tick = 0u64;
    let mut rate = 0.0;
    let status = |p: &Pipeline, last_ts: Option<UnixNanos>, rate: f64| {
        let s = p.stats();
        health.set_engine(EngineStatus {
            events: s.events,
            events_per_sec: rate,
            candles: s.candles_out,
            opportunities: s.opportunities,
            late: s.late,
            last_event_ts: last_ts,
        });
    };
    while let Some(first) = inbound.recv().await {
        buf.push(first);
        inbound.try_recv_many(&mut buf, 1023);
        for env in buf.drain(..) {
            // Market data up to where a restart's replay of stored bars got is already in.
            if env.ts_event < paper.restored_until
                && matches!(
                    env.payload,
                    Event::Trade(_) | Event::Candle(_) | Event::Heartbeat
                )
            {
                continue;
            }
            last_ts = Some(last_ts.map_or(env.ts_event, |t: i64| t.max(env.ts_event)));
            for out in pipeline.process(&env) {
                paper.trader.on_event(out);
                if let Event::Opportunity(o) = &out.payload {
                    bus.publish(Topic::Outbound, out.clone()).await?;
                    alerts += 1;
                    let mut alert = alert_for(alerts, o);
                    match dedup.check(o) {
                        Ok(()) => routing.route(&mut alert, None),
                        Err(why) => {
                            suppressed += 1;
                            routing.route(&mut alert, Some(why.to_string()));
                        }
                    }
                    let env = Envelope::new(
                        alerts,
                        out.ts_event,
                        out.ts_received,
                        engine_src,
                        Event::Alert(Box::new(alert)),
                    );
                    bus.publish(Topic::Outbound, env).await?;
                } else {
                    bus.publish(Topic::Outbound, out.clone()).await?;
                }
            }
            for (priority, title, reason, ts) in paper.breaker_alerts() {
                alerts += 1;
                let mut alert = atalaya_model::Alert {
                    id: alerts,
                    opportunity_id: None,
                    instrument: None,
                    priority,
                    title,
                    body: format!("{reason}\nSystem alert from Atalaya's paper trader."),
                    created_at: ts,
                    deliveries: Vec::new(),
                    timeframe: None,
                    short: None,
                };
                routing.route(&mut alert, None);
                tracing::warn!(title = %alert.title, "system alert");
                let env = Envelope::new(alerts, ts, ts, engine_src, Event::Alert(Box::new(alert)));
                bus.publish(Topic::Outbound, env).await?;
            }
            if let Event::Alert(a) = &env.payload {
                // A system alert from the watcher: route it like the others.
                let mut a = (**a).clone();
                if a.deliveries.is_empty() {
                    routing.route(&mut a, None);
                }
                let env = Envelope::new(
                    env.seq,
                    env.ts_event,
                    env.ts_received,
                    env.source,
                    Event::Alert(Box::new(a)),
                );
                bus.publish(Topic::Outbound, env).await?;
            } else if matches!(
                env.payload,
                Event::News(_) | Event::Social(_) | Event::Onchain(_)
            ) {
                bus.publish(Topic::Outbound, env).await?;
            }
        }
        paper.persist().await;
        if tick.elapsed() >= Duration::from_secs(1) {
            let events = pipeline.stats().events;
            rate = (events - events_at_tick) as f64 / tick.elapsed().as_secs_f64();
            events_at_tick = events;
            tick = Instant::now();
            status(&pipeline, last_ts, rate);
            health.set_portfolio(paper.status());
            if let Some(ts) = last_ts {
                let minute = u64::try_from(ts / 60_000_000_000).unwrap_or(0);
                progress.set_position(minute.saturating_sub(progress_origin));
                progress.set_message(format!(
                    "{}  {} bars, {} opportunities",
                    atalaya_model::format_utc(ts),
                    pipeline.stats().candles_out,
                    pipeline.stats().opportunities
                ));
            }
        }
    }
    status(&pipeline, last_ts, rate);
    health.set_portfolio(paper.status());
    paper.persist().await;
    bus.close(Topic::Outbound);
    Ok(EngineReport {
        paper: paper.summary(),
        stats: pipeline.stats(),
        // Alerts routed to their channels; the suppressed repeats are stored but not sent.
        alerts: alerts - suppressed,
        suppressed,
        last_event_ts: last_ts,
    })
}

/// Runs until the sources finish or `shutdown` fires, then shuts down in order.
pub async fn run(
    cfg: AppConfig,
    opts: RunOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<RunSummary> {
    let wall = Instant::now();
    let store = atalaya_store::open(&cfg.store)
        .await
        .context("opening the store")?;
    store.migrate().await.context("migrating the store")?;
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(cfg.bus.capacity));
    let health = Health::new();
    let mut pipeline = Pipeline::new(cfg.engine.clone())?;
    let uses_sim = opts.demo || cfg.live.sources.contains(&LiveSource::Sim);
    let mut instruments = if uses_sim {
        MarketSim::new(cfg.sim.clone())?.instruments()
    } else {
        Vec::new()
    };
    let uses_binance = !opts.demo && cfg.live.sources.contains(&LiveSource::Binance);
    let uses_coinbase = !opts.demo && cfg.live.sources.contains(&LiveSource::Coinbase);
    let uses_kraken = !opts.demo && cfg.live.sources.contains(&LiveSource::Kraken);
    // The venues' instruments are restored from the store like the simulator's (the venue
    // confirms them at connect).
    let mut venue_series: Vec<(InstrumentId, atalaya_model::Timeframe)> = Vec::new();
    if uses_binance {
        let b = &cfg.venues.binance;
        for i in b
            .symbols
            .iter()
            .filter_map(|s| atalaya_sources::binance_ws::guess_instrument(s))
        {
            instruments.push(i);
            venue_series.extend(b.timeframes.iter().map(|tf| (i, *tf)));
        }
    }
    if uses_coinbase {
        for p in &cfg.venues.coinbase.products {
            if let Some((base, quote)) = p.split_once('-')
                && let Ok(i) = InstrumentId::new("coinbase", base, quote)
            {
                instruments.push(i);
                venue_series.push((i, atalaya_sources::coinbase_ws::BUCKET));
            }
        }
    }
    if uses_kraken {
        let k = &cfg.venues.kraken;
        for s in &k.symbols {
            if let Some((base, quote)) = s.split_once('/')
                && let Ok(i) = InstrumentId::new("kraken", base, quote)
            {
                instruments.push(i);
                venue_series.extend(k.timeframes.iter().map(|tf| (i, *tf)));
            }
        }
    }
    pipeline.register(&instruments);
    let trading_tf = cfg.portfolio.timeframe.unwrap_or_else(|| {
        cfg.engine
            .decision_timeframes()
            .iter()
            .min()
            .copied()
            .unwrap_or(atalaya_model::Timeframe::M1)
    });
    let mut trader = PaperTrader::new(
        cfg.portfolio.clone(),
        cfg.risk.clone(),
        trading_tf,
        !cfg.engine.rules.is_empty(),
    );
    let delivery_cancel = CancellationToken::new();
    let delivery_finish = CancellationToken::new();
    let notifiers = crate::deliver::channels(&cfg.alerts)?;
    let routing = Routing {
        routes: cfg.alerts.routes.clone(),
        configured: notifiers.iter().map(|(c, _, _)| *c).collect(),
    };
    let mut dedup = Deduplicator::new(i64::from(cfg.alerts.dedup_minutes) * 60_000_000_000);
    let (restored_bars, restored_until) = restore(
        &store,
        &mut pipeline,
        &mut trader,
        &instruments,
        (&mut dedup, &routing),
    )
    .await?;
    if restored_bars > 0 {
        tracing::info!(
            bars = restored_bars,
            until = %atalaya_model::format_utc(restored_until),
            trades = trader.trades().len(),
            "restored the pipeline and the paper portfolio from the stored bars"
        );
    }
    let mut paper = Paper {
        trader,
        store: store.clone(),
        written_trades: 0,
        written_audit: 0,
        alerted_audit: 0,
        restored_until,
    };
    paper.persist().await;
    paper.alerted_audit = paper.trader.audit().len();
    health.set_portfolio(paper.status());

    let inbound = bus.subscribe(Topic::Inbound, "engine", Delivery::Reliable)?;
    let counters = Arc::new(WriterCounters::default());
    let store_sub = bus.subscribe(Topic::Outbound, "store", Delivery::Reliable)?;
    let writer_task = tokio::spawn(writer::run(
        store.clone(),
        store_sub,
        WriterConfig::default(),
        counters.clone(),
    ));
    // The outbox dispatcher also resumes deliveries left pending by an earlier run.
    let notifier_handle = if notifiers.is_empty() {
        None
    } else {
        Some(tokio::spawn(crate::deliver::dispatch(
            store.clone(),
            notifiers,
            cfg.alerts.budget.per_channel(),
            cfg.alerts.digest.settings(),
            (delivery_finish.clone(), delivery_cancel.clone()),
        )))
    };

    let server_cancel = CancellationToken::new();
    let mut listen = None;
    let server_task = if cfg.server.enabled {
        let listener = atalaya_server::bind(cfg.server.listen).await?;
        let addr = listener.local_addr().context("reading the API address")?;
        listen = Some(addr);
        tracing::info!(%addr, "API listening");
        let state = AppState {
            store: store.clone(),
            health: health.clone(),
            bus: bus.clone(),
            started: Instant::now(),
            started_at: LiveClock.now(),
        };
        Some(tokio::spawn(atalaya_server::serve(
            listener,
            state,
            server_cancel.clone(),
        )))
    } else {
        None
    };

    // Sources.
    let source_cancel = shutdown.child_token();
    let mut sources: Vec<Box<dyn Source>> = Vec::new();
    let mut progress_len = None;
    if uses_sim {
        let sim = MarketSim::new(cfg.sim.clone())?;
        let until = opts
            .for_
            .map(|d| sim.now() + i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        if let Some(u) = until {
            progress_len = Some((
                (sim.now() / 60_000_000_000) as u64,
                (u / 60_000_000_000) as u64,
            ));
        }
        tracing::info!(
            instruments = ?sim.instruments().iter().map(ToString::to_string).collect::<Vec<_>>(),
            speed = ?opts.speed,
            "starting the market simulator"
        );
        let mut source = SimulatorSource::new(sim, opts.speed, until);
        if restored_bars > 0 {
            // Continue the same market where the stored bars end.
            source = source.resuming_at(restored_until);
        }
        sources.push(Box::new(source));
    }
    if uses_binance {
        let b = &cfg.venues.binance;
        tracing::info!(
            symbols = ?b.symbols,
            timeframes = ?b.timeframes.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            ws = %b.ws_url,
            "connecting to Binance Spot"
        );
        let (source, _control) = atalaya_sources::binance_ws::source(b.clone())?;
        // Continue each stored series: the gap since the last stored bar is backfilled.
        sources.push(Box::new(
            source.resuming(resume_points(&store, &venue_series, "binance").await?),
        ));
    }
    if uses_coinbase {
        let c = &cfg.venues.coinbase;
        tracing::info!(products = ?c.products, ws = %c.ws_url, "connecting to Coinbase Advanced Trade");
        let (source, _control) = atalaya_sources::coinbase_ws::source(c.clone())?;
        sources.push(Box::new(
            source.resuming(resume_points(&store, &venue_series, "coinbase").await?),
        ));
    }
    if uses_kraken {
        let k = &cfg.venues.kraken;
        tracing::info!(symbols = ?k.symbols, ws = %k.ws_url, "connecting to Kraken Spot");
        let (source, _control) = atalaya_sources::kraken_ws::source(k.clone())?;
        sources.push(Box::new(
            source.resuming(resume_points(&store, &venue_series, "kraken").await?),
        ));
    }
    if cfg.live.sources.contains(&LiveSource::News) {
        tracing::info!(
            feeds = cfg.news.feeds.len(),
            every_s = cfg.news.poll_secs,
            "polling news feeds"
        );
        sources.push(Box::new(atalaya_sources::news::NewsSource::new(
            cfg.news.clone(),
        )?));
    }
    if cfg.live.sources.contains(&LiveSource::Reddit) {
        tracing::info!(subreddits = ?cfg.reddit.subreddits, "polling Reddit");
        sources.push(Box::new(atalaya_sources::reddit::RedditSource::new(
            cfg.reddit.clone(),
        )?));
    }
    if cfg.live.sources.contains(&LiveSource::Newsapi) {
        tracing::info!(every_s = cfg.newsapi.poll_secs, "polling NewsAPI");
        sources.push(Box::new(atalaya_sources::newsapi::NewsApiSource::new(
            cfg.newsapi.clone(),
        )?));
    }
    if cfg.live.sources.contains(&LiveSource::X) {
        tracing::info!(queries = cfg.x.queries.len(), "searching X");
        sources.push(Box::new(atalaya_sources::x::XSource::new(cfg.x.clone())?));
    }
    if cfg.live.sources.contains(&LiveSource::Onchain) {
        tracing::info!(
            bitcoin = %cfg.onchain.mempool_url,
            ethereum = !cfg.onchain.ethereum_rpc_url.is_empty(),
            every_s = cfg.onchain.poll_secs,
            "polling on-chain metrics"
        );
        sources.push(Box::new(atalaya_sources::onchain::OnchainSource::new(
            cfg.onchain.clone(),
        )?));
    }
    if cfg.live.sources.contains(&LiveSource::Coingecko) {
        tracing::info!(
            coins = cfg.coingecko.coins.len(),
            every_s = cfg.coingecko.poll_secs,
            "polling CoinGecko for market statistics"
        );
        sources.push(Box::new(atalaya_sources::coingecko::CoinGeckoSource::new(
            cfg.coingecko.clone(),
        )?));
    }
    let (progress, origin) = match (opts.progress, progress_len) {
        (true, Some((start, end))) => {
            let pb = ProgressBar::new(end.saturating_sub(start));
            pb.set_style(
                ProgressStyle::with_template("{bar:30} {percent:>3}% simulated  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            (pb, start)
        }
        _ => (ProgressBar::hidden(), 0),
    };
    let engine = tokio::spawn(engine_task(
        pipeline,
        inbound,
        bus.clone(),
        health.clone(),
        (progress.clone(), origin),
        (dedup, routing),
        paper,
    ));

    // The agent watching itself: system alerts for failed, reconnecting or silent sources.
    let watch_cancel = CancellationToken::new();
    let watch_task = {
        let (bus, health, cancel) = (bus.clone(), health.clone(), watch_cancel.clone());
        let engine_src = Symbol::new("system")?;
        tokio::spawn(async move {
            let mut w = crate::watch::Watcher::new();
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = cancel.cancelled() => break,
                }
                let now = LiveClock.now();
                for a in w.check(&health, now, 120 * 1_000_000_000) {
                    tracing::warn!(title = %a.title, "system alert");
                    let env = Envelope::new(a.id, now, now, engine_src, Event::Alert(Box::new(a)));
                    if bus.publish(Topic::Inbound, env).await.is_err() {
                        return;
                    }
                }
            }
        })
    };
    let mut source_tasks: Vec<JoinHandle<()>> = Vec::new();
    for s in sources {
        let name = s.name().to_owned();
        let ctx = SourceContext {
            bus: bus.clone(),
            health: health.register(&name),
            cancel: source_cancel.clone(),
        };
        // A run bounded by --for ends with the simulator: the pollers stop with it.
        let ends_run = name == "sim" && opts.for_.is_some();
        let stop = source_cancel.clone();
        source_tasks.push(tokio::spawn(async move {
            if let Err(e) = s.run(ctx).await {
                tracing::error!(source = %name, error = %format!("{e:#}"), "source stopped");
            }
            if ends_run {
                stop.cancel();
            }
        }));
    }
    if let (false, Some(d)) = (uses_sim, opts.for_) {
        // Without the simulator, --for is wall time.
        let stop = source_cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            stop.cancel();
        });
    }
    let all_sources = futures_join(source_tasks);
    tokio::pin!(all_sources);
    tokio::select! {
        () = &mut all_sources => tracing::info!("sources finished"),
        () = shutdown.cancelled() => {
            tracing::info!("shutting down: stopping sources");
            source_cancel.cancel();
            all_sources.await;
        }
    }
    watch_cancel.cancel();
    let _ = watch_task.await;
    bus.close(Topic::Inbound);
    let report = engine.await.context("engine task panicked")??;
    writer_task
        .await
        .context("store writer panicked")?
        .context("store writer failed")?;
    if let Some(n) = notifier_handle {
        if shutdown.is_cancelled() {
            // Interrupted: stop now; what is pending stays in the outbox for the next start.
            delivery_cancel.cancel();
        }
        // Every alert is in the store: send what is due, without sitting out budgets.
        delivery_finish.cancel();
        n.await.context("notifier panicked")?;
    }
    progress.finish_and_clear();
    server_cancel.cancel();
    if let Some(s) = server_task {
        s.await.context("API server panicked")??;
    }
    store.close().await;
    Ok(RunSummary {
        paper: PaperSummary {
            restored_bars,
            ..report.paper
        },
        pipeline: report.stats,
        alerts: report.alerts,
        alerts_suppressed: report.suppressed,
        stored_candles: counters.candles(),
        stored_opportunities: counters.opportunities(),
        last_event_ts: report.last_event_ts,
        wall_s: wall.elapsed().as_secs_f64(),
        listen,
    })
}

/// Waits for every task, logging panics.
async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        if let Err(e) = t.await {
            tracing::error!(error = %e, "source task panicked");
        }
    }
}

/// The store used by `run` for `cfg` (for commands that inspect it afterwards).
pub async fn open_store(cfg: &AppConfig) -> anyhow::Result<Arc<dyn Store>> {
    let store = atalaya_store::open(&cfg.store)
        .await
        .context("opening the store")?;
    store.migrate().await.context("migrating the store")?;
    Ok(store)
}
