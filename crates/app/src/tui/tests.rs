//! Dashboard rendering tests on ratatui's `TestBackend`.

use std::sync::Arc;
use std::time::Duration;

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
    render_at(app, 140, 40)
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
        "since open",
        "confluence",
        "provisional",
        "Strategies",
        "rsi_mean_reversion",
        "smc_bos",
        "Recent moves",
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

fn render_at(app: &mut App, width: u16, height: u16) -> String {
    app.prepare();
    let mut t = Terminal::new(TestBackend::new(width, height)).unwrap();
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
fn layout_holds_at_small_medium_and_large_terminals() {
    for (w, h) in [(80, 24), (120, 40), (200, 60)] {
        let mut a = app();
        let screen = render_at(&mut a, w, h);
        if std::env::var_os("MANUS_SHOW_TUI").is_some() {
            eprintln!("{w}x{h}:\n{screen}");
        }
        let st = &a.pipeline.streams()[0];
        // Every panel, every strategy id whole, the footer.
        for want in [
            "Market Manus · demo",
            "BTCUSDT 1m",
            "last ",
            "confluence",
            "quit",
        ] {
            assert!(screen.contains(want), "{w}x{h}: missing {want:?}\n{screen}");
        }
        for (s, last) in st.engine().slots().iter().zip(st.engine().decisions()) {
            assert!(screen.contains(s.id()), "{w}x{h}: {} cut\n{screen}", s.id());
            // A reason is shown whole or cut at a word with an ellipsis, never mid-word.
            let reason = last.reason.to_string();
            let line = screen.lines().find(|l| l.contains(s.id())).unwrap();
            let shown = line.contains(&reason)
                || reason
                    .split(' ')
                    .next()
                    .is_some_and(|first| line.contains(first) && line.contains('…'));
            assert!(shown, "{w}x{h}: reason {reason:?} in {line:?}");
        }
        // The price chart: a Braille line across the panel and a labelled price axis.
        let braille = screen
            .chars()
            .filter(|c| ('\u{2801}'..='\u{28FF}').contains(c))
            .count();
        assert!(
            braille >= usize::from(w) / 4,
            "{w}x{h}: chart of {braille} cells\n{screen}"
        );
        let (lo, hi) = st
            .window()
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), c| {
                (lo.min(c.close), hi.max(c.close))
            });
        let _ = (lo, hi);
        assert!(
            screen.lines().any(|l| l.contains('m') && l.contains(':')),
            "{w}x{h}: a time axis\n{screen}"
        );
        if h >= 40 {
            assert!(screen.contains("Recent moves"), "{w}x{h}\n{screen}");
            assert!(screen.contains("Messages"), "{w}x{h}\n{screen}");
        }
    }
}

#[test]
fn text_is_cut_at_words_and_changes_use_the_price_precision() {
    use super::view::{fit, fit_list, fmt_change, fmt_span};
    assert_eq!(fit("RSI 61.35 neutral", 40), "RSI 61.35 neutral");
    assert_eq!(
        fit("BOS up: close 101.20 > swing high 100.90", 20),
        "BOS up: close…"
    );
    assert_eq!(fit("a, b, c", 5), "a…");
    let ids: Vec<String> = ["ema_crossover", "macd", "bollinger_breakout"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        fit_list(&ids, 80),
        "ema_crossover, macd, bollinger_breakout"
    );
    assert_eq!(fit_list(&ids, 30), "ema_crossover, macd, +1 more");
    assert_eq!(fmt_change(0.394, 3012.5), "+0.39");
    assert_eq!(fmt_change(-0.000123, 0.05), "-0.000123");
    assert_eq!(fmt_span(Duration::from_secs(150 * 60)), "2h 30m");
    assert_eq!(
        fmt_span(Duration::from_secs(3 * 86_400 + 4 * 3600)),
        "3d 4h"
    );
    assert_eq!(fmt_span(Duration::from_secs(45 * 60)), "45m");
}
