//! How often a strategy selection decides, measured on candle files: the table in
//! `docs/STRATEGIES.md` ("Measured move rates"). A *move* is a candle on which the confluence
//! decision changes to BUY or SELL; candles before the engine's warm-up are not counted.
//!
//! `cargo run --release -p manus-core --example move_rates -- SELECTION MODE FILE.csv...`
//! prints one markdown row per file: candles, moves, moves per 100 candles, median confidence
//! of the moves, and the fewest strategies that backed a move.

use std::fs::File;
use std::io::BufReader;

use manus_core::confluence::{Mode, Rule};
use manus_core::summary::Moves;
use manus_core::{Action, SignalEngine, csv, strategy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [selection, mode, files @ ..] = args.as_slice() else {
        return Err("usage: move_rates SELECTION MODE FILE.csv...".into());
    };
    let ids = strategy::parse_selection(selection)?;
    let mode: Mode = mode.parse()?;
    for path in files {
        let candles = csv::load(BufReader::new(File::open(path)?), None)?;
        let mut engine = SignalEngine::from_ids(&ids, Rule::new(mode, ids.len()))?;
        let mut moves = Moves::default();
        let mut confidences = Vec::new();
        let mut fewest = u32::MAX;
        for c in &candles {
            let o = engine.on_closed(c);
            if engine.warming_up() {
                continue;
            }
            let before = moves.moves;
            moves.observe(&o);
            if moves.moves > before {
                confidences.push(o.confidence);
                fewest = fewest.min(o.agreeing.count_ones());
            }
            debug_assert!(o.action == Action::Hold || o.agreeing != 0);
        }
        confidences.sort_by(f64::total_cmp);
        let median = confidences
            .get(confidences.len() / 2)
            .copied()
            .unwrap_or(0.0);
        let name = path.rsplit('/').next().unwrap_or(path);
        println!(
            "| {selection} | {mode} | {name} | {} | {} | {:.1} | {:.0} % | {} |",
            moves.candles,
            moves.moves,
            moves.moves as f64 * 100.0 / moves.candles.max(1) as f64,
            median * 100.0,
            if fewest == u32::MAX { 0 } else { fewest },
        );
    }
    Ok(())
}
