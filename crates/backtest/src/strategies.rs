//! Ready-made settings used by tests, benchmarks and the documentation.

use atalaya_engine::{
    DecisionConfig, EngineConfig, FillAt, PortfolioConfig, RiskConfig, RuleAction, RuleConfig,
    Sizing,
};
use atalaya_model::Timeframe;
use rust_decimal::Decimal;

use crate::Settings;

/// The peers' benchmark (`../shared/bench/README.md`): long only, enter when SMA(`fast`)
/// crosses above SMA(`slow`), exit on the cross below, fill at the signal bar's close, 0.1%
/// commission, all-in, 100,000 of cash, no slippage, no stop, no risk limits in the way.
pub fn sma_crossover(timeframe: Timeframe, fast: usize, slow: usize) -> Settings {
    let mut engine = EngineConfig {
        timeframes: vec![timeframe],
        decision: DecisionConfig {
            enabled: false,
            ..DecisionConfig::default()
        },
        rules: vec![
            RuleConfig {
                name: "golden_cross".into(),
                when: format!("crosses_above(sma_{fast}, sma_{slow})"),
                action: RuleAction::Buy,
            },
            RuleConfig {
                name: "death_cross".into(),
                when: format!("crosses_below(sma_{fast}, sma_{slow})"),
                action: RuleAction::Sell,
            },
        ],
        ..EngineConfig::default()
    };
    engine.anomaly.enabled = false;
    Settings {
        engine,
        portfolio: PortfolioConfig {
            initial_cash: Decimal::from(100_000),
            fee_rate: Decimal::new(1, 3),
            slippage_bps: 0.0,
            fill: FillAt::Close,
            ..PortfolioConfig::default()
        },
        risk: RiskConfig {
            sizing: Sizing::AllIn,
            max_position_fraction: 1.0,
            max_total_exposure: 1.0,
            stop_atr: 0.0,
            target_atr: 0.0,
            cooldown_bars: 0,
            max_drawdown: 1.0,
            // Off, like the other limits (and moot for one instrument): the trader then keeps
            // no window of returns to correlate.
            max_correlation: 1.0,
            ..RiskConfig::default()
        },
        trade_from: None,
    }
}
