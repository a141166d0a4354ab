//! A snapshot of the audit stream for a fixed replay: two correlated instruments, rules that
//! fire often, and tight risk limits, so that every kind of decision appears (approvals,
//! resizes, refusals for cooldown, correlation and the breaker, fills, stops, trailing stops).
//! Any change in the trader's behaviour shows up as a diff of
//! `tests/snapshots/audit_two_instruments.jsonl`; regenerate it with
//! `ATALAYA_UPDATE_SNAPSHOTS=1 cargo test -p atalaya-backtest --test audit` after checking
//! that the change is intended.
#![allow(clippy::unwrap_used)]

use atalaya_backtest::{Settings, run};
use atalaya_engine::{
    DecisionConfig, EngineConfig, FillAt, PortfolioConfig, RiskConfig, RuleAction, RuleConfig,
};
use atalaya_model::{Candle, Envelope, Event, InstrumentId, Symbol, Timeframe};

const H: i64 = 3_600_000_000_000;

fn bars() -> (Vec<InstrumentId>, Vec<Envelope<Event>>) {
    let ids: Vec<InstrumentId> = vec![
        "sim:BTC/USDT".parse().unwrap(),
        "sim:ETH/USDT".parse().unwrap(),
    ];
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let mut px = [100.0f64, 50.0];
    let mut out = Vec::new();
    for i in 0..700i64 {
        let common = rnd() * 0.03;
        for (k, id) in ids.iter().enumerate() {
            let r = common + rnd() * 0.012 + if i % 400 < 40 { -0.004 } else { 0.0 };
            let open = px[k];
            let close = open * (1.0 + r);
            let (hi, lo) = (
                open.max(close) * (1.0 + rnd().abs() * 0.01),
                open.min(close) * (1.0 - rnd().abs() * 0.01),
            );
            px[k] = close;
            let c = Candle::new(*id, Timeframe::H1, i * H, [open, hi, lo, close], 10.0, 1).unwrap();
            out.push(Envelope::new(
                0,
                c.close_time(),
                c.close_time(),
                Symbol::new("t").unwrap(),
                Event::Candle(c),
            ));
        }
    }
    (ids, out)
}

fn settings() -> Settings {
    let mut engine = EngineConfig {
        timeframes: vec![Timeframe::H1],
        decision: DecisionConfig {
            enabled: false,
            ..DecisionConfig::default()
        },
        rules: vec![
            RuleConfig {
                name: "dip".into(),
                when: "rsi_14 < 40".into(),
                action: RuleAction::Buy,
            },
            RuleConfig {
                name: "rip".into(),
                when: "rsi_14 > 62".into(),
                action: RuleAction::Sell,
            },
        ],
        ..EngineConfig::default()
    };
    engine.anomaly.enabled = false;
    Settings {
        engine,
        portfolio: PortfolioConfig {
            fill: FillAt::NextOpen,
            ..PortfolioConfig::default()
        },
        risk: RiskConfig {
            stop_atr: 1.5,
            target_atr: 3.0,
            trailing_atr: 2.5,
            max_correlation: 0.5,
            correlation_window: 30,
            cooldown_bars: 4,
            max_drawdown: 0.04,
            breaker_bars: 48,
            ..RiskConfig::default()
        },
        trade_from: None,
    }
}

#[test]
fn the_audit_stream_of_a_fixed_replay_is_unchanged() {
    let (ids, envs) = bars();
    let bt = run(&settings(), &ids, envs.iter(), &mut |_| {}).unwrap();
    let mut got = String::new();
    for a in &bt.audit {
        got.push_str(&serde_json::to_string(a).unwrap());
        got.push('\n');
    }
    // Every kind of decision is exercised.
    for needle in [
        "\"action\":\"approve\"",
        "\"action\":\"buy\"",
        "\"action\":\"sell\"",
        "cooling down after a loss",
        "correlate",
        "\"action\":\"breaker\"",
        "stop-loss",
    ] {
        assert!(
            got.contains(needle),
            "{needle} missing from the audit stream"
        );
    }
    atalaya_testkit::assert_snapshot(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots/audit_two_instruments.jsonl"),
        &got,
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal::prelude::ToPrimitive;

    fn walk(seed: u64, n: i64) -> Vec<Envelope<Event>> {
        let id: InstrumentId = "sim:BTC/USDT".parse().unwrap();
        let mut s = seed | 1;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut px = 100.0f64;
        (0..n)
            .map(|i| {
                let open = px;
                px *= 1.0 + rnd() * 0.04;
                let c = Candle::new(
                    id,
                    Timeframe::H1,
                    i * H,
                    [open, open.max(px) * 1.003, open.min(px) * 0.997, px],
                    1.0,
                    1,
                )
                .unwrap();
                Envelope::new(
                    0,
                    c.close_time(),
                    c.close_time(),
                    Symbol::new("t").unwrap(),
                    Event::Candle(c),
                )
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn cooldown_and_the_position_cap_are_never_violated(
            seed in any::<u64>(),
            cooldown in 0u64..12,
            fraction in 0.05f64..1.0,
            stop in 0.5f64..4.0,
        ) {
            let mut s = settings();
            s.portfolio.fill = FillAt::Close;
            s.risk.cooldown_bars = cooldown;
            s.risk.max_position_fraction = fraction;
            s.risk.stop_atr = stop;
            s.risk.max_drawdown = 1.0;
            let id: InstrumentId = "sim:BTC/USDT".parse().unwrap();
            let bt = run(&s, &[id], walk(seed, 800).iter(), &mut |_| {}).unwrap();
            let equity_at = |ts: i64| bt.equity.iter().find(|p| p.ts == ts).map(|p| p.equity);
            let mut last_loss_exit: Option<i64> = None;
            for t in &bt.trades {
                if let Some(exit) = last_loss_exit {
                    prop_assert!(
                        t.entry_time >= exit + cooldown as i64 * H,
                        "entry at {} within {} bars of a loss at {}", t.entry_time, cooldown, exit
                    );
                }
                // A position opened on the last bar is closed at once by the end of the
                // backtest, which rewrites that bar's equity point: nothing to compare to.
                if t.entry_time == t.exit_time {
                    continue;
                }
                let value = (t.quantity * t.entry_price).to_f64().unwrap();
                let fee = value * 0.001;
                let equity = equity_at(t.entry_time).unwrap() + fee;
                prop_assert!(value <= fraction * equity * (1.0 + 1e-9), "{value} > {fraction} × {equity}");
                if t.pnl.is_sign_negative() {
                    last_loss_exit = Some(t.exit_time);
                } else {
                    last_loss_exit = None;
                }
            }
        }
    }
}
