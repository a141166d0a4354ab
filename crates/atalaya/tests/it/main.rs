//! End-to-end tests of the agent: the demo run, replay, configuration and shutdown.

#![allow(clippy::unwrap_used)] // Test helpers panic on failure by design.

mod backtest;
mod cli;
mod demo;
mod download;
mod outbox;
mod paper;
mod patterns;
mod replay;
mod secrets;
