//! A real-time session from your own code: the trend preset on one stream of the built-in
//! simulated exchange (offline), printing each decision, stopping after 40 candles.
//!
//! `cargo run --release -p market-manus --example realtime_session`
//!
//! Against a real exchange, drop `.simulated(..)` and pick `.exchange(..)`, the symbols and the
//! interval; add `.db("manus.db")` to store the records and resume after a restart.

use manus_core::{Action, Interval};
use manus_exchange::sim::SimConfig;
use market_manus::session::LiveSession;

fn main() -> anyhow::Result<()> {
    manus_exchange::tls::install_crypto_provider();
    LiveSession::builder()
        .simulated(SimConfig {
            symbols: vec!["BTCUSDT".into()],
            interval: Interval::M1,
            candle_ms: 50,
            ..SimConfig::default()
        })
        .symbols(["BTCUSDT"])
        .interval(Interval::M1)
        .strategies("trend")
        .max_candles(40)
        .on_record(|r| {
            let views: Vec<String> = r
                .signals
                .0
                .iter()
                .filter(|(_, a)| *a != Action::Hold)
                .map(|(id, a)| format!("{id}={a}"))
                .collect();
            println!(
                "{} {} close {:.2}: {} ({:.0}%) [{}]",
                r.symbol,
                r.open_time,
                r.close,
                r.confluence,
                r.confidence * 100.0,
                views.join(" ")
            );
        })
        .build()?
        .run()
}
