//! One closed candle through `SignalEngine::on_closed`, hot against cold: how much of a live
//! candle's engine time is the cache. A live candle arrives after the thread slept a candle
//! period while other processes ran, so it finds the engine's state and code evicted; a
//! backtest loop finds both in cache.
//!
//! `cargo run --release -p manus-core --features testing --example cold_engine -- SELECTION N`
//! warms the engine up on 1000 candles of the seeded synthetic series, then times N candles
//! one by one: "hot" back to back, "cold" each after writing a 32 MB buffer (larger than L2 and
//! this host's L3 slice), which evicts the engine's data and code. Prints per-candle p50, p90,
//! p99 and max in ns.

use std::hint::black_box;
use std::time::Instant;

use manus_core::confluence::{Mode, Rule};
use manus_core::{SignalEngine, strategy};

fn quantiles(mut v: Vec<u64>) -> String {
    v.sort_unstable();
    let q = |p: f64| v[((v.len() - 1) as f64 * p) as usize];
    format!(
        "p50 {:>7} ns  p90 {:>7} ns  p99 {:>7} ns  max {:>8} ns",
        q(0.5),
        q(0.9),
        q(0.99),
        v[v.len() - 1]
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (selection, n) = match args.as_slice() {
        [s, n] => (s.as_str(), n.parse::<usize>()?),
        _ => return Err("usage: cold_engine SELECTION N".into()),
    };
    let ids = strategy::parse_selection(selection)?;
    let warm = 1000;
    let candles = manus_core::testing::synthetic(7, warm + 2 * n);
    let mut engine = SignalEngine::from_ids(&ids, Rule::new(Mode::Majority, ids.len()))?;
    for c in &candles[..warm] {
        black_box(engine.on_closed(c));
    }
    let mut evict = vec![0u8; 32 << 20];
    let mut hot = Vec::with_capacity(n);
    let mut cold = Vec::with_capacity(n);
    let mut rest = candles[warm..].iter();
    // Interleaved, so both see the same machine: a hot step, then an eviction and a cold one.
    for i in 0..n {
        let Some(c) = rest.next() else { break };
        let t = Instant::now();
        black_box(engine.on_closed(c));
        hot.push(t.elapsed().as_nanos() as u64);
        for (j, b) in evict.iter_mut().enumerate().step_by(64) {
            *b = b.wrapping_add((i + j) as u8);
        }
        black_box(&evict);
        let Some(c) = rest.next() else { break };
        let t = Instant::now();
        black_box(engine.on_closed(c));
        cold.push(t.elapsed().as_nanos() as u64);
    }
    println!("{selection}: {} candles each", hot.len());
    println!("hot : {}", quantiles(hot));
    println!("cold: {}", quantiles(cold));
    Ok(())
}
