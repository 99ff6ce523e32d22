//! `manus lab` driven through a pseudo-terminal: the selection shown above the menu, the exact
//! "missing" message for 5 and 6, strategy parameter editing, a backtest, save and reload.

use std::time::Duration;

use expectrl::session::OsSession;
use expectrl::{Eof, Expect, Regex, Session};

fn spawn(config: &std::path::Path, csv: &str) -> OsSession {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_manus"));
    cmd.args([
        "lab",
        "--numbers",
        "--config",
        config.to_str().unwrap(),
        "--csv",
        csv,
    ]);
    let mut s = Session::spawn(cmd).expect("spawn manus lab in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(20)));
    s
}

#[test]
fn menu_flow_through_a_pty() {
    let dir = tempfile::tempdir().unwrap(); // removed on drop, also when the test fails
    let config = dir.path().join("lab.toml");
    let csv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/btcusdt_5m_sample.csv"
    );
    let mut s = spawn(&config, csv);

    s.expect("Asset: (none)").unwrap();
    s.expect("Choice: ").unwrap();
    s.send_line("5").unwrap();
    s.expect("Cannot run a backtest: missing asset (menu 1), timeframe (menu 3).")
        .unwrap();

    s.send_line("1").unwrap();
    s.expect("Symbol").unwrap();
    s.send_line("btcusdt").unwrap();
    s.expect("Exchange").unwrap();
    s.send_line("bybit").unwrap();
    s.expect("Asset: BTCUSDT on bybit").unwrap();
    s.send_line("6").unwrap();
    s.expect("Cannot start a real-time test: missing timeframe (menu 3).")
        .unwrap();

    s.send_line("3").unwrap();
    s.expect("Timeframe").unwrap();
    s.send_line("5m").unwrap();
    s.expect("Timeframe: 5m").unwrap();

    // A new Lab starts with the default preset; 'p smc' replaces it, 'c' clears.
    s.send_line("2").unwrap();
    s.expect("[x] ema_crossover").unwrap();
    s.expect("Toggle numbers").unwrap();
    s.send_line("p smc").unwrap();
    s.expect("[x] smc_bos").unwrap();
    s.expect("Toggle numbers").unwrap();
    s.send_line("c").unwrap();
    s.expect("none selected").unwrap();
    s.expect("Toggle numbers").unwrap();
    s.send_line("e 2").unwrap();
    s.expect("name=value").unwrap();
    s.send_line("slow=30").unwrap();
    s.expect("slow = 30 (default 21)").unwrap();
    s.send_line("").unwrap();
    s.expect("Toggle numbers").unwrap();
    s.send_line("").unwrap();
    s.expect("Strategies: ema_crossover(slow=30)").unwrap();

    s.send_line("4").unwrap();
    s.expect("Confluence mode: ").unwrap();
    s.send_line("1").unwrap();
    s.expect("Confluence: all").unwrap();

    s.send_line("5").unwrap();
    s.expect(Regex("Total return +-?[0-9.]+ %")).unwrap();

    s.send_line("7").unwrap();
    s.expect("1) Save").unwrap();
    s.send_line("1").unwrap();
    s.expect("File [").unwrap();
    s.send_line("").unwrap();
    s.expect("Saved to").unwrap();
    s.send_line("0").unwrap();
    s.expect("Bye.").unwrap();
    s.expect(Eof).unwrap();

    // A new Lab starts from the saved settings.
    let mut s = spawn(&config, csv);
    s.expect("Asset: BTCUSDT on bybit   Timeframe: 5m").unwrap();
    s.expect("Strategies: ema_crossover(slow=30)").unwrap();
    s.send_line("0").unwrap();
    s.expect(Eof).unwrap();
}

/// On a terminal the Lab asks with arrow-key menus: the same flow driven by key presses.
#[test]
fn arrow_keys_through_a_pty() {
    const DOWN: &str = "\x1b[B";
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lab.toml");
    let csv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/btcusdt_5m_sample.csv"
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_manus"));
    cmd.args(["lab", "--config", config.to_str().unwrap(), "--csv", csv]);
    cmd.env_remove("MANUS_LAB_NUMBERS");
    let mut s = Session::spawn(cmd).expect("spawn manus lab in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(20)));
    let key = |s: &mut OsSession, keys: &str| s.send(keys).unwrap();

    // Main menu: third item, Select timeframe; then the third timeframe, 5m.
    s.expect("Select timeframe").unwrap();
    key(&mut s, &format!("{DOWN}{DOWN}\r"));
    s.expect("Timeframe").unwrap();
    key(&mut s, &format!("{DOWN}{DOWN}\r"));
    s.expect("Timeframe: 5m").unwrap();

    // Second item, Configure strategies; the fourth entry is the smc preset; then Done.
    key(&mut s, &format!("{DOWN}\r"));
    s.expect("Preset smc").unwrap();
    key(&mut s, &format!("{DOWN}{DOWN}{DOWN}\r"));
    s.expect("Load a rule strategy file").unwrap();
    key(&mut s, &DOWN.repeat(7));
    key(&mut s, "\r");
    s.expect("Strategies: smc_bos, smc_choch, smc_order_block, smc_fvg, smc_liquidity_sweep")
        .unwrap();

    // Last item: Exit.
    key(&mut s, &DOWN.repeat(7));
    key(&mut s, "\r");
    s.expect("Bye.").unwrap();
    s.expect(Eof).unwrap();
}
