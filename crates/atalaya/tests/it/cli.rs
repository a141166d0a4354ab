//! The binary itself: exit codes, messages, and shutdown by signal.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::atalaya as bin;

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

/// NewsAPI and X need their secrets only when used, and then only from the environment.
#[test]
fn newsapi_and_x_secrets_are_required_when_used_and_only_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("atalaya.toml");
    std::fs::write(&p, "[live]\nsources = [\"newsapi\", \"x\"]\n").unwrap();
    let check = |extra: &[(&str, &str)]| {
        let mut c = bin();
        c.args(["config", "check", "--config"]).arg(&p);
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("newsapi.api_key") && err.contains("ATALAYA_NEWSAPI__API_KEY"),
        "{err}"
    );
    assert!(
        err.contains("x.bearer_token") && err.contains("ATALAYA_X__BEARER_TOKEN"),
        "{err}"
    );
    let out = check(&[
        ("ATALAYA_NEWSAPI__API_KEY", "k"),
        ("ATALAYA_X__BEARER_TOKEN", "t"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The defaults (neither source used) need neither.
    let out = bin()
        .args(["config", "check"])
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A key written in the file is refused.
    std::fs::write(&p, "[newsapi]\napi_key = \"in-a-file\"\n").unwrap();
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("read only from the environment"));
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

#[test]
fn indicators_writes_one_column_per_output_aligned_with_the_rows() {
    use atalaya_ta::{Indicator, momentum::Macd, momentum::Rsi};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ETHUSDT_1h_fixture.csv");
    let bars = atalaya_testkit::walk(120, 1_672_531_200_000, 3_600_000, 1500.0, 3, &[]);
    atalaya_testkit::write_kline_csv(&file, &bars, &[]).unwrap();
    let out = bin()
        .args(["indicators", "--set", "rsi:14,macd:12:26:9"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "open_time_ms,open,high,low,close,volume,rsi_14,macd_12_26_9,macd_12_26_9_signal,macd_12_26_9_hist"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 120);
    let (mut rsi, mut macd) = (Rsi::new(14), Macd::new(12, 26, 9));
    for (row, bar) in rows.iter().zip(&bars) {
        assert_eq!(row[0].parse::<i64>().unwrap(), bar.0);
        let cell = |v: Option<f64>| v.map_or(String::new(), |x| x.to_string());
        assert_eq!(row[6], cell(rsi.update(bar.4)));
        let m = macd.update(bar.4);
        assert_eq!(row[9], cell(m.map(|m| m.hist)));
    }
    assert_eq!(rows[13][6], "", "RSI 14 needs 14 changes");
    assert_ne!(rows[14][6], "");
    // JSON has the same numbers, null during the warm-up.
    let out = bin()
        .args(["indicators", "--format", "json", "--set", "rsi:14"])
        .arg(&file)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["rsi_14"][13].is_null());
    assert_eq!(v["rsi_14"][14].as_f64().unwrap().to_string(), rows[14][6]);
    // A bad set is a usage error naming every bad entry.
    let out = bin()
        .args(["indicators", "--set", "rsi:0,wat"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"rsi:0\"") && err.contains("\"wat\""),
        "{err}"
    );
}

#[test]
fn bench_ta_times_both_paths_on_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("BTCUSDT_1m_fixture.csv");
    atalaya_testkit::write_kline_csv(
        &file,
        &atalaya_testkit::walk(5000, 0, 60_000, 100.0, 9, &[]),
        &[],
    )
    .unwrap();
    let out = bin()
        .args(["bench", "ta", "--runs", "2"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("5000 bars from"), "{text}");
    assert!(
        text.contains("batch:") && text.contains("streaming:") && text.contains("ns per bar"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_test_reports_each_channel() {
    use atalaya_testkit::fake_http::{Canned, FakeHttp};
    let telegram = FakeHttp::start(Canned::telegram_ok()).await.unwrap();
    let discord = FakeHttp::start(Canned::json(
        404,
        serde_json::json!({"code": 10015, "message": "Unknown Webhook"}),
    ))
    .await
    .unwrap();
    let (t_url, d_url) = (
        telegram.url(),
        format!("{}/api/v10/webhooks/1/x", discord.url()),
    );
    let out = tokio::task::spawn_blocking(move || {
        bin()
            .args(["alerts", "test"])
            .current_dir(tempfile::tempdir().unwrap().path())
            .env("ATALAYA_ALERTS__CONSOLE__ENABLED", "false")
            .env("ATALAYA_ALERTS__TELEGRAM__ENABLED", "true")
            .env("ATALAYA_ALERTS__TELEGRAM__BASE_URL", t_url)
            .env("ATALAYA_ALERTS__TELEGRAM__CHAT_ID", "7")
            .env("ATALAYA_ALERTS__TELEGRAM__BOT_TOKEN", "1:x")
            .env("ATALAYA_ALERTS__DISCORD__ENABLED", "true")
            .env("ATALAYA_ALERTS__DISCORD__WEBHOOK_URL", d_url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("telegram: ok"), "{text}");
    assert!(
        text.contains("discord: failed") && text.contains("Unknown Webhook"),
        "{text}"
    );
    assert_eq!(telegram.requests().len(), 1);
    assert!(
        telegram.requests()[0].json()["text"]
            .as_str()
            .unwrap()
            .contains("Atalaya test alert")
    );
}

#[test]
fn alerts_list_shows_what_a_run_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let out = bin()
        .args([
            "run",
            "--demo",
            "--speed",
            "max",
            "--for",
            "3h",
            "--no-server",
            "--quiet",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bin()
        .args(["alerts", "list", "--limit", "5", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["total"].as_u64().unwrap() > 0, "{v}");
    assert!(v["items"].as_array().unwrap().len() <= 5);
    let text = bin()
        .args(["alerts", "list", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("alerts stored"));
}

#[test]
fn sentiment_eval_reports_accuracy_f1_and_the_confusion_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("labelled.csv");
    std::fs::write(
        &data,
        "text,label\nBitcoin to the moon,bullish\n\"Exchange hacked, funds drained\",bearish\nThe meeting is on Tuesday,neutral\nETF inflows surge,positive\n",
    )
    .unwrap();
    let out = bin()
        .env_remove("ATALAYA_LEXICON_DIR")
        .args(["sentiment", "eval", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("4 texts"), "{stdout}");
    assert!(
        stdout.contains("accuracy 1.0000   macro-F1 1.0000"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("crypto-slang lexicon alone"));
    // A label outside the vocabulary names the line and the way out.
    std::fs::write(&data, "text,label\nup,1\n").unwrap();
    let out = bin()
        .args(["sentiment", "eval", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("labelled.csv:2"));
}
