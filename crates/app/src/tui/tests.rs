//! Dashboard rendering tests on ratatui's `TestBackend`.

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use manus_core::confluence::{Mode, Rule};
use manus_core::{Interval, SignalEngine};
use manus_exchange::feed::{FeedCounters, FeedEvent, Origin, StreamKey};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::*;
use crate::live::scripted::{closed, synthetic_candles, update};
use crate::live::{Pipeline, PipelineConfig};

fn keys() -> Vec<Arc<StreamKey>> {
    vec![
        Arc::new(StreamKey {
            symbol: "BTCUSDT".into(),
            interval: Interval::M1,
        }),
        Arc::new(StreamKey {
            symbol: "ETHUSDT".into(),
            interval: Interval::H1,
        }),
    ]
}

fn app() -> App {
    let ks = keys();
    let engine = SignalEngine::from_ids(
        &["rsi_mean_reversion", "macd", "smc_bos"],
        Rule::new(Mode::Any, 3),
    )
    .unwrap();
    let plain: Vec<StreamKey> = ks.iter().map(|k| (**k).clone()).collect();
    let mut p = Pipeline::new(engine, &plain, PipelineConfig::default());
    p.on_event(FeedEvent::Connected {
        url: "ws://127.0.0.1:1/stream".into(),
    });
    let cs = synthetic_candles(&ks[0], 0, 120);
    for (i, c) in cs.iter().enumerate() {
        let origin = if i < 100 {
            Origin::Bootstrap
        } else {
            Origin::Live
        };
        p.on_event(closed(&ks[0], *c, origin));
    }
    let mut forming = synthetic_candles(&ks[0], 0, 121)[120];
    p.on_event(update(&ks[0], forming));
    forming.close += 1.0;
    p.on_event(update(&ks[0], forming));
    let counters = Arc::new(FeedCounters::default());
    for _ in 0..7 {
        FeedCounters::bump(&counters.reconnections);
    }
    let messages = MessageLog::default();
    messages.push("WARN disconnected: connection reset");
    App::new(p, counters, messages, "demo")
}

fn render(app: &mut App) -> String {
    app.prepare();
    let mut t = Terminal::new(TestBackend::new(140, 40)).unwrap();
    t.draw(|f| f.render_widget(&*app, f.area())).unwrap();
    let buf = t.backend().buffer().clone();
    let mut s = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

#[test]
fn dashboard_shows_every_panel() {
    let mut a = app();
    let screen = render(&mut a);
    for want in [
        "Market Manus · demo",
        "connected ws://127.0.0.1:1/stream",
        "latency p50",
        "reconnections 7",
        "BTCUSDT 1m",
        "since candle open",
        "confluence",
        "provisional",
        "Strategies",
        "rsi_mean_reversion",
        "smc_bos",
        "Recent decisions",
        "disconnected: connection reset",
        "next stream (1/2)",
        "candles live 20 · backfilled 0 · warm-up 100",
        "views ",
        " none",
    ] {
        assert!(screen.contains(want), "missing {want:?} in\n{screen}");
    }
    // The strategies table shows the indicator value behind each signal.
    assert!(
        screen.contains("RSI") || screen.contains("warming up"),
        "{screen}"
    );
}

#[test]
fn tab_cycles_streams_and_q_quits() {
    let mut a = app();
    a.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    assert_eq!(a.selected(), 1);
    let screen = render(&mut a);
    assert!(screen.contains("ETHUSDT 1h"), "{screen}");
    assert!(screen.contains("next stream (2/2)"));
    assert!(
        screen.contains("warming up"),
        "no data yet for ETHUSDT: {screen}"
    );
    a.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    assert_eq!(a.selected(), 0);
    a.on_key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    assert_eq!(a.selected(), 1);
    assert!(!a.quit_requested());
    a.on_key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE));
    assert!(a.quit_requested());
}

#[test]
fn stale_stream_says_so() {
    let mut a = app();
    a.pipeline.on_event(FeedEvent::Stale {
        key: keys()[0].clone(),
        stale: true,
    });
    let screen = render(&mut a);
    assert!(screen.contains("STALE"), "{screen}");
    assert!(screen.contains("provisional –"), "{screen}");
}

#[test]
fn header_shows_store_queues_only_with_a_store() {
    use std::sync::atomic::Ordering;

    use crate::alerts::worker::DeliveryStats;
    use crate::store::sink::SinkStats;

    let mut a = app();
    assert!(!render(&mut a).contains("store:"), "no --db, no store line");

    let sink = Arc::new(SinkStats::default());
    let delivery = Arc::new(DeliveryStats::default());
    a.set_store_stats(StoreStats {
        sink: sink.clone(),
        delivery: Some(delivery.clone()),
    });
    sink.depth.store(3, Ordering::Relaxed);
    sink.capacity.store(1024, Ordering::Relaxed);
    sink.written.store(41, Ordering::Relaxed);
    sink.dropped.store(2, Ordering::Relaxed);
    sink.alerts_queued.store(5, Ordering::Relaxed);
    delivery.delivered.store(4, Ordering::Relaxed);
    delivery.failed.store(1, Ordering::Relaxed);
    let screen = render(&mut a);
    let want =
        "store: queued 3/1024 · written 41 · dropped 2 · alerts: queued 5 delivered 4 failed 1";
    assert!(screen.contains(want), "missing {want:?} in\n{screen}");
    // The other header lines are still there.
    assert!(screen.contains("reconnections 7"), "{screen}");

    // Counters are read live from the shared atomics on every frame.
    sink.written.fetch_add(1, Ordering::Relaxed);
    assert!(render(&mut a).contains("written 42"));

    // Without notifiers, alerts are shown as off.
    a.set_store_stats(StoreStats {
        sink,
        delivery: None,
    });
    let screen = render(&mut a);
    assert!(screen.contains("dropped 2 · alerts: off"), "{screen}");
}

#[test]
fn message_log_captures_tracing_lines() {
    let log = MessageLog::default();
    let d = log.dispatch();
    tracing::dispatcher::with_default(&d, || tracing::warn!("feed went quiet"));
    let lines = log.newest(5);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains("WARN") && lines[0].contains("feed went quiet"),
        "{lines:?}"
    );
}

#[test]
fn formats() {
    assert_eq!(view::fmt_us(42), "42 µs");
    assert_eq!(view::fmt_us(1500), "1.50 ms");
    assert_eq!(view::fmt_clock(3_723_000), "01:02:03");
    assert_eq!(
        view::fmt_uptime(std::time::Duration::from_secs(3725)),
        "01:02:05"
    );
}
