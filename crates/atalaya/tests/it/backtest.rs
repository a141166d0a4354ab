//! `atalaya backtest` end to end: rules from TOML, the reports, determinism, and rule errors
//! that point into the rule text.

use crate::atalaya as bin;

const RULES: &str = r#"
[engine]
timeframes = ["1h"]
[engine.decision]
enabled = false
[[engine.rules]]
name = "oversold"
when = "rsi_14 < 35 and close > sma_100"
action = "buy"
[[engine.rules]]
name = "overbought"
when = "rsi_14 > 65"
action = "sell"
[portfolio]
initial_cash = 5000
slippage_bps = 5
[risk]
stop_atr = 2.0
target_atr = 3.0
max_position_fraction = 0.5
"#;

#[test]
fn a_rules_backtest_writes_identical_reports_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("BTCUSDT-1h.csv");
    let bars = atalaya_testkit::walk(3_000, 1_577_836_800_000, 3_600_000, 100.0, 7, &[]);
    atalaya_testkit::write_kline_csv(&data, &bars, &[]).unwrap();
    let cfg = dir.path().join("atalaya.toml");
    std::fs::write(&cfg, RULES).unwrap();
    let mut outputs = Vec::new();
    for run in ["a", "b"] {
        let out_dir = dir.path().join(run);
        let out = bin()
            .args(["--config"])
            .arg(&cfg)
            .args(["backtest", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(&out_dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("buy and hold"), "{stdout}");
        assert!(stdout.contains("binance:BTC/USDT on 1h bars"), "{stdout}");
        let files: Vec<Vec<u8>> = ["trades.csv", "metrics.json", "equity.svg", "audit.jsonl"]
            .iter()
            .map(|f| std::fs::read(out_dir.join(f)).unwrap())
            .collect();
        outputs.push(files);
    }
    assert_eq!(outputs[0], outputs[1], "identical input, identical reports");
    let metrics: serde_json::Value = serde_json::from_slice(&outputs[0][1]).unwrap();
    let trades = metrics["metrics"]["trades"].as_u64().unwrap();
    assert!(trades > 0, "{metrics}");
    assert_eq!(metrics["metrics"]["initial_equity"], 5000.0);
    assert!(metrics["buy_and_hold"]["final_equity"].as_f64().unwrap() > 0.0);
    let csv = String::from_utf8(outputs[0][0].clone()).unwrap();
    assert_eq!(csv.lines().count() as u64, trades + 1);
    assert!(csv.contains("rule oversold held: rsi_14 < 35 and close > sma_100 (rsi_14="));
    // --from trades from that time on, after untraded warm-up bars.
    let out_dir = dir.path().join("from");
    let out = bin()
        .args(["--config"])
        .arg(&cfg)
        .args(["backtest", "--from", "2020-03-01", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["metrics"]["start"], "2020-03-01T00:00:00Z");
    assert!(
        m["pipeline"]["candles_out"].as_u64().unwrap() > m["metrics"]["bars"].as_u64().unwrap()
    );
    let audit = String::from_utf8(outputs[0][3].clone()).unwrap();
    assert!(
        audit
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
    assert!(audit.contains("\"action\":\"approve\""));
}

#[test]
fn a_bad_rule_is_refused_with_a_caret_under_the_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("atalaya.toml");
    std::fs::write(
        &cfg,
        "[[engine.rules]]\nname = \"x\"\nwhen = \"rsi_14 < 30 and clsoe > ema_200\"\naction = \"buy\"\n",
    )
    .unwrap();
    let out = bin()
        .args(["--config"])
        .arg(&cfg)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("engine.rules[0].when: at column 17: unknown name `clsoe`"),
        "{err}"
    );
    assert!(err.contains("                ^^^^^"), "{err}");
}

#[test]
fn calibrate_writes_buckets_the_engine_accepts_and_refuses_the_holdout() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("BTCUSDT-1h.csv");
    let bars = atalaya_testkit::walk(8_000, 1_577_836_800_000, 3_600_000, 100.0, 11, &[]);
    atalaya_testkit::write_kline_csv(&data, &bars, &[]).unwrap();
    let cfg = dir.path().join("atalaya.toml");
    std::fs::write(&cfg, "[engine]\ntimeframes = [\"1h\"]\n").unwrap();
    let refused = bin()
        .args(["--config"])
        .arg(&cfg)
        .args(["calibrate", "--to", "2024-06-01", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("holdout"));
    let buckets = dir.path().join("calibration.toml");
    let out = bin()
        .args(["--config"])
        .arg(&cfg)
        .args(["calibrate", "--split", "2020-08-01", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&buckets)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("observed hit rate"), "{stdout}");
    let written = std::fs::read_to_string(&buckets).unwrap();
    assert!(
        written.contains("[[engine.decision.calibration]]"),
        "{written}"
    );
    // The written buckets are a valid configuration.
    let both = dir.path().join("both.toml");
    std::fs::write(&both, format!("[engine]\ntimeframes = [\"1h\"]\n{written}")).unwrap();
    let check = bin()
        .args(["--config"])
        .arg(&both)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
