//! Pipeline tests over a scripted in-memory feed.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use manus_core::confluence::{Mode, Rule};
use manus_core::record::SignalRecord;
use manus_core::{Interval, SignalEngine};
use manus_exchange::feed::{FeedEvent, Origin, StreamKey};

use super::scripted::{closed, synthetic_candles, update};
use super::*;

fn key(sym: &str, interval: Interval) -> Arc<StreamKey> {
    Arc::new(StreamKey {
        symbol: sym.into(),
        interval,
    })
}

fn engine() -> SignalEngine {
    SignalEngine::from_ids(
        &["rsi_mean_reversion", "ema_crossover", "macd"],
        Rule::new(Mode::Any, 3),
    )
    .unwrap()
}

fn pipeline(keys: &[&Arc<StreamKey>], cfg: PipelineConfig) -> Pipeline {
    let ks: Vec<StreamKey> = keys.iter().map(|k| (***k).clone()).collect();
    Pipeline::new(engine(), &ks, cfg)
}

/// A writer the test can read back.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);
impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
impl Shared {
    fn records(&self) -> Vec<SignalRecord> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[test]
fn bootstrap_warms_up_live_and_backfill_emit_records() {
    let k = key("BTCUSDT", Interval::M1);
    let mut p = pipeline(&[&k], PipelineConfig::default());
    let cs = synthetic_candles(&k, 0, 60);
    let mut out = Vec::new();
    for (i, c) in cs.iter().enumerate() {
        let origin = match i {
            0..40 => Origin::Bootstrap,
            40..45 | 50..52 => Origin::Live,
            _ => Origin::Backfill,
        };
        if let Some(r) = p.on_event(closed(&k, *c, origin)).cloned() {
            out.push((origin, r));
        }
    }
    assert_eq!(out.len(), 20, "every non-bootstrap candle gives one record");
    let st = &p.streams()[0];
    assert_eq!(
        st.engine().candles(),
        60,
        "bootstrap candles go through the engine too"
    );
    assert_eq!((st.bootstrapped, st.live, st.backfilled), (40, 7, 13));
    for (origin, r) in &out {
        assert_eq!(r.backfilled, Some(*origin == Origin::Backfill));
        assert!(r.latency_us.is_some());
        assert_eq!(r.stale, None);
        assert_eq!(r.symbol, "BTCUSDT");
        assert_eq!(r.signals.0.len(), 3);
    }
    let times: Vec<i64> = out.iter().map(|(_, r)| r.open_time).collect();
    assert!(times.windows(2).all(|w| w[1] == w[0] + 60_000));
    assert_eq!(
        p.latency().count(),
        7,
        "only live candles are in the histogram"
    );
    let t = p.totals();
    assert_eq!(
        (t.records, t.live, t.backfilled, t.bootstrapped),
        (20, 7, 13, 40)
    );
}

#[test]
fn records_match_a_batch_run_of_the_same_engine() {
    // Live must say exactly what a backtest over the same candles says.
    let k = key("ETHUSDT", Interval::M5);
    let mut p = pipeline(&[&k], PipelineConfig::default());
    let mut batch = engine();
    for c in synthetic_candles(&k, 1_700_000_100_000, 200) {
        batch.on_closed(&c);
        let want = SignalRecord::from_engine("ETHUSDT", Interval::M5, &c, &batch);
        let got = p.on_event(closed(&k, c, Origin::Live)).unwrap();
        assert_eq!(got.signals, want.signals);
        assert_eq!(got.confluence, want.confluence);
        assert_eq!(got.agreeing, want.agreeing);
    }
}

#[test]
fn a_run_without_any_decision_ends_with_a_hint() {
    let k = key("BTCUSDT", Interval::M1);
    // Crossover strategies on a market that never moves: no view, no decision.
    let engine =
        SignalEngine::from_ids(&["ema_crossover", "macd"], Rule::new(Mode::Any, 2)).unwrap();
    let mut p = Pipeline::new(engine, &[(*k).clone()], PipelineConfig::default());
    let flat = |i: i64| manus_core::Candle {
        open_time: i * 60_000,
        close_time: i * 60_000 + 59_999,
        open: 100.0,
        high: 100.0,
        low: 100.0,
        close: 100.0,
        volume: 1.0,
    };
    assert_eq!(p.no_decision_hint(), None, "nothing emitted yet");
    for i in 0..50 {
        p.on_event(closed(&k, flat(i), Origin::Live));
    }
    assert_eq!(p.no_decision_hint(), None, "too short a run to judge");
    for i in 50..150 {
        p.on_event(closed(&k, flat(i), Origin::Live));
    }
    let hint = p.no_decision_hint().expect("no move in 150 candles");
    assert!(
        hint.contains("BTCUSDT") && hint.contains("0 BUY/SELL decisions in 150 candles"),
        "{hint}"
    );
    assert!(
        hint.contains("no selected strategy ever had a view"),
        "{hint}"
    );
    // A market that moves produces decisions, and the hint goes away.
    let mut p = pipeline(&[&k], PipelineConfig::default());
    for c in synthetic_candles(&k, 0, 400) {
        p.on_event(closed(&k, c, Origin::Live));
    }
    assert_eq!(p.no_decision_hint(), None);
}

#[test]
fn duplicates_and_out_of_order_candles_are_skipped() {
    let k = key("BTCUSDT", Interval::M1);
    let mut p = pipeline(&[&k], PipelineConfig::default());
    let cs = synthetic_candles(&k, 0, 3);
    assert!(p.on_event(closed(&k, cs[1], Origin::Live)).is_some());
    assert!(p.on_event(closed(&k, cs[1], Origin::Live)).is_none());
    assert!(p.on_event(closed(&k, cs[0], Origin::Backfill)).is_none());
    assert!(p.on_event(closed(&k, cs[2], Origin::Live)).is_some());
    assert_eq!(p.totals().out_of_order, 2);
    assert_eq!(p.streams()[0].engine().candles(), 2);
}

#[test]
fn window_is_a_bounded_ring() {
    let k = key("BTCUSDT", Interval::M1);
    let cfg = PipelineConfig {
        window: 10,
        ..PipelineConfig::default()
    };
    let mut p = pipeline(&[&k], cfg);
    let cs = synthetic_candles(&k, 0, 25);
    for c in &cs {
        p.on_event(closed(&k, *c, Origin::Live));
    }
    let w = p.streams()[0].window();
    assert_eq!(w.len(), 10);
    assert_eq!(w.front().unwrap().open_time, cs[15].open_time);
    assert_eq!(w.back().unwrap().open_time, cs[24].open_time);
}

#[test]
fn updates_give_a_provisional_signal_that_commits_nothing() {
    let k = key("BTCUSDT", Interval::M1);
    let mut p = pipeline(&[&k], PipelineConfig::default());
    let cs = synthetic_candles(&k, 0, 51);
    for c in &cs[..50] {
        p.on_event(closed(&k, *c, Origin::Bootstrap));
    }
    let mut forming = cs[50];
    forming.close = forming.open;
    assert!(p.on_event(update(&k, forming)).is_none());
    forming.close = cs[50].close;
    p.on_event(update(&k, forming));
    p.refresh_provisional(0);
    let st = &p.streams()[0];
    let (_, decisions) = st.provisional().expect("provisional computed");
    assert_eq!(decisions.len(), 3);
    assert_eq!(st.engine().candles(), 50, "provisional commits nothing");
    assert_eq!(st.forming.unwrap().close, cs[50].close);
    assert_eq!(st.prev_price, Some(cs[50].open));
    // The same candle closing clears the forming state.
    p.on_event(closed(&k, cs[50], Origin::Live));
    assert!(p.streams()[0].forming.is_none());
    assert!(p.streams()[0].provisional().is_none());
}

#[test]
fn stale_streams_pause_signals_and_mark_the_next_record() {
    let k = key("BTCUSDT", Interval::M1);
    let mut p = pipeline(&[&k], PipelineConfig::default());
    let cs = synthetic_candles(&k, 0, 4);
    p.on_event(closed(&k, cs[0], Origin::Live));
    p.on_event(FeedEvent::Stale {
        key: k.clone(),
        stale: true,
    });
    assert!(p.streams()[0].stale);
    p.on_event(update(&k, cs[1]));
    p.refresh_provisional(0);
    assert!(
        p.streams()[0].provisional().is_none(),
        "no signal while stale"
    );
    p.on_event(FeedEvent::Stale {
        key: k.clone(),
        stale: false,
    });
    let r = p.on_event(closed(&k, cs[1], Origin::Backfill)).unwrap();
    assert_eq!(r.stale, Some(true), "first record after staleness says so");
    let r = p.on_event(closed(&k, cs[2], Origin::Live)).unwrap();
    assert_eq!(r.stale, None);
    // A closed candle arriving while still marked stale ends the stale period itself.
    p.on_event(FeedEvent::Stale {
        key: k.clone(),
        stale: true,
    });
    let r = p.on_event(closed(&k, cs[3], Origin::Live)).unwrap();
    assert_eq!(r.stale, Some(true));
    assert!(!p.streams()[0].stale);
}

#[test]
fn connection_events_update_the_state() {
    let k = key("BTCUSDT", Interval::M1);
    let mut p = pipeline(&[&k], PipelineConfig::default());
    assert_eq!(*p.conn(), ConnState::Connecting);
    p.on_event(FeedEvent::Connected {
        url: "ws://x".into(),
    });
    assert_eq!(*p.conn(), ConnState::Connected("ws://x".into()));
    p.on_event(FeedEvent::Disconnected {
        reason: manus_exchange::feed::CloseReason::Read("reset".into()),
    });
    assert_eq!(*p.conn(), ConnState::Disconnected("read: reset".into()));
    p.on_event(FeedEvent::Reconnecting {
        in_ms: 100,
        attempt: 2,
    });
    assert_eq!(
        *p.conn(),
        ConnState::Reconnecting {
            attempt: 2,
            in_ms: 100
        }
    );
}

#[tokio::test]
async fn headless_run_writes_json_lines_and_stops_at_max_candles() {
    let a = key("BTCUSDT", Interval::M1);
    let b = key("ETHUSDT", Interval::M5);
    let mut events = vec![FeedEvent::Connected { url: "x".into() }];
    let ca = synthetic_candles(&a, 0, 40);
    let cb = synthetic_candles(&b, 0, 40);
    for i in 0..40 {
        let origin = if i < 20 {
            Origin::Bootstrap
        } else {
            Origin::Live
        };
        events.push(closed(&a, ca[i], origin));
        events.push(update(&b, cb[i]));
        events.push(closed(&b, cb[i], origin));
    }
    let mut feed = ScriptedFeed::new(events);
    let cfg = PipelineConfig {
        max_candles: Some(25),
        ..PipelineConfig::default()
    };
    let mut p = pipeline(&[&a, &b], cfg);
    let out = Shared::default();
    let mut sink = RecordSink::new(Box::new(out.clone()));
    let mut shutdown = Shutdown::install().unwrap();
    let stop = run_headless(&mut feed, &mut p, &mut sink, &mut shutdown)
        .await
        .unwrap();
    assert_eq!(stop, Stop::MaxCandles);
    let recs = out.records();
    assert_eq!(recs.len(), 25);
    assert_eq!(sink.written(), 25);
    assert!(feed.remaining() > 0, "stopped before the script ended");
    for sym in ["BTCUSDT", "ETHUSDT"] {
        let t: Vec<i64> = recs
            .iter()
            .filter(|r| r.symbol == sym)
            .map(|r| r.open_time)
            .collect();
        assert!(t.windows(2).all(|w| w[0] < w[1]), "{sym}: {t:?}");
    }
}

#[tokio::test]
async fn headless_run_reports_the_end_of_the_feed() {
    let a = key("BTCUSDT", Interval::M1);
    let cs = synthetic_candles(&a, 0, 5);
    let mut feed = ScriptedFeed::new(cs.iter().map(|c| closed(&a, *c, Origin::Live)));
    let mut p = pipeline(&[&a], PipelineConfig::default());
    let out = Shared::default();
    let mut sink = RecordSink::new(Box::new(out.clone()));
    let mut shutdown = Shutdown::install().unwrap();
    let stop = run_headless(&mut feed, &mut p, &mut sink, &mut shutdown)
        .await
        .unwrap();
    assert_eq!(stop, Stop::FeedEnded);
    assert_eq!(out.records().len(), 5);
}

#[test]
fn feed_lag_is_shown_only_when_the_clocks_agree() {
    let k = key("BTCUSDT", Interval::M1);
    let mut p = pipeline(&[&k], PipelineConfig::default());
    let cs = synthetic_candles(&k, 0, 2);
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let with_event_time = |c, t| FeedEvent::Update {
        key: k.clone(),
        candle: c,
        arrival: manus_exchange::feed::Arrival {
            event_time: t,
            received_at: std::time::Instant::now(),
        },
    };
    assert_eq!(p.feed_lag_ms(), None, "nothing heard yet");
    p.on_event(with_event_time(cs[0], wall - 250));
    let lag = p
        .feed_lag_ms()
        .expect("a lag from an exchange clock like ours");
    assert!((250..60_000).contains(&lag), "lag {lag} ms");
    // An accelerated (simulated) market clock hours ahead of the wall clock is not a lag.
    p.on_event(with_event_time(cs[1], wall + 10 * 3_600_000));
    assert_eq!(p.feed_lag_ms(), None);
}

#[test]
fn a_full_disk_names_the_file() {
    // /dev/full answers every write with ENOSPC, as a full disk does.
    let path = std::path::Path::new("/dev/full");
    let mut sink = RecordSink::file(path).unwrap();
    let k = key("BTCUSDT", Interval::M1);
    let mut p = pipeline(&[&k], PipelineConfig::default());
    let mut result = Ok(());
    for c in synthetic_candles(&k, 0, 3000) {
        if let Some(rec) = p.on_event(closed(&k, c, Origin::Live)) {
            result = sink.write(rec).and_then(|()| sink.flush());
            if result.is_err() {
                break;
            }
        }
    }
    let e = result.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::StorageFull);
    assert!(e.to_string().starts_with("/dev/full: "), "{e}");
}

