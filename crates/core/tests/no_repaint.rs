//! No repainting, proven by replay.
//!
//! A strategy repaints when what it says about candle `t` depends on candles after `t` — the
//! look-ahead that makes SMC back-tests (swing points "known" before their right side closed)
//! look several times better than they trade. These tests replay a long series candle by
//! candle through all 11 strategies and the confluence rule and check that:
//!
//! 1. for many prefix lengths `n`, a fresh engine fed only the first `n` candles emits exactly
//!    (bit for bit: action, score, reason, confluence) the first `n` outputs of the full run —
//!    so no output for a past candle changes when later candles arrive;
//! 2. evaluating forming candles with [`SignalEngine::provisional`] between closes changes
//!    nothing;
//! 3. at the detector level, a swing is reported exactly `swing_length` candles after its bar
//!    and equals what hindsight finds there, and every break and sweep uses a swing confirmed
//!    before the breaking candle;
//! 4. the SMC strategies do fire (both ways) on these series, so (1) is not vacuous.
//!
//! Series: `data/btcusdt_5m_sample.csv` (3000 candles) and a seeded synthetic series with
//! trends, volatility clustering and gaps.

use manus_core::testing::{sample, synthetic};

use manus_core::confluence::{Mode, Rule};
use manus_core::smc::liquidity::{Liquidity, SweepEvent};
use manus_core::smc::structure::Structure;
use manus_core::smc::swing::Swings;
use manus_core::strategy::IDS;
use manus_core::{Action, Candle, SignalEngine};

fn series() -> Vec<(&'static str, Vec<Candle>)> {
    vec![("sample", sample()), ("synthetic", synthetic(7, 4000))]
}

/// Everything the engine emits for one closed candle, comparable bit for bit.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    /// Per strategy: view, score bits, reason, and whether the view began on this candle.
    decisions: Vec<(Action, u64, String, bool)>,
    /// Decision, confidence bits, agreeing, events, votes, warming up.
    confluence: (Action, u64, u64, u64, [u32; 3], bool),
}

fn engine() -> SignalEngine {
    SignalEngine::from_ids(&IDS, Rule::new(Mode::Majority, IDS.len())).expect("all ids build")
}

fn step(e: &mut SignalEngine, c: &Candle) -> Step {
    let o = e.on_closed(c);
    Step {
        decisions: e
            .decisions()
            .iter()
            .map(|d| (d.action, d.score.to_bits(), d.reason.to_string(), d.event))
            .collect(),
        confluence: (
            o.action,
            o.confidence.to_bits(),
            o.agreeing,
            o.events,
            [o.votes.buy, o.votes.sell, o.votes.none],
            e.warming_up(),
        ),
    }
}

fn replay(cs: &[Candle]) -> Vec<Step> {
    let mut e = engine();
    cs.iter().map(|c| step(&mut e, c)).collect()
}

/// Prefix lengths: every length through the SMC warm-up, then spread over the whole series.
fn prefix_lengths(len: usize) -> Vec<usize> {
    let mut ns: Vec<usize> = (1..=16).collect();
    ns.extend((1..=8).map(|k| k * len / 8));
    // Odd offsets too, so cuts land inside swings, gaps and zones of every phase.
    ns.extend((0..8).map(|k| (k * len / 8 + 37 * k + 13).min(len)));
    ns.sort_unstable();
    ns.dedup();
    ns
}

#[test]
fn past_outputs_never_change_when_later_candles_arrive() {
    for (name, cs) in series() {
        let full = replay(&cs);
        assert_eq!(full.len(), cs.len());
        for n in prefix_lengths(cs.len()) {
            let prefix = replay(&cs[..n]);
            for (t, (a, b)) in prefix.iter().zip(&full).enumerate() {
                assert_eq!(
                    a, b,
                    "{name}: output for candle {t} differs between a {n}-candle run and the full run"
                );
            }
        }
    }
}

#[test]
fn evaluating_forming_candles_changes_nothing() {
    let cs = synthetic(11, 1500);
    let full = replay(&cs);
    let mut e = engine();
    for (t, c) in cs.iter().enumerate() {
        // Three snapshots of the candle while it forms: early, wild wicks, almost closed.
        for (k, f) in [0.3, 2.0, 0.95].into_iter().enumerate() {
            let mut forming = *c;
            forming.high = c.open.max(c.close) + f * (c.high - c.open.max(c.close));
            forming.low = c.open.min(c.close) - f * (c.open.min(c.close) - c.low);
            forming.close = if k == 1 { forming.high } else { c.close };
            let _ = e.provisional(&forming);
        }
        assert_eq!(step(&mut e, c), full[t], "candle {t}");
    }
}

