//! The binary itself: exit codes, messages, and shutdown by signal.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_atalaya"));
    c.env_remove("ATALAYA_LOG");
    c
}

#[test]
fn config_check_names_every_bad_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.toml");
    std::fs::write(
        &p,
        "[engine]\ntimeframes = [\"1m\", \"2m\"]\n[engine.decision]\nbuy = \"lots\"\nsell = 0.9\ncolour = \"red\"\n\
         [server]\nlisten = \"localhost\"\n[sim]\ntrades_per_minute = 0\n",
    )
    .unwrap();
    let out = bin()
        .args(["config", "check", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for field in [
        "engine.timeframes",
        "engine.decision.buy",
        "engine.decision.colour",
        "server.listen",
        "sim.trades_per_minute",
    ] {
        assert!(
            err.contains(&format!("  {field}: ")),
            "{field} not named in:\n{err}"
        );
    }
    assert!(err.contains("broken.toml"), "{err}");
}

#[test]
fn config_check_and_show_accept_the_defaults_and_env() {
    let out = bin()
        .args(["config", "show"])
        .env("ATALAYA_ENGINE__DECISION__MIN_CONFIDENCE", "0.65")
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("min_confidence = 0.65"), "{text}");
    let out = bin()
        .args(["config", "check"])
        .env("ATALAYA_BUS__CAPACITY", "zero")
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bus.capacity"));
}

#[test]
fn ctrl_c_shuts_down_gracefully_and_loses_no_candle() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sigint.db");
    let child = bin()
        .args([
            "run",
            "--demo",
            "--speed",
            "20000",
            "--no-server",
            "--quiet",
            "--db",
        ])
        .arg(&db)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Let it run until bars are being stored, then interrupt it mid-stream.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
        if db.exists() && t0.elapsed() > Duration::from_millis(1500) {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // "done: E events, N bars closed (M stored), …"
    let done = err
        .lines()
        .find(|l| l.starts_with("done:"))
        .unwrap_or_else(|| panic!("{err}"));
    let num_before = |needle: &str| -> u64 {
        let i = done.find(needle).unwrap();
        done[..i]
            .split([' ', '('])
            .rfind(|s| !s.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    let closed = num_before(" bars closed");
    let stored = num_before(" stored), ");
    assert!(closed > 0, "{done}");
    assert_eq!(closed, stored, "{done}");
    let out = bin()
        .args(["db", "stats", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["candles"].as_u64().unwrap(), closed);
}

#[test]
fn replay_reports_a_missing_file_clearly() {
    let out = bin()
        .args(["replay", "/nonexistent/BTCUSDT_1h.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read /nonexistent/BTCUSDT_1h.csv"),
        "{err}"
    );
}
