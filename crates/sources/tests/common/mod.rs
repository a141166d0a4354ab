//! Running a source on an in-process bus, for the venue tests.
#![allow(dead_code)]

use std::sync::Arc;

use atalaya_bus::health::Health;
use atalaya_bus::{Bus, Delivery, InProcessBus, Topic};
use atalaya_sources::{Source, SourceContext, SourceError};
use tokio_util::sync::CancellationToken;

/// A running source and its bus.
pub struct Running {
    pub bus: Arc<InProcessBus>,
    pub health: Arc<Health>,
    pub cancel: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), SourceError>>,
    pub sub: Box<dyn atalaya_bus::Subscription>,
}

/// Runs `source` with a test subscriber on the inbound topic.
pub fn start(source: impl Source + 'static) -> Running {
    let bus = Arc::new(InProcessBus::new(100_000));
    let sub = bus
        .subscribe(Topic::Inbound, "test", Delivery::Reliable)
        .unwrap();
    let health = Health::new();
    let cancel = CancellationToken::new();
    let ctx = SourceContext {
        bus: bus.clone(),
        health: health.register(source.name()),
        cancel: cancel.clone(),
    };
    let task = tokio::spawn(Box::new(source).run(ctx));
    Running {
        bus,
        health,
        cancel,
        task,
        sub,
    }
}

/// The events `run` publishes until `done(events so far)` holds (for at most `secs` seconds),
/// then whatever else arrives within 300 ms.
pub async fn receive_until(
    run: &mut Running,
    secs: u64,
    done: impl Fn(&[atalaya_model::Event]) -> bool,
) -> Vec<atalaya_model::Event> {
    use std::time::{Duration, Instant};
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline && !done(&got) {
        if let Ok(Some(env)) =
            tokio::time::timeout(Duration::from_millis(200), run.sub.recv()).await
        {
            got.push(env.payload);
        }
    }
    while let Ok(Some(env)) = tokio::time::timeout(Duration::from_millis(300), run.sub.recv()).await
    {
        got.push(env.payload);
    }
    got
}

/// The social posts among `events`.
pub fn posts(events: Vec<atalaya_model::Event>) -> Vec<atalaya_model::SocialPost> {
    events
        .into_iter()
        .filter_map(|e| match e {
            atalaya_model::Event::Social(p) => Some(*p),
            _ => None,
        })
        .collect()
}
