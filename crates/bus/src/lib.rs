//! The event bus between Atalaya's sources, its engine task and its consumers.
//!
//! Two topics: [`Topic::Inbound`] carries market and text data from the sources to the one
//! engine task; [`Topic::Outbound`] carries the engine's outputs (closed bars, opportunities)
//! to every consumer — the store writer, the notifiers, the API's state replica. Every
//! channel is bounded. A [`Delivery::Reliable`] subscriber (the store) applies backpressure:
//! the publisher waits for room, so nothing is lost. A [`Delivery::Lossy`] subscriber (a
//! dashboard feed) never slows the engine: when its queue is full the message is dropped for
//! it alone and counted as lag, visible in [`BusStats`] and `/api/v1/status`.
//!
//! [`InProcessBus`] is the default, built on tokio's bounded mpsc channels. The [`Bus`]
//! trait is the seam for a Kafka backend (topics keyed by instrument, consumer groups).
//!
//! [`health`] holds the shared view of each source's state that the status endpoint reads.

pub mod health;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use atalaya_model::{Envelope, Event};
use serde::Serialize;
use tokio::sync::mpsc;

/// Which stream a message belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// Sources to the engine.
    Inbound,
    /// The engine to its consumers.
    Outbound,
}

/// What a subscriber wants when it cannot keep up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Every message; the publisher waits for room (backpressure).
    Reliable,
    /// Drop this subscriber's message when its queue is full, and count it as lag.
    Lossy,
}

/// Bus failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The bus was closed (shutdown in progress).
    #[error("the bus is closed")]
    Closed,
    /// The inbound topic has exactly one consumer, the engine, and it is taken.
    #[error("topic {0:?} already has its one consumer")]
    AlreadySubscribed(Topic),
}

/// One queue's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// Subscriber name (`engine` for the inbound queue).
    pub name: String,
    /// Reliable or lossy.
    pub delivery: Option<Delivery>,
    /// Messages delivered into the queue.
    pub delivered: u64,
    /// Messages waiting in the queue now.
    pub depth: usize,
    /// The queue's capacity.
    pub capacity: usize,
    /// Times a publisher found the queue full and had to wait (reliable queues).
    pub backpressure: u64,
    /// Messages dropped for this subscriber because its queue was full (lossy queues).
    pub lagged: u64,
}

/// A snapshot of the bus's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BusStats {
    /// The backend (`in_process`).
    pub backend: &'static str,
    /// Messages published to the inbound topic.
    pub inbound_published: u64,
    /// Messages published to the outbound topic.
    pub outbound_published: u64,
    /// The engine's inbound queue.
    pub inbound: QueueStats,
    /// One entry per outbound subscriber.
    pub outbound: Vec<QueueStats>,
}

impl BusStats {
    /// Total messages dropped for lossy subscribers.
    pub fn total_lagged(&self) -> u64 {
        self.outbound.iter().map(|q| q.lagged).sum()
    }
}

/// A stream of messages for one consumer.
#[async_trait]
pub trait Subscription: Send {
    /// The next message; `None` once the bus is closed and the queue drained.
    async fn recv(&mut self) -> Option<Envelope<Event>>;

    /// Moves up to `limit` already-queued messages into `buf` without waiting; returns how
    /// many were moved.
    fn try_recv_many(&mut self, buf: &mut Vec<Envelope<Event>>, limit: usize) -> usize;
}

/// The seam between publishers and consumers. Implementations: [`InProcessBus`]; Kafka later.
#[async_trait]
pub trait Bus: Send + Sync + std::fmt::Debug {
    /// Publishes one message; waits while a reliable queue is full.
    async fn publish(&self, topic: Topic, env: Envelope<Event>) -> Result<(), BusError>;

    /// Subscribes `consumer` to `topic`.
    fn subscribe(
        &self,
        topic: Topic,
        consumer: &str,
        delivery: Delivery,
    ) -> Result<Box<dyn Subscription>, BusError>;

    /// Stops accepting messages; subscribers drain what is queued and then see `None`.
    fn close(&self, topic: Topic);

    /// Counters.
    fn stats(&self) -> BusStats;
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    backpressure: AtomicU64,
    lagged: AtomicU64,
}

impl Counters {
    fn stats(&self, name: &str, delivery: Delivery, depth: usize, capacity: usize) -> QueueStats {
        QueueStats {
            name: name.to_owned(),
            delivery: Some(delivery),
            delivered: self.delivered.load(Ordering::Relaxed),
            depth,
            capacity,
            backpressure: self.backpressure.load(Ordering::Relaxed),
            lagged: self.lagged.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug)]
struct Queue {
    name: String,
    delivery: Delivery,
    tx: mpsc::Sender<Envelope<Event>>,
    capacity: usize,
    counters: Arc<Counters>,
}

impl Queue {
    fn new(
        name: &str,
        delivery: Delivery,
        tx: mpsc::Sender<Envelope<Event>>,
        capacity: usize,
    ) -> Self {
        Self {
            name: name.to_owned(),
            delivery,
            tx,
            capacity,
            counters: Arc::default(),
        }
    }

