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
