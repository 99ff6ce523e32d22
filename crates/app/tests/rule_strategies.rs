//! Rule strategies from strategy files through the command line: `manus strategy check`,
//! `--strategy-file` with `--strategies`, `--param`, `--weight` and `--sweep`, the settings
//! file's `strategy_files`, and clear exit-2 errors.

use std::process::{Command, Output};

use serde_json::Value;

fn manus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_manus"))
        .args(args)
        .output()
        .expect("run manus")
}

fn root(rel: &str) -> String {
    format!("{}/../../{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn bad(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr.clone()).unwrap()
}

const FILE: &str = r#"
[[strategy]]
id = "dip_buyer"
buy  = "rsi(close, 14) < 35 and on(\"1h\", close > ema(close, 20))"
sell = "rsi(close, 14) > 65"
hold = 3
score = "clamp(abs(rsi(close, 14) - 50) / 50, 0, 1)"
"#;

#[test]
fn check_prints_warm_up_and_indicators() {
    let out = manus(&["strategy", "check", &root("docs/examples/strategies.toml")]);
    let text = ok(&out);
    assert!(
        text.contains("trend_pullback: warm-up 2400 candles at 5m"),
        "{text}"
    );
    assert!(
        text.contains("uses: ema(close, 200), ema(close, 200) on 1h, ema(close, 50), ema(close, 50) on 1h, rsi(close, 14)"),
        "{text}"
    );
    let out = manus(&[
        "strategy",
        "check",
        &root("docs/examples/strategies.toml"),
        "--interval",
        "1h",
    ]);
    assert!(ok(&out).contains("trend_pullback: warm-up 200 candles at 1h"));
    let e = bad(&manus(&[
        "strategy",
        "check",
        &root("docs/examples/strategies.toml"),
        "--interval",
        "4h",
    ]));
    assert!(
        e.contains("1h is not a multiple of the stream's interval (4h)"),
        "{e}"
    );
}

#[test]
fn bad_files_exit_2_naming_strategy_key_and_column() {
    let dir = tempfile::tempdir().unwrap();
    for (text, says) in [
        (
            "[[strategy]]\nid = \"x\"\nbuy = \"close and 3\"\nsell = \"false\"",
            "strategy 'x', buy, column 1: `and` needs a condition",
        ),
        (
            "[[strategy]]\nid = \"x\"\nbuy = \"true\"\nsell = \"emma(close, 3) > 1\"",
            "strategy 'x', sell, column 1: unknown function 'emma'",
        ),
        (
            "[[strategy]]\nid = \"x\"\nbuy = \"on(\\\"2x\\\", close > 1)\"\nsell = \"false\"",
            "strategy 'x', buy, column 4: bad timeframe",
        ),
        (
            "[[strategy]]\nid = \"rsi_mean_reversion\"\nbuy = \"true\"\nsell = \"false\"",
            "is a built-in strategy id",
        ),
    ] {
        let f = dir.path().join("s.toml");
        std::fs::write(&f, text).unwrap();
        let f = f.display().to_string();
        let e = bad(&manus(&["strategy", "check", &f]));
        assert!(e.contains(says), "{text}: {e}");
        let e = bad(&manus(&[
            "backtest",
            "--csv",
            &root("data/btcusdt_5m_sample.csv"),
            "--strategy-file",
            &f,
            "--strategies",
            "x",
        ]));
        assert!(e.contains(says), "{text}: {e}");
    }
    let e = bad(&manus(&[
        "backtest",
        "--csv",
        &root("data/btcusdt_5m_sample.csv"),
        "--strategies",
        "dip_buyer",
    ]));
    assert!(e.contains("unknown strategy 'dip_buyer'"), "{e}");
}

#[test]
fn rule_ids_work_with_params_weights_sweeps_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("rules.toml");
    std::fs::write(&f, FILE).unwrap();
    let f = f.display().to_string();
    let csv = root("data/btcusdt_5m_sample.csv");
    let run = |extra: &[&str]| -> Value {
        let mut args = vec!["backtest", "--csv", &csv, "--strategy-file", &f, "--json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&ok(&manus(&args))).unwrap()
    };
    let base = run(&["--strategies", "dip_buyer,macd", "--confluence", "any"]);
    assert_eq!(base["strategies"], serde_json::json!(["dip_buyer", "macd"]));
    // Without --exit-on-hold a position waits for a SELL, whatever the view's length.
    let hold = |h: &str| run(&["--strategies", "dip_buyer", "--param", h, "--exit-on-hold"]);
    let (longer, shorter) = (hold("dip_buyer.hold=30"), hold("dip_buyer.hold=1"));
    assert_ne!(
        longer["exposure_pct"], shorter["exposure_pct"],
        "hold reaches the rule strategy"
    );
    let e = bad(&manus(&[
        "backtest",
        "--csv",
        &csv,
        "--strategy-file",
        &f,
        "--strategies",
        "dip_buyer",
        "--param",
        "dip_buyer.period=3",
    ]));
    assert!(
        e.contains("unknown parameter 'period'; parameters: hold"),
        "{e}"
    );
    run(&[
        "--strategies",
        "dip_buyer,rsi_mean_reversion",
        "--confluence",
        "weighted",
        "--weight",
        "dip_buyer=2",
    ]);
    let sweep = ok(&manus(&[
        "backtest",
        "--csv",
        &csv,
        "--strategy-file",
        &f,
        "--strategies",
        "dip_buyer",
        "--sweep",
        "dip_buyer.hold=1..9:4",
        "--json",
    ]));
    let rows: Value = serde_json::from_str(&sweep).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(3), "{sweep}");

    // The settings file names the strategy file relative to itself.
    let sub = dir.path().join("conf");
    std::fs::create_dir(&sub).unwrap();
    std::fs::copy(dir.path().join("rules.toml"), sub.join("mine.toml")).unwrap();
    let settings = sub.join("settings.toml");
    std::fs::write(
        &settings,
        "strategy_files = [\"mine.toml\"]\n\n[[strategies]]\nid = \"dip_buyer\"\nparams = { hold = 30 }\n\n[backtest]\nexit_on_hold = true\n",
    )
    .unwrap();
    let out = manus(&[
        "backtest",
        "--csv",
        &csv,
        "--config",
        &settings.display().to_string(),
        "--json",
    ]);
    let v: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["strategies"], serde_json::json!(["dip_buyer"]));
    assert_eq!(
        v["exposure_pct"], longer["exposure_pct"],
        "the file's params apply"
    );
}

#[test]
fn signals_records_name_rule_strategies() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("rules.toml");
    std::fs::write(&f, FILE).unwrap();
    let out = ok(&manus(&[
        "signals",
        "--csv",
        &root("data/btcusdt_5m_sample.csv"),
        "--strategy-file",
        &f.display().to_string(),
        "--strategies",
        "dip_buyer",
    ]));
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3000);
    // ema(20) on 1h: 20 hourly candles of 12 five-minute ones, so a warm-up of 240 candles.
    let warm = lines.iter().take_while(|l| l["warming_up"] == true).count();
    assert_eq!(warm, 20 * 12 - 1);
    let buys = lines
        .iter()
        .filter(|l| l.to_string().contains("\"dip_buyer\"") && l["confluence"] == "BUY")
        .count();
    assert!(buys > 0, "the rule strategy speaks");
}
