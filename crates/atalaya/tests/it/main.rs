//! End-to-end tests of the agent: the demo run, replay, configuration and shutdown.

#![allow(clippy::unwrap_used)] // Test helpers panic on failure by design.

mod backtest;
mod cli;
mod demo;
mod download;
mod live;
mod outbox;
mod paper;
mod patterns;
mod replay;
mod secrets;
mod sentiment;

/// The `atalaya` binary under test, without the caller's log filter.
pub fn atalaya() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_atalaya"));
    c.env_remove("ATALAYA_LOG");
    c
}