    fn stats(&self) -> QueueStats {
        let depth = self.capacity - self.tx.capacity();
        self.counters
            .stats(&self.name, self.delivery, depth, self.capacity)
    }

    /// Delivers `env`; `Err` when the receiver is gone.
    async fn deliver(&self, env: Envelope<Event>) -> Result<(), ()> {
        match self.tx.try_send(env) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(()),
            Err(mpsc::error::TrySendError::Full(env)) => match self.delivery {
                Delivery::Lossy => {
                    self.counters.lagged.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Delivery::Reliable => {
                    self.counters.backpressure.fetch_add(1, Ordering::Relaxed);
                    self.tx.send(env).await.map_err(|_| ())?;
                }
            },
        }
        self.counters.delivered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

struct ChannelSubscription {
    rx: mpsc::Receiver<Envelope<Event>>,
}

#[async_trait]
impl Subscription for ChannelSubscription {
    async fn recv(&mut self) -> Option<Envelope<Event>> {
        self.rx.recv().await
    }

    fn try_recv_many(&mut self, buf: &mut Vec<Envelope<Event>>, limit: usize) -> usize {
        let mut n = 0;
        while n < limit {
            match self.rx.try_recv() {
                Ok(env) => {
                    buf.push(env);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        n
    }
}

/// The default bus: bounded tokio channels inside one process.
#[derive(Debug)]
pub struct InProcessBus {
    capacity: usize,
    inbound: RwLock<Option<Arc<Queue>>>,
    inbound_rx: Mutex<Option<mpsc::Receiver<Envelope<Event>>>>,
    inbound_counters: Arc<Counters>,
    inbound_weak: mpsc::WeakSender<Envelope<Event>>,
    outbound: RwLock<Arc<Vec<Arc<Queue>>>>,
    outbound_closed: std::sync::atomic::AtomicBool,
    inbound_published: AtomicU64,
    outbound_published: AtomicU64,
}

impl InProcessBus {
    /// A bus whose queues each hold `capacity` messages (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let inbound_weak = tx.downgrade();
        let q = Arc::new(Queue::new("engine", Delivery::Reliable, tx, capacity));
        Self {
            capacity,
            inbound_counters: q.counters.clone(),
            inbound: RwLock::new(Some(q)),
            inbound_rx: Mutex::new(Some(rx)),
            inbound_weak,
            outbound: RwLock::new(Arc::new(Vec::new())),
            outbound_closed: std::sync::atomic::AtomicBool::new(false),
            inbound_published: AtomicU64::new(0),
            outbound_published: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, topic: Topic, env: Envelope<Event>) -> Result<(), BusError> {
        match topic {
            Topic::Inbound => {
                let q = self
                    .inbound
                    .read()
                    .map_err(|_| BusError::Closed)?
                    .clone()
                    .ok_or(BusError::Closed)?;
                q.deliver(env).await.map_err(|()| BusError::Closed)?;
                self.inbound_published.fetch_add(1, Ordering::Relaxed);
            }
            Topic::Outbound => {
                if self.outbound_closed.load(Ordering::Acquire) {
                    return Err(BusError::Closed);
                }
                let subs = self.outbound.read().map_err(|_| BusError::Closed)?.clone();
                self.outbound_published.fetch_add(1, Ordering::Relaxed);
                let mut gone = false;
                if let Some((last, rest)) = subs.split_last() {
                    for q in rest {
                        gone |= q.deliver(env.clone()).await.is_err();
                    }
                    gone |= last.deliver(env).await.is_err();
                }
                if gone {
                    // Forget subscribers whose receiver was dropped.
                    if let Ok(mut w) = self.outbound.write() {
                        let alive: Vec<_> =
                            w.iter().filter(|q| !q.tx.is_closed()).cloned().collect();
                        *w = Arc::new(alive);
                    }
                }
            }
        }
        Ok(())
    }

    fn subscribe(
        &self,
        topic: Topic,
        consumer: &str,
        delivery: Delivery,
    ) -> Result<Box<dyn Subscription>, BusError> {
        match topic {
            Topic::Inbound => {
                let rx = self
                    .inbound_rx
                    .lock()
                    .map_err(|_| BusError::Closed)?
                    .take()
                    .ok_or(BusError::AlreadySubscribed(Topic::Inbound))?;
                Ok(Box::new(ChannelSubscription { rx }))
            }
            Topic::Outbound => {
                if self.outbound_closed.load(Ordering::Acquire) {
                    return Err(BusError::Closed);
                }
                let (tx, rx) = mpsc::channel(self.capacity);
                let q = Arc::new(Queue::new(consumer, delivery, tx, self.capacity));
                let mut w = self.outbound.write().map_err(|_| BusError::Closed)?;
                let mut next: Vec<_> = w.iter().cloned().collect();
                next.push(q);
                *w = Arc::new(next);
                Ok(Box::new(ChannelSubscription { rx }))
            }
        }
    }

    fn close(&self, topic: Topic) {
        match topic {
            Topic::Inbound => {
                if let Ok(mut w) = self.inbound.write() {
                    w.take();
                }
            }
            Topic::Outbound => {
                self.outbound_closed.store(true, Ordering::Release);
                if let Ok(mut w) = self.outbound.write() {
                    *w = Arc::new(Vec::new());
                }
            }
        }
    }

    fn stats(&self) -> BusStats {
        let outbound = self
            .outbound
            .read()
            .map(|subs| subs.iter().map(|q| q.stats()).collect())
            .unwrap_or_default();
        BusStats {
            backend: "in_process",
            inbound_published: self.inbound_published.load(Ordering::Relaxed),
            outbound_published: self.outbound_published.load(Ordering::Relaxed),
            inbound: self.inbound_counters.stats(
                "engine",
                Delivery::Reliable,
                self.inbound_weak
                    .upgrade()
                    .map_or(0, |tx| self.capacity - tx.capacity()),
                self.capacity,
            ),
            outbound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atalaya_model::Symbol;

    fn hb(seq: u64) -> Envelope<Event> {
        Envelope::new(
            seq,
            seq as i64,
            seq as i64,
            Symbol::new("t").unwrap(),
            Event::Heartbeat,
        )
    }

    #[tokio::test]
    async fn inbound_has_one_consumer_and_drains_after_close() {
        let bus = InProcessBus::new(4);
        let mut sub = bus
            .subscribe(Topic::Inbound, "engine", Delivery::Reliable)
            .unwrap();
        assert_eq!(
            bus.subscribe(Topic::Inbound, "x", Delivery::Reliable).err(),
            Some(BusError::AlreadySubscribed(Topic::Inbound))
        );
        bus.publish(Topic::Inbound, hb(1)).await.unwrap();
        bus.publish(Topic::Inbound, hb(2)).await.unwrap();
        bus.close(Topic::Inbound);
        assert_eq!(
            bus.publish(Topic::Inbound, hb(3)).await,
            Err(BusError::Closed)
        );
        assert_eq!(sub.recv().await.unwrap().seq, 1);
        assert_eq!(sub.recv().await.unwrap().seq, 2);
        assert!(sub.recv().await.is_none());
    }

    #[tokio::test]
    async fn reliable_waits_and_lossy_counts_lag() {
        let bus = Arc::new(InProcessBus::new(2));
        let mut reliable = bus
            .subscribe(Topic::Outbound, "store", Delivery::Reliable)
            .unwrap();
        let mut lossy = bus
            .subscribe(Topic::Outbound, "ws", Delivery::Lossy)
            .unwrap();
        let b = bus.clone();
        let publisher = tokio::spawn(async move {
            for i in 0..10 {
                b.publish(Topic::Outbound, hb(i)).await.unwrap();
            }
        });
        // The reliable consumer gets all ten, in order, while the publisher waits on it.
        for i in 0..10 {
            assert_eq!(reliable.recv().await.unwrap().seq, i);
        }
        publisher.await.unwrap();
        let stats = bus.stats();
        let ws = stats.outbound.iter().find(|q| q.name == "ws").unwrap();
        let store = stats.outbound.iter().find(|q| q.name == "store").unwrap();
        assert_eq!(store.delivered, 10);
        assert!(store.backpressure > 0);
        assert_eq!(ws.delivered + ws.lagged, 10);
        assert!(ws.lagged >= 8, "{ws:?}");
        let mut buf = Vec::new();
        assert_eq!(lossy.try_recv_many(&mut buf, 10), 2);
        assert_eq!(stats.total_lagged(), ws.lagged);
    }

    #[tokio::test]
    async fn dropped_subscribers_are_forgotten() {
        let bus = InProcessBus::new(2);
        let sub = bus
            .subscribe(Topic::Outbound, "gone", Delivery::Reliable)
            .unwrap();
        drop(sub);
        bus.publish(Topic::Outbound, hb(1)).await.unwrap();
        assert!(bus.stats().outbound.is_empty());
        bus.close(Topic::Outbound);
        assert_eq!(
            bus.publish(Topic::Outbound, hb(2)).await,
            Err(BusError::Closed)
        );
    }
}
