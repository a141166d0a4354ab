use std::path::PathBuf;

use atalaya::patterns::study;
use atalaya_ta::chart::ChartKind;

#[test]
fn the_study_refuses_the_holdout() {
    let err = study(&[PathBuf::from("x.csv")], "2024-06-01", &[6], 2.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("holdout"), "{err}");
}

#[test]
fn the_study_runs_on_the_real_hourly_data_before_2024() {
    let Some(data) =
        atalaya_testkit::data_dir("the_study_runs_on_the_real_hourly_data_before_2024")
    else {
        return;
    };
    let files = vec![
        data.join(
            "ohlcv_binance_spot_btcusdt_1h_2017_2024_mit/BTCUSDT_1h_2017-08-17_2024-04-21.csv",
        ),
        data.join("ohlcv_binance_spot_1h_2017_2020_gpl3/ETHUSDT_1h_2017-09-30_2020-06-26.csv"),
    ];
    let s = study(&files, "2024-01-01", &[6, 24], 2.0).unwrap();
    // The BTC file runs to 2024-04; only bars before 2024 are used.
    assert!(
        s.files[0].1.contains("to 2023-12-31T23:00:00Z"),
        "{}",
        s.files[0].1
    );
    assert_eq!(s.all.len(), 2);
    assert!(s.all[0].n > 70_000);
    // Every kind of pattern is found on seven years of hourly bars.
    for kind in ChartKind::ALL {
        let n = s.patterns.get(&kind).map_or(0, |v| v[0].n);
        assert!(n > 20, "{kind:?}: {n}");
    }
    let md = s.markdown();
    assert!(
        md.contains("| all bars |") && md.contains("| bull_flag | up |"),
        "{md}"
    );
}
