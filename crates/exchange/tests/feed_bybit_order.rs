//! Bybit does not document whether `confirm=true` for candle N comes before or after the first
//! push of N+1: either order must give the same closed candles, with no REST call and no
//! correction, and event times from the push's `ts` (not the last trade's `timestamp`).

mod feed_common;

use std::time::Duration;

use feed_common::*;
use futures_util::SinkExt;
use manus_exchange::sim::SimExchange;
use manus_exchange::{ExchangeKind, Feed, FeedEvent};
use tokio_tungstenite::tungstenite::Message;

const T: i64 = 1_000 * 60_000;

/// A Bybit kline push for the 1m candle opening at `open`, pushed at `ts`; the last trade was
/// a while before (`timestamp`), as on a quiet market.
fn push(open: i64, close: f64, confirm: bool, ts: i64) -> String {
    format!(
        r#"{{"topic":"kline.1.BTCUSDT","data":[{{"start":{open},"end":{end},"interval":"1","open":"100","close":"{close}","high":"200","low":"50","volume":"1.5","turnover":"150","confirm":{confirm},"timestamp":{last}}}],"ts":{ts},"type":"snapshot"}}"#,
        end = open + 59_999,
        last = ts - 7_000,
    )
}

/// Runs `script` through a feed and returns what it yielded (as text) and the REST calls it
/// made after connecting.
async fn run(script: Vec<String>) -> (Vec<String>, u64) {
    let sim = SimExchange::start(sim_config(&["BTCUSDT"], 50))
        .await
        .expect("sim starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(tcp)
            .await
            .expect("handshake");
        for f in script {
            ws.send(Message::text(f)).await.expect("send");
        }
        std::future::pending::<()>().await;
    });
    let mut cfg = feed_config(&sim, ExchangeKind::Bybit, &["BTCUSDT"], 0);
    cfg.ws_url = format!("ws://{addr}");
    cfg.silence_timeout = Duration::from_secs(5);
    cfg.candle_period = Some(Duration::from_secs(5));
    let mut feed = Feed::connect(cfg).await.expect("connect");
    let calls_after_connect = sim.stats().rest_calls;
    let mut out = Vec::new();
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(3), feed.next()).await {
        let last =
            matches!(&ev, FeedEvent::Closed { candle, .. } if candle.open_time == T + 60_000);
        match ev {
            FeedEvent::Update { candle, .. } => {
                out.push(format!("update {} {}", candle.open_time - T, candle.close))
            }
            FeedEvent::Closed {
                candle, arrival, ..
            } => out.push(format!(
                "closed {} {} at {}",
                candle.open_time - T,
                candle.close,
                arrival.event_time - T
            )),
            FeedEvent::Correction { .. } => out.push("correction".into()),
            FeedEvent::Backfilled { count, .. } => out.push(format!("backfilled {count}")),
            _ => {}
        }
        if last {
            break;
        }
    }
    let calls = sim.stats().rest_calls - calls_after_connect;
    feed.shutdown().await;
    server.abort();
    sim.shutdown().await;
    (out, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn either_order_of_a_final_and_the_next_first_push_gives_the_same_candles() {
    let m = 60_000;
    // The final of N before the first push of N+1 (the usual order).
    // Each starts with a closed candle, so the feed knows which one it expects next.
    let final_first = vec![
        push(T - m, 105.0, true, T + 5),
        push(T, 110.0, false, T + 30_000),
        push(T, 120.0, true, T + m + 5),
        push(T + m, 150.0, false, T + m + 10),
        push(T + m, 160.0, true, T + 2 * m + 5),
    ];
    // The first push of N+1 before the final of N.
    let next_first = vec![
        push(T - m, 105.0, true, T + 5),
        push(T, 110.0, false, T + 30_000),
        push(T + m, 150.0, false, T + m + 3),
        push(T, 120.0, true, T + m + 5),
        push(T + m, 160.0, true, T + 2 * m + 5),
    ];
    let (a, calls_a) = run(final_first).await;
    let (b, calls_b) = run(next_first).await;
    assert_eq!(
        a,
        [
            "closed -60000 105 at 5",
            "update 0 110",
            "closed 0 120 at 60005",
            "update 60000 150",
            "closed 60000 160 at 120005",
        ]
    );
    assert_eq!(
        b,
        [
            "closed -60000 105 at 5",
            "update 0 110",
            "update 60000 150",
            "closed 0 120 at 60005",
            "closed 60000 160 at 120005",
        ]
    );
    assert_eq!((calls_a, calls_b), (0, 0), "no REST call for either order");
}
