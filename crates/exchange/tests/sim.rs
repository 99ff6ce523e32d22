//! The simulated exchange over real loopback sockets: REST klines (paging, limits, the forming
//! row, error payloads), Binance raw and combined streams, Bybit v5, truth equality, and the
//! fault drills (drops, silence, malformed frames, duplicate finals, 429 + Retry-After).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use manus_core::{Candle, Interval};
use manus_exchange::sim::{FaultPlan, SimConfig, SimExchange, SimSource};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn cfg(candle_ms: u64, history: usize) -> SimConfig {
    SimConfig {
        candle_ms,
        history,
        ..SimConfig::default()
    }
}

async fn start(c: SimConfig) -> SimExchange {
    SimExchange::start(c).await.expect("sim starts")
}

fn http() -> reqwest::Client {
    manus_exchange::tls::install_crypto_provider();
    reqwest::Client::new()
}

async fn get(url: String) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = http().get(url).send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body: Value = r.json().await.expect("json body");
    (status, headers, body)
}

fn num(v: &Value) -> f64 {
    v.as_str().expect("string number").parse().expect("number")
}

fn row_candle(r: &Value) -> Candle {
    Candle {
        open_time: r[0].as_i64().unwrap(),
        close_time: r[6].as_i64().unwrap(),
        open: num(&r[1]),
        high: num(&r[2]),
        low: num(&r[3]),
        close: num(&r[4]),
        volume: num(&r[5]),
    }
}

/// A Binance kline event payload as (candle, closed).
fn event_candle(d: &Value) -> (Candle, bool) {
    assert_eq!(d["e"], "kline");
    let k = &d["k"];
    assert_eq!(d["s"], k["s"]);
    let c = Candle {
        open_time: k["t"].as_i64().unwrap(),
        close_time: k["T"].as_i64().unwrap(),
        open: num(&k["o"]),
        high: num(&k["h"]),
        low: num(&k["l"]),
        close: num(&k["c"]),
        volume: num(&k["v"]),
    };
    (c, k["x"].as_bool().unwrap())
}