#[test]
fn feed_events_read_as_one_plain_line_each() {
    use super::pipeline::{Level, describe, plural};
    let k = key("SOLUSDT", Interval::M1);
    struct Case {
        ev: FeedEvent,
        want: Option<(Level, &'static str)>,
    }
    let cases = [
        Case {
            ev: FeedEvent::Backfilled {
                key: k.clone(),
                count: 1,
            },
            want: Some((Level::Info, "SOLUSDT 1m: backfilled 1 candle")),
        },
        Case {
            ev: FeedEvent::Backfilled {
                key: k.clone(),
                count: 12,
            },
            want: Some((Level::Info, "SOLUSDT 1m: backfilled 12 candles")),
        },
        Case {
            ev: FeedEvent::Disconnected {
                reason: manus_exchange::feed::CloseReason::Read("connection reset".into()),
            },
            want: Some((Level::Warn, "disconnected: read: connection reset")),
        },
        Case {
            ev: FeedEvent::Reconnecting {
                in_ms: 250,
                attempt: 2,
            },
            want: Some((Level::Info, "reconnecting in 250 ms (attempt 2)")),
        },
        Case {
            ev: FeedEvent::Stale {
                key: k.clone(),
                stale: true,
            },
            want: None,
        },
    ];
    for c in cases {
        let got = describe(&c.ev);
        let want = c.want.map(|(l, t)| (l, t.to_string()));
        assert_eq!(got, want, "{:?}", c.ev);
    }
    assert_eq!(plural(0, "candle"), "0 candles");
    assert_eq!(plural(1, "candle"), "1 candle");
}

#[test]
fn a_backfill_is_logged_once() {
    let log = Shared::default();
    let writer = log.clone();
    let sub = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let k = key("SOLUSDT", Interval::M1);
    let mut p = pipeline(&[&k], PipelineConfig::default());
    tracing::subscriber::with_default(sub, || {
        p.on_event(FeedEvent::Backfilled {
            key: k.clone(),
            count: 1,
        });
    });
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.matches("backfilled").count(), 1, "{text}");
    assert!(text.contains("SOLUSDT 1m: backfilled 1 candle\n"), "{text}");
}

