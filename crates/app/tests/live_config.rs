//! `manus live --config FILE`: the settings file (as `manus lab` saves it) chooses the market,
//! the strategies and the confluence; flags override it.

use std::process::Command;

use manus_core::Interval;
use manus_core::record::SignalRecord;
use manus_exchange::sim::{SimConfig, SimExchange};

fn records(out: &[u8]) -> Vec<SignalRecord> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect()
}

#[test]
fn live_reads_the_settings_file_and_flags_override_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(SimExchange::start(SimConfig {
            symbols: vec!["BTCUSDT".into(), "ETHUSDT".into()],
            interval: Interval::M1,
            candle_ms: 30,
            history: 300,
            ..SimConfig::default()
        }))
        .expect("sim starts");
    let dir = tempfile::tempdir().unwrap(); // removed on drop, also when the test fails
    let cfg = dir.path().join("manus.toml");
    std::fs::write(
        &cfg,
        r#"
exchange = "binanceus"
symbols = ["ETHUSDT"]
interval = "1m"

[[strategies]]
id = "rsi_mean_reversion"
params = { period = 7 }

[[strategies]]
id = "macd"

[confluence]
mode = "any"
"#,
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_manus"))
            .arg("live")
            .arg("--config")
            .arg(&cfg)
            .args(["--ws-url", &sim.ws_url(), "--rest-url", &sim.rest_url()])
            .args(["--headless", "--max-candles", "3", "--bootstrap", "100"])
            .args(extra)
            .output()
            .expect("run manus live");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        records(&out.stdout)
    };

    // From the file alone.
    let recs = run(&[]);
    assert_eq!(recs.len(), 3);
    for r in &recs {
        assert_eq!(r.symbol, "ETHUSDT");
        assert_eq!(r.interval, Interval::M1);
        let ids: Vec<&str> = r.signals.0.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["rsi_mean_reversion", "macd"]);
    }

    // Flags win over the file.
    let recs = run(&["--symbol", "BTCUSDT", "--strategies", "adx"]);
    assert_eq!(recs.len(), 3);
    for r in &recs {
        assert_eq!(r.symbol, "BTCUSDT");
        let ids: Vec<&str> = r.signals.0.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["adx"]);
    }

    // A parameter the file sets for a strategy that does not have it is a clear error.
    std::fs::write(
        &cfg,
        "symbols = [\"ETHUSDT\"]\ninterval = \"1m\"\n[[strategies]]\nid = \"macd\"\nparams = { nope = 1 }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_manus"))
        .arg("live")
        .arg("--config")
        .arg(&cfg)
        .args(["--ws-url", &sim.ws_url(), "--rest-url", &sim.rest_url()])
        .output()
        .expect("run manus live");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    rt.block_on(sim.shutdown());
}