async fn next_text(ws: &mut Ws) -> Option<String> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")?;
        match msg {
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Reads frames until `n` finals arrived; returns every parsed (candle, closed) seen.
async fn read_finals(ws: &mut Ws, n: usize, combined: bool) -> Vec<(Candle, bool)> {
    let mut out = Vec::new();
    while out.iter().filter(|(_, x)| *x).count() < n {
        let t = next_text(ws).await.expect("stream open");
        let v: Value = serde_json::from_str(&t).expect("valid json");
        let data = if combined {
            assert!(v["stream"].as_str().unwrap().contains("@kline_5m"));
            v["data"].clone()
        } else {
            v
        };
        out.push(event_candle(&data));
    }
    out
}

fn finals(seen: &[(Candle, bool)]) -> Vec<Candle> {
    seen.iter().filter(|(_, x)| *x).map(|(c, _)| *c).collect()
}

/// Every final equals the truth candle with the same open time, and they are consecutive.
fn assert_matches_truth(sim: &SimExchange, symbol: &str, got: &[Candle]) {
    let truth = sim.closed_candles(symbol);
    let step = Interval::M5.duration_ms();
    for w in got.windows(2) {
        assert_eq!(w[1].open_time - w[0].open_time, step, "gapless finals");
    }
    for c in got {
        let t = truth
            .iter()
            .find(|t| t.open_time == c.open_time)
            .expect("final recorded in truth");
        assert_eq!(c, t);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_klines_page_limit_and_include_the_forming_row() {
    let sim = start(cfg(50, 1500)).await;
    let base = sim.rest_url();
    let truth = sim.closed_candles("BTCUSDT");
    assert_eq!(truth.len(), 1500);
    for w in truth.windows(2) {
        assert_eq!(w[1].open_time, w[0].open_time + 300_000);
        assert_eq!(w[1].open, w[0].close);
    }

    // Default limit 500, ascending, the forming candle last.
    let (_, _, t) = get(format!("{base}/api/v3/time")).await;
    let time_before = t["serverTime"].as_i64().unwrap();
    let closed_before = sim.closed_candles("BTCUSDT").last().unwrap().open_time;
    let (status, headers, body) =
        get(format!("{base}/api/v3/klines?symbol=BTCUSDT&interval=5m")).await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("x-mbx-used-weight-1m"));
    let rows = body.as_array().unwrap();
    assert_eq!(rows.len(), 500);
    let last = row_candle(rows.last().unwrap());
    assert!(
        last.close_time >= time_before,
        "last row was forming at the request"
    );
    assert!(last.open_time > closed_before);
    let closed_after = sim.closed_candles("BTCUSDT");
    assert!(
        closed_after.last().unwrap().open_time < last.open_time
            || closed_after.iter().any(|c| c.open_time == last.open_time),
        "the forming row becomes a closed candle later"
    );
    for w in rows.windows(2) {
        assert_eq!(
            row_candle(&w[1]).open_time - row_candle(&w[0]).open_time,
            300_000
        );
    }

    // Limit is capped at 1000; paging with startTime walks the history exactly.
    let (_, _, body) = get(format!(
        "{base}/api/v3/klines?symbol=BTCUSDT&interval=5m&limit=5000"
    ))
    .await;
    assert_eq!(body.as_array().unwrap().len(), 1000);
    let mut paged = Vec::new();
    let mut start = truth[0].open_time;
    loop {
        let (_, _, body) = get(format!(
            "{base}/api/v3/klines?symbol=BTCUSDT&interval=5m&startTime={start}&limit=1000"
        ))
        .await;
        let rows: Vec<Candle> = body.as_array().unwrap().iter().map(row_candle).collect();
        let Some(l) = rows.last() else { break };
        start = l.open_time + 1;
        let full = rows.len() == 1000;
        paged.extend(rows);
        if !full {
            break;
        }
    }
    let truth_now = sim.closed_candles("BTCUSDT");
    assert!(paged.len() > truth_now.len() - 5);
    assert_eq!(&paged[..1500], &truth[..], "REST history equals the truth");

    // endTime alone: the last `limit` up to it.
    let end = truth[99].open_time;
    let (_, _, body) = get(format!(
        "{base}/api/v3/klines?symbol=BTCUSDT&interval=5m&endTime={end}&limit=10"
    ))
    .await;
    let rows: Vec<Candle> = body.as_array().unwrap().iter().map(row_candle).collect();
    assert_eq!(rows, truth[90..100].to_vec());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_errors_are_binance_payloads() {
    let sim = start(cfg(50, 10)).await;
    let base = sim.rest_url();
    struct Case {
        path: &'static str,
        status: u16,
        code: i64,
    }
    let cases = [
        Case {
            path: "/api/v3/klines?symbol=FOOUSDT&interval=5m",
            status: 400,
            code: -1121,
        },
        Case {
            path: "/api/v3/klines?symbol=BTCUSDT&interval=7m",
            status: 400,
            code: -1120,
        },
        Case {
            path: "/api/v3/klines?symbol=btcusdt&interval=5m",
            status: 400,
            code: -1100,
        },
        Case {
            path: "/api/v3/klines?interval=5m",
            status: 400,
            code: -1102,
        },
        Case {
            path: "/api/v3/klines?symbol=BTCUSDT&interval=5m&startTime=abc",
            status: 400,
            code: -1100,
        },
        Case {
            path: "/api/v3/exchangeInfo?symbol=FOOUSDT",
            status: 400,
            code: -1121,
        },
    ];
    for c in cases {
        let (status, _, body) = get(format!("{base}{}", c.path)).await;
        assert_eq!(
            (status, body["code"].as_i64()),
            (c.status, Some(c.code)),
            "{}",
            c.path
        );
        assert!(body["msg"].is_string());
    }
    let (_, _, body) = get(format!("{base}/api/v3/klines?symbol=FOOUSDT&interval=5m")).await;
    assert_eq!(body["msg"], "Invalid symbol.");
    let (_, _, body) = get(format!("{base}/api/v3/klines?symbol=BTCUSDT&interval=7m")).await;
    assert_eq!(body["msg"], "Invalid interval.");

    let (status, _, info) = get(format!("{base}/api/v3/exchangeInfo?symbol=BTCUSDT")).await;
    assert_eq!(status, 200);
    assert_eq!(info["symbols"][0]["symbol"], "BTCUSDT");
    assert_eq!(info["symbols"][0]["status"], "TRADING");
    let (status, _, ping) = get(format!("{base}/api/v3/ping")).await;
    assert_eq!((status, ping), (200, serde_json::json!({})));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_429_carries_retry_after_then_recovers() {
    let c = SimConfig {
        faults: FaultPlan {
            rest_429: Some((1, 3)),
            rest_5xx: Some(1),
            ..FaultPlan::default()
        },
        ..cfg(50, 10)
    };
    let sim = start(c).await;
    let url = format!(
        "{}/api/v3/klines?symbol=BTCUSDT&interval=5m",
        sim.rest_url()
    );
    let (status, headers, body) = get(url.clone()).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "3");
    assert_eq!(body["code"], -1003);
    let (status, _, _) = get(url.clone()).await;
    assert_eq!(status, 500);
    let (status, _, _) = get(url.clone()).await;
    assert_eq!(status, 200);

    sim.fail_rest(2, 429, Some(7));
    for _ in 0..2 {
        let (status, headers, _) = get(url.clone()).await;
        assert_eq!(
            (status, headers["retry-after"].to_str().unwrap()),
            (429, "7")
        );
    }
    let (status, _, _) = get(url).await;
    assert_eq!(status, 200);
    let s = sim.stats();
    assert_eq!((s.rest_calls, s.rest_failures), (6, 4));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_stream_frames_parse_and_finals_equal_the_truth() {
    let sim = start(cfg(20, 5)).await;
    let (mut ws, _) = connect_async(format!("{}/ws/btcusdt@kline_5m", sim.ws_url()))
        .await
        .unwrap();
    let seen = read_finals(&mut ws, 30, false).await;
    let got = finals(&seen);
    assert_eq!(got.len(), 30);
    assert_matches_truth(&sim, "BTCUSDT", &got);
    // In-progress updates come between finals, for the forming candle, never beyond its final.
    assert!(seen.iter().any(|(_, x)| !x));
    for (c, _) in &seen {
        c.validate().unwrap();
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn combined_stream_wraps_every_symbol() {
    let c = SimConfig {
        symbols: vec!["BTCUSDT".into(), "ETHUSDT".into()],
        ..cfg(20, 5)
    };
    let sim = start(c).await;
    let url = format!(
        "{}/stream?streams=btcusdt@kline_5m/ethusdt@kline_5m",
        sim.ws_url()
    );
    let (mut ws, _) = connect_async(url).await.unwrap();
    // Several raw streams on one path: bare payloads for both symbols.
    let (mut raw, _) = connect_async(format!(
        "{}/ws/btcusdt@kline_5m/ethusdt@kline_5m",
        sim.ws_url()
    ))
    .await
    .unwrap();
    let mut raw_symbols = std::collections::BTreeSet::new();
    while raw_symbols.len() < 2 {
        let v: Value = serde_json::from_str(&next_text(&mut raw).await.unwrap()).unwrap();
        event_candle(&v);
        raw_symbols.insert(v["s"].as_str().unwrap().to_string());
    }
    let mut by_symbol: std::collections::HashMap<String, Vec<Candle>> = Default::default();
    while by_symbol.values().map(Vec::len).min().unwrap_or(0) < 5 || by_symbol.len() < 2 {
        let v: Value = serde_json::from_str(&next_text(&mut ws).await.unwrap()).unwrap();
        let stream = v["stream"].as_str().unwrap().to_string();
        let (c, x) = event_candle(&v["data"]);
        assert_eq!(
            stream,
            format!(
                "{}@kline_5m",
                v["data"]["s"].as_str().unwrap().to_lowercase()
            )
        );
        if x {
            by_symbol
                .entry(v["data"]["s"].as_str().unwrap().to_string())
                .or_default()
                .push(c);
        }
    }
    for (sym, got) in &by_symbol {
        assert_matches_truth(&sim, sym, got);
    }
    // Different symbols, different prices.
    assert_ne!(by_symbol["BTCUSDT"][0].close, by_symbol["ETHUSDT"][0].close);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_method_is_acknowledged_and_streams() {
    let sim = start(cfg(20, 5)).await;
    let (mut ws, _) = connect_async(format!("{}/ws", sim.ws_url())).await.unwrap();
    ws.send(Message::Text(
        r#"{"method":"SUBSCRIBE","params":["btcusdt@kline_5m"],"id":1}"#.into(),
    ))
    .await
    .unwrap();
    let ack: Value = serde_json::from_str(&next_text(&mut ws).await.unwrap()).unwrap();
    assert_eq!(ack, serde_json::json!({"result": null, "id": 1}));
    let seen = read_finals(&mut ws, 3, false).await;
    assert_matches_truth(&sim, "BTCUSDT", &finals(&seen));

    ws.send(Message::Text(
        r#"{"method":"LIST_SUBSCRIPTIONS","id":2}"#.into(),
    ))
    .await
    .unwrap();
    loop {
        let v: Value = serde_json::from_str(&next_text(&mut ws).await.unwrap()).unwrap();
        if v.get("id").is_some() {
            assert_eq!(v["result"], serde_json::json!(["btcusdt@kline_5m"]));
            break;
        }
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_five_messages_a_second_cut_a_binance_connection() {
    let c = SimConfig {
        faults: FaultPlan {
            ws_rate_limit: Some(5),
            ..FaultPlan::default()
        },
        ..cfg(20, 5)
    };
    let sim = start(c).await;
    let (mut ws, _) = connect_async(format!("{}/ws", sim.ws_url())).await.unwrap();
    for id in 0..6 {
        let m = format!(r#"{{"method":"LIST_SUBSCRIPTIONS","id":{id}}}"#);
        if ws.send(Message::Text(m.into())).await.is_err() {
            break;
        }
    }
    let mut replies = 0;
    while next_text(&mut ws).await.is_some() {
        replies += 1;
    }
    assert_eq!(replies, 5);
    assert_eq!(sim.stats().rate_limited, 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_all_closes_sockets_while_the_market_runs_on() {
    let sim = start(cfg(20, 5)).await;
    let url = format!("{}/ws/btcusdt@kline_5m", sim.ws_url());
    let (mut a, _) = connect_async(url.clone()).await.unwrap();
    let (mut b, _) = connect_async(url.clone()).await.unwrap();
    read_finals(&mut a, 1, false).await;
    read_finals(&mut b, 1, false).await;
    let before = sim.closed_candles("BTCUSDT").len();
    sim.drop_all();
    for ws in [&mut a, &mut b] {
        // Frames already queued may still arrive, then the socket ends.
        while next_text(ws).await.is_some() {}
    }
    // Waits for the market's next close rather than sleeping a guessed time.
    let kept_running = tokio::time::timeout(Duration::from_secs(10), async {
        while sim.closed_candles("BTCUSDT").len() <= before {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(kept_running.is_ok(), "market kept running");
    let s = sim.stats();
    assert_eq!(s.connections_dropped, 2);
    assert_eq!(s.connections_open, 0);
    // Reconnecting works.
    let (mut c, _) = connect_async(url).await.unwrap();
    read_finals(&mut c, 1, false).await;
    assert_eq!(sim.stats().connections_accepted, 3);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_faults_drop_duplicate_and_corrupt() {
    let c = SimConfig {
        faults: FaultPlan {
            drop_at: vec![15],
            duplicate_final_every: Some(2),
            malformed_every: Some(2),
            ..FaultPlan::default()
        },
        ..cfg(20, 5)
    };
    let sim = start(c).await;
    let (mut ws, _) = connect_async(format!("{}/ws/btcusdt@kline_5m", sim.ws_url()))
        .await
        .unwrap();
    let mut finals_seen = Vec::new();
    let mut malformed = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while let Some(t) = next_text(&mut ws).await {
        assert!(std::time::Instant::now() < deadline, "no drop within 10 s");
        match serde_json::from_str::<Value>(&t) {
            Ok(v) if v["e"] == "kline" && v["k"]["t"].is_i64() => {
                let (c, x) = event_candle(&v);
                if x {
                    finals_seen.push(c);
                }
            }
            _ => malformed += 1,
        }
    }
    // Live candle c (0-based) is the (c+1)-th: odd candles have their finals sent twice and
    // start with a malformed frame, 15 included, whose final never comes (dropped just before).
    let truth = sim.closed_candles("BTCUSDT");
    let t0 = truth[5].open_time;
    let step = 300_000;
    let index = |c: &Candle| (c.open_time - t0) / step;
    assert_eq!(
        finals_seen.last().map(index),
        Some(14),
        "the stream ends before candle 15's final"
    );
    let first = index(&finals_seen[0]);
    let mut expected = Vec::new();
    for c in first..=14 {
        expected.push(c);
        if c % 2 == 1 {
            expected.push(c);
        }
    }
    assert_eq!(finals_seen.iter().map(index).collect::<Vec<_>>(), expected);
    for c in &finals_seen {
        assert_eq!(Some(c), truth.iter().find(|t| t.open_time == c.open_time));
    }
    assert!(
        (1..=8).contains(&malformed),
        "malformed frames: {malformed}"
    );
    assert!(truth.len() >= 5 + 16, "the dropped final is in the truth");
    assert_eq!(sim.stats().drops, 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_sends_nothing_then_resumes() {
    let sim = start(cfg(20, 5)).await;
    let (mut ws, _) = connect_async(format!("{}/ws/btcusdt@kline_5m", sim.ws_url()))
        .await
        .unwrap();
    read_finals(&mut ws, 1, false).await;
    sim.go_silent(Duration::from_millis(400));
    let started = std::time::Instant::now();
    // Drain what was in flight, then expect a quiet gap of most of the silence.
    let mut last = started;
    let mut longest_gap = Duration::ZERO;
    let mut finals_after = Vec::new();
    while finals_after.len() < 3 {
        let t = next_text(&mut ws).await.unwrap();
        let now = std::time::Instant::now();
        longest_gap = longest_gap.max(now - last);
        last = now;
        let (c, x) = event_candle(&serde_json::from_str(&t).unwrap());
        if x && now - started > Duration::from_millis(350) {
            finals_after.push(c);
        }
    }
    assert!(
        longest_gap >= Duration::from_millis(300),
        "gap {longest_gap:?}"
    );
    assert_matches_truth(&sim, "BTCUSDT", &finals_after);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_subscribe_frames_and_rest_newest_first() {
    let sim = start(cfg(20, 300)).await;
    let (mut ws, _) = connect_async(format!("{}/v5/public/spot", sim.ws_url()))
        .await
        .unwrap();
    ws.send(Message::Text(
        r#"{"req_id":"a","op":"subscribe","args":["kline.5.BTCUSDT"]}"#.into(),
    ))
    .await
    .unwrap();
    let ack: Value = serde_json::from_str(&next_text(&mut ws).await.unwrap()).unwrap();
    assert_eq!(ack["success"], true);
    assert_eq!(ack["op"], "subscribe");
    assert_eq!(ack["ret_msg"], "subscribe");
    assert_eq!(ack["req_id"], "a");
    assert!(ack["conn_id"].is_string());
    ws.send(Message::Text(r#"{"op":"ping"}"#.into()))
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut ponged = false;
    while got.len() < 4 || !ponged {
        let v: Value = serde_json::from_str(&next_text(&mut ws).await.unwrap()).unwrap();
        if v["op"] == "ping" {
            assert_eq!(v["ret_msg"], "pong");
            ponged = true;
            continue;
        }
        assert_eq!(v["topic"], "kline.5.BTCUSDT");
        assert_eq!(v["type"], "snapshot");
        let d = &v["data"][0];
        assert_eq!(d["interval"], "5");
        let c = Candle {
            open_time: d["start"].as_i64().unwrap(),
            close_time: d["end"].as_i64().unwrap(),
            open: num(&d["open"]),
            high: num(&d["high"]),
            low: num(&d["low"]),
            close: num(&d["close"]),
            volume: num(&d["volume"]),
        };
        if d["confirm"].as_bool().unwrap() {
            got.push(c);
        }
    }
    assert_matches_truth(&sim, "BTCUSDT", &got);

    // A bad topic fails the request.
    ws.send(Message::Text(
        r#"{"op":"subscribe","args":["kline.5.FOOUSDT"]}"#.into(),
    ))
    .await
    .unwrap();
    loop {
        let v: Value = serde_json::from_str(&next_text(&mut ws).await.unwrap()).unwrap();
        if v["op"] == "subscribe" {
            assert_eq!(v["success"], false);
            break;
        }
    }

    let base = sim.rest_url();
    let (status, _, body) = get(format!(
        "{base}/v5/market/kline?category=spot&symbol=BTCUSDT&interval=5&limit=50"
    ))
    .await;
    assert_eq!((status, body["retCode"].as_i64()), (200, Some(0)));
    assert_eq!(body["result"]["symbol"], "BTCUSDT");
    let list = body["result"]["list"].as_array().unwrap();
    assert_eq!(list.len(), 50);
    let starts: Vec<i64> = list
        .iter()
        .map(|r| r[0].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] - w[1] == 300_000),
        "newest first"
    );
    let truth = sim.closed_candles("BTCUSDT");
    let row = &list[10];
    let t = truth
        .iter()
        .find(|c| c.open_time == starts[10])
        .expect("in truth");
    assert_eq!(num(&row[1]), t.open);
    assert_eq!(num(&row[4]), t.close);

    // Paging: `start` picks the first `limit` from there, still listed newest first.
    let from = truth[10].open_time;
    let (_, _, body) = get(format!(
        "{base}/v5/market/kline?category=spot&symbol=BTCUSDT&interval=5&start={from}&limit=5"
    ))
    .await;
    let page: Vec<i64> = body["result"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap().parse().unwrap())
        .collect();
    let want: Vec<i64> = truth[10..15].iter().rev().map(|c| c.open_time).collect();
    assert_eq!(page, want);

    struct Case {
        query: &'static str,
        ret_code: i64,
    }
    for c in [
        Case {
            query: "category=spot&symbol=FOOUSDT&interval=5",
            ret_code: 10001,
        },
        Case {
            query: "category=spot&symbol=BTCUSDT&interval=7",
            ret_code: 10001,
        },
        Case {
            query: "symbol=BTCUSDT&interval=5",
            ret_code: 10001,
        },
    ] {
        let (_, _, body) = get(format!("{base}/v5/market/kline?{}", c.query)).await;
        assert_eq!(body["retCode"], c.ret_code, "{}", c.query);
    }
    let (_, _, info) = get(format!(
        "{base}/v5/market/instruments-info?category=spot&symbol=BTCUSDT"
    ))
    .await;
    assert_eq!(info["result"]["list"][0]["status"], "Trading");
    let (_, _, time) = get(format!("{base}/v5/market/time")).await;
    assert!(time["time"].as_i64().unwrap() >= truth.last().unwrap().close_time);
    sim.shutdown().await;
}

// Paused time: the market clock and its driver run on tokio's clock, so the sleep below lets
// exactly 200 ms of market time pass (ten 20 ms candles), however loaded the machine is.
#[tokio::test(start_paused = true)]
async fn replay_serves_the_list_and_stops_at_its_end() {
    let list: Vec<Candle> = (0..8)
        .map(|i| {
            let o = 100.0 + i as f64;
            Candle {
                open_time: 1_700_000_100_000 + i * 300_000,
                close_time: 1_700_000_100_000 + i * 300_000 + 299_999,
                open: o,
                high: o + 3.0,
                low: o - 2.0,
                close: o + 1.0,
                volume: 10.0 + i as f64,
            }
        })
        .collect();
    let c = SimConfig {
        source: SimSource::ReplayOnce(list.clone()),
        ..cfg(20, 5)
    };
    let sim = start(c).await;
    assert_eq!(sim.closed_candles("BTCUSDT").len(), 5);
    // Long enough for the 3 remaining candles and 7 more that must not come.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let truth = sim.closed_candles("BTCUSDT");
    assert_eq!(truth.len(), 8, "stops at the end of the list");
    for (t, l) in truth.iter().zip(&list) {
        assert_eq!(
            (t.open, t.high, t.low, t.close, t.volume),
            (l.open, l.high, l.low, l.close, l.volume)
        );
        assert_eq!(t.open_time % 300_000, 0, "on the interval grid");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_configs_are_rejected() {
    for c in [
        SimConfig {
            symbols: vec![],
            ..SimConfig::default()
        },
        SimConfig {
            symbols: vec!["btcusdt".into()],
            ..SimConfig::default()
        },
        SimConfig {
            candle_ms: 0,
            ..SimConfig::default()
        },
        SimConfig {
            source: SimSource::Replay(vec![]),
            ..SimConfig::default()
        },
        // Memory bounds: per symbol, and over all symbols (checked before generating).
        SimConfig {
            history: manus_exchange::sim::MAX_HISTORY + 1,
            ..SimConfig::default()
        },
        SimConfig {
            symbols: (0..100).map(|i| format!("S{i}USDT")).collect(),
            history: 1_000_000,
            ..SimConfig::default()
        },
    ] {
        assert!(SimExchange::start(c).await.is_err());
    }
}