/// Closed candles delivered at a steady cadence on the runtime's clock, stamped on delivery
/// like socket frames; counts the warm-ups asked of it.
struct PacedFeed {
    events: std::collections::VecDeque<(std::time::Duration, FeedEvent)>,
    start: tokio::time::Instant,
    warms: u64,
    counters: Arc<manus_exchange::feed::FeedCounters>,
}

impl manus_exchange::feed::MarketFeed for PacedFeed {
    async fn next(&mut self) -> Option<FeedEvent> {
        // Cancel-safe, as `MarketFeed::next` must be: the event is taken only once it is due.
        let at = self.events.front()?.0;
        tokio::time::sleep_until(self.start + at).await;
        let (_, mut ev) = self.events.pop_front()?;
        if let FeedEvent::Closed { arrival, .. } = &mut ev {
            arrival.received_at = tokio::time::Instant::now().into_std();
        }
        Some(ev)
    }
    fn counters(&self) -> Arc<manus_exchange::feed::FeedCounters> {
        self.counters.clone()
    }
    fn warm(&mut self) {
        self.warms += 1;
    }
}

/// Runs 60 bootstrap and 40 live candles, one every 20 ms of the paused clock, through
/// `run_headless` with `prewarm`; returns the records and the warm-ups of pipeline and feed.
async fn paced_run(prewarm: std::time::Duration) -> (Vec<SignalRecord>, u64, u64) {
    use std::time::Duration;
    let k = key("BTCUSDT", Interval::M1);
    let cs = synthetic_candles(&k, 0, 100);
    let events = cs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (at, origin) = if i < 60 {
                (Duration::ZERO, Origin::Bootstrap)
            } else {
                (Duration::from_millis(20 * (i as u64 - 59)), Origin::Live)
            };
            (at, closed(&k, *c, origin))
        })
        .collect();
    let mut feed = PacedFeed {
        events,
        start: tokio::time::Instant::now(),
        warms: 0,
        counters: Arc::default(),
    };
    let cfg = PipelineConfig {
        prewarm,
        ..PipelineConfig::default()
    };
    let mut p = pipeline(&[&k], cfg);
    let out = Shared::default();
    let mut sink = RecordSink::new(Box::new(out.clone()));
    let (_stopper, mut shutdown) = Shutdown::manual();
    let stop = run_headless(&mut feed, &mut p, &mut sink, &mut shutdown)
        .await
        .unwrap();
    assert_eq!(stop, Stop::FeedEnded);
    (out.records(), p.warm_runs(), feed.warms)
}

#[tokio::test(start_paused = true)]
async fn the_candle_path_is_warmed_before_each_due_candle_and_nothing_changes() {
    use std::time::Duration;
    let (warm, runs, feed_warms) = paced_run(Duration::from_millis(3)).await;
    let (cold, cold_runs, cold_feed_warms) = paced_run(Duration::ZERO).await;
    assert_eq!(
        (cold_runs, cold_feed_warms),
        (0, 0),
        "zero lead never warms"
    );
    // The cadence is known from the second live candle on: every later one is warmed for,
    // starting 3 ms early and again every REWARM (tokio's 1 ms) until it comes.
    assert!(runs >= 38 * 3, "{runs} warm-ups for 38 candles");
    assert!(
        runs <= 38 * 8,
        "{runs} warm-ups: the wait must end with the frame"
    );
    assert_eq!(
        feed_warms, runs,
        "the feed's parser is warmed with the engine"
    );
    assert_eq!(warm.len(), 40);
    assert_eq!(warm.len(), cold.len());
    for (w, c) in warm.iter().zip(&cold) {
        let strip = |r: &SignalRecord| SignalRecord {
            latency_us: None,
            ..r.clone()
        };
        assert_eq!(strip(w), strip(c), "a warm-up changed a record");
    }
}
