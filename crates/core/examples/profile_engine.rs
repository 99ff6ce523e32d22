//! A fixed amount of engine work for instruction-count profiling, which is repeatable on a busy
//! machine where wall-clock benches are not: `valgrind --tool=callgrind
//! target/release/examples/profile_engine SELECTION N [skip]` runs N candles of the seeded
//! synthetic series through `SignalEngine::on_closed` (MAJORITY); with `skip` it only builds the
//! series and the engine. (total − skip total) / N is the per-candle count. Rule strategies:
//! `PROFILE_RULES=FILE[:FILE...]` loads strategy files first, so SELECTION can name their ids.
//! `PROFILE_ALONE=1` steps the first selected strategy by itself (`Strategy::on_candle`, as the
//! `rules` bench does), without an engine.

use std::hint::black_box;

use manus_core::confluence::{Mode, Rule};
use manus_core::{SignalEngine, strategy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (selection, n, skip) = match args.as_slice() {
        [s, n] => (s, n, false),
        [s, n, k] if k == "skip" => (s, n, true),
        _ => return Err("usage: profile_engine SELECTION N [skip]".into()),
    };
    let n: usize = n.parse()?;
    if let Ok(files) = std::env::var("PROFILE_RULES") {
        for f in files.split(':') {
            let defs = manus_core::rules::parse_file(&std::fs::read_to_string(f)?)?;
            strategy::load_rules(&defs)?;
        }
    }
    let ids = strategy::parse_selection(selection)?;
    let candles = manus_core::testing::synthetic(7, n);
    if std::env::var_os("PROFILE_ALONE").is_some() {
        let mut s = strategy::build(ids[0], &Default::default())?;
        for c in candles.iter().filter(|_| !skip) {
            black_box(s.on_candle(c)?);
        }
        return Ok(());
    }
    let mut engine = SignalEngine::from_ids(&ids, Rule::new(Mode::Majority, ids.len()))?;
    for c in candles.iter().filter(|_| !skip) {
        black_box(engine.on_closed(c));
    }
    Ok(())
}
