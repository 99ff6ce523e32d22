//! The default selection and confluence produce a usable stream of decisions: on the sample
//! file and on a seeded synthetic series, the decision changes to BUY or SELL (a move) on at
//! least 1 and at most 10 in 100 candles after warm-up, every move is backed by at least two
//! strategies, HOLD never claims confidence or agreeing strategies, and warming-up is flagged
//! exactly until the longest warm-up has passed.

use manus_core::testing::{sample, synthetic};

use manus_core::confluence::{Mode, Rule};
use manus_core::strategy::{self, registry::DEFAULT_SELECTION};
use manus_core::summary::Moves;
use manus_core::{Action, Candle, SignalEngine};

fn default_engine() -> SignalEngine {
    let ids = strategy::parse_selection(DEFAULT_SELECTION).expect("the default parses");
    SignalEngine::from_ids(&ids, Rule::new(Mode::default(), ids.len())).expect("builds")
}

fn check(name: &str, cs: &[Candle]) {
    let mut e = default_engine();
    let mut moves = Moves::default();
    for (i, c) in cs.iter().enumerate() {
        let o = e.on_closed(c);
        assert_eq!(e.warming_up(), i + 1 < e.warmup(), "{name}: candle {i}");
        if o.action == Action::Hold {
            assert_eq!((o.confidence, o.agreeing), (0.0, 0), "{name}: candle {i}");
        }
        if e.warming_up() {
            continue;
        }
        let before = moves.moves;
        moves.observe(&o);
        if moves.moves > before {
            assert!(
                o.agreeing.count_ones() >= 2,
                "{name}: a move on candle {i} backed by {} strategies",
                o.agreeing.count_ones()
            );
        }
    }
    let per_100 = moves.moves as f64 * 100.0 / moves.candles as f64;
    eprintln!("{name}: {} moves in {} candles", moves.moves, moves.candles);
    assert!(
        (1.0..=10.0).contains(&per_100),
        "{name}: {per_100:.2} moves per 100 candles"
    );
}

#[test]
fn the_default_decides_at_a_usable_rate_with_two_strategies_behind_each_move() {
    check("sample", &sample());
    check("synthetic", &synthetic(7, 4000));
    check("synthetic-2", &synthetic(11, 4000));
}