#[test]
fn detectors_only_use_confirmed_swings() {
    for (name, cs) in series() {
        for length in [1usize, 3, 5, 8] {
            // Swings: reported on candle t for bar t - L, and exactly what hindsight finds there.
            let mut swings = Swings::new(length);
            let mut reported = (0, 0);
            for (t, c) in cs.iter().enumerate() {
                let got = swings.update(c);
                for (p, is_high) in [(got.high, true), (got.low, false)] {
                    let Some(p) = p else { continue };
                    let i = p.index as usize;
                    assert_eq!(
                        i + length,
                        t,
                        "{name} L={length}: reported on the confirming candle"
                    );
                    let v = |j: usize| if is_high { cs[j].high } else { -cs[j].low };
                    let left = (i - length..i).all(|j| v(i) > v(j));
                    let right = (i + 1..=t).all(|j| v(i) >= v(j));
                    assert!(left && right, "{name} L={length}: bar {i} is a real swing");
                    if is_high {
                        reported.0 += 1;
                    } else {
                        reported.1 += 1;
                    }
                }
            }
            // Hindsight count over the same candles (bars whose right side has closed).
            let mut expected = (0, 0);
            for i in length..cs.len().saturating_sub(length) {
                let hi = (i - length..i).all(|j| cs[i].high > cs[j].high)
                    && (i + 1..=i + length).all(|j| cs[i].high >= cs[j].high);
                let lo = (i - length..i).all(|j| cs[i].low < cs[j].low)
                    && (i + 1..=i + length).all(|j| cs[i].low <= cs[j].low);
                expected.0 += usize::from(hi);
                expected.1 += usize::from(lo);
            }
            assert_eq!(reported, expected, "{name} L={length}: every swing, once");

            // Breaks: the broken swing was confirmed before the breaking candle.
            let mut structure = Structure::new(length);
            let mut breaks = 0;
            for c in &cs {
                if let Some(b) = structure.update(c).brk {
                    assert!(b.swing_index + (length as u64) < b.index, "{name}: {b:?}");
                    let level = if b.side == manus_core::smc::Side::Bull {
                        cs[b.swing_index as usize].high
                    } else {
                        cs[b.swing_index as usize].low
                    };
                    assert_eq!(b.level, level, "{name}: the level is the swing bar's");
                    breaks += 1;
                }
            }
            assert!(breaks > 0, "{name} L={length}: some breaks");

            // Sweeps: the swept level is a swing confirmed before the sweeping candle.
            let mut liq = Liquidity::new(length, 0.05, 5, 300);
            let mut confirmed: Vec<f64> = Vec::new();
            for (t, c) in cs.iter().enumerate() {
                let u = liq.update(c);
                if let SweepEvent::Sweep(s) = u.event {
                    assert!(
                        confirmed.contains(&s.level),
                        "{name} L={length}: candle {t} swept {} before it was confirmed",
                        s.level
                    );
                }
                confirmed.extend(u.swings.high.map(|p| p.price));
                confirmed.extend(u.swings.low.map(|p| p.price));
            }
        }
    }
}

#[test]
fn smc_strategies_fire_both_ways() {
    for (name, cs) in series() {
        let full = replay(&cs);
        for (i, id) in IDS.iter().enumerate() {
            let events = |a: Action| {
                full.iter()
                    .filter(|s| s.decisions[i].0 == a && s.decisions[i].3)
                    .count()
            };
            let views = full
                .iter()
                .filter(|s| s.decisions[i].0 != Action::Hold)
                .count();
            let (buys, sells) = (events(Action::Buy), events(Action::Sell));
            if id.starts_with("smc_") {
                assert!(
                    buys > 0 && sells > 0,
                    "{name}: {id} BUY {buys} SELL {sells}"
                );
                // SMC signals are events on single candles, not states: far from every candle.
                assert!(
                    buys + sells < cs.len() / 3,
                    "{name}: {id} fires {}",
                    buys + sells
                );
                // Their views outlast the event candle (hold > 1), so the replay above also
                // covers views carried over candles, not only events.
                assert!(
                    views > buys + sells,
                    "{name}: {id} views {views}, events {}",
                    buys + sells
                );
            }
        }
    }
}
