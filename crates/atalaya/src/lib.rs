//! The `atalaya` binary's library half: configuration loading and the commands, so that
//! integration tests can drive them in-process. `main.rs` parses the command line, sets up
//! logging and maps errors to exit codes.

pub mod backtest;
pub mod bench;
pub mod calibrate;
pub mod cli;
pub mod config;
pub mod deliver;
pub mod download;
pub mod indicators;
pub mod patterns;
pub mod replay;
pub mod run;
pub mod sentiment;
pub mod watch;
