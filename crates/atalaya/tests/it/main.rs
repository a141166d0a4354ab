//! End-to-end tests of the agent: the demo run, replay, configuration and shutdown.

#![allow(clippy::unwrap_used)] // Test helpers panic on failure by design.

mod backtest;
mod cli;
mod demo;
mod download;
mod live;
mod models;
mod outbox;
mod paper;
mod patterns;
mod replay;
mod secrets;
mod sentiment;

/// `atalaya --config CFG run --demo --speed max --for FOR --seed SEED --db DB`.
pub fn demo_run(
    cfg: &std::path::Path,
    db: &std::path::Path,
    for_: &str,
    seed: u32,
) -> std::process::Command {
    let mut c = atalaya();
    c.arg("--config")
        .arg(cfg)
        .args(["run", "--demo", "--speed", "max", "--for", for_, "--seed"])
        .arg(seed.to_string())
        .arg("--db")
        .arg(db);
    c
}

/// Runs `cmd` quietly and kills it with SIGKILL once `db` exists and `ready()` holds (polled
/// every 50 ms, for at most 120 s).
pub async fn sigkill_when(
    mut cmd: std::process::Command,
    db: &std::path::Path,
    mut ready: impl AsyncFnMut() -> bool,
) {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while t0.elapsed() < std::time::Duration::from_secs(120) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if db.exists() && ready().await {
            break;
        }
    }
    let status = std::process::Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.wait();
}

/// The `atalaya` binary under test, without the caller's log filter.
pub fn atalaya() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_atalaya"));
    c.env_remove("ATALAYA_LOG");
    c
}
