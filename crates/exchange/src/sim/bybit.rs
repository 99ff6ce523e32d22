//! Bybit v5 spot, server side: kline topic frames, `subscribe`/`unsubscribe`/`ping` on
//! `/v5/public/spot`, and the REST endpoints `/v5/market/kline` (newest first),
//! `/v5/market/instruments-info` and `/v5/market/time`, with `retCode` errors.
//!
//! Payload shapes follow <https://bybit-exchange.github.io/docs/v5/intro>.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use manus_core::{Candle, Interval};
use serde_json::{Value, json};

use super::conn::{self, ConnState};
use super::drills::{BYBIT_MAX_ARGS_CHARS, args_chars};
use super::market::q8;
use super::state::{Frames, Shared, Step, lock};
use super::venue::{Shape, SimVenue};

/// Bybit's server side.
pub(crate) struct Bybit;

/// The registry's Bybit.
pub(crate) static BYBIT: Bybit = Bybit;

impl SimVenue for Bybit {
    fn rest_routes(&self) -> axum::Router<Arc<Shared>> {
        axum::Router::new()
            .route("/v5/market/kline", get(kline))
            .route("/v5/market/instruments-info", get(instruments_info))
            .route("/v5/market/time", get(time))
    }
    fn ws_routes(&self) -> axum::Router<Arc<Shared>> {
        axum::Router::new().route("/v5/public/spot", get(ws))
    }
    fn owns(&self, path: &str) -> bool {
        path.starts_with("/v5/")
    }
    fn fault(&self, status: u16, now_ms: i64) -> Response {
        if status == 403 {
            // Over the IP limit Bybit's gateway answers a bare 403 "access too frequent" (no
            // retCode) and expects ten minutes of quiet.
            return (StatusCode::FORBIDDEN, "access too frequent").into_response();
        }
        (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            axum::Json(fault_body(status, now_ms)),
        )
            .into_response()
    }
}

/// `/v5/public/spot` topic frames.
pub(crate) struct Spot;

/// The registry's Bybit framing.
pub(crate) static SPOT: Spot = Spot;

impl Shape for Spot {
    fn id(&self) -> &'static str {
        "bybit-spot"
    }
    fn name(&self, symbol: &str, interval: Interval) -> Option<String> {
        topic(symbol, interval)
    }
    fn render(&self, shared: &Shared, slot: usize, step: &Step, f: &Frames) -> String {
        kline_frame(
            shared.name(slot, f.symbol).unwrap_or(""),
            shared.interval,
            &f.candle,
            step.event_time,
            step.closed,
        )
    }
    fn control(
        &self,
        shared: &Shared,
        _slot: usize,
        text: &str,
        st: &mut ConnState,
    ) -> Vec<String> {
        control(shared, text, st).into_iter().collect()
    }
    fn server_pings(&self) -> bool {
        false
    }
    fn rate_limited(&self) -> bool {
        false
    }
}

/// Bybit's spelling of an interval (`1 3 5 15 30 60 120 240 360 720 D W M`); none for 8h/3d.
pub(crate) fn interval_code(i: Interval) -> Option<&'static str> {
    Some(match i {
        Interval::M1 => "1",
        Interval::M3 => "3",
        Interval::M5 => "5",
        Interval::M15 => "15",
        Interval::M30 => "30",
        Interval::H1 => "60",
        Interval::H2 => "120",
        Interval::H4 => "240",
        Interval::H6 => "360",
        Interval::H12 => "720",
        Interval::D1 => "D",
        Interval::W1 => "W",
        Interval::Mo1 => "M",
        Interval::H8 | Interval::D3 => return None,
    })
}

/// `kline.5.BTCUSDT`.
pub(crate) fn topic(symbol: &str, interval: Interval) -> Option<String> {
    interval_code(interval).map(|code| format!("kline.{code}.{symbol}"))
}

fn turnover(c: &Candle) -> f64 {
    q8(c.volume * (c.open + c.high + c.low + c.close) / 4.0)
}

/// A kline topic frame exactly as Bybit streams it (`data` is an array).
pub(crate) fn kline_frame(
    topic: &str,
    interval: Interval,
    c: &Candle,
    event_time: i64,
    closed: bool,
) -> String {
    format!(
        concat!(
            r#"{{"topic":"{}","data":[{{"start":{},"end":{},"interval":"{}","open":"{:.8}","close":"{:.8}","#,
            r#""high":"{:.8}","low":"{:.8}","volume":"{:.8}","turnover":"{:.8}","confirm":{},"timestamp":{}}}],"#,
            r#""ts":{},"type":"snapshot"}}"#
        ),
        topic,
        c.open_time,
        c.close_time,
        interval_code(interval).unwrap_or(""),
        c.open,
        c.close,
        c.high,
        c.low,
        c.volume,
        turnover(c),
        closed,
        event_time,
        event_time
    )
}

/// A Bybit error answer: HTTP 200 with a non-zero `retCode`, as Bybit does.
fn error(code: i64, msg: &str, time: i64) -> Response {
    axum::Json(json!({
        "retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": time
    }))
    .into_response()
}

fn ok(result: Value, time: i64) -> Response {
    axum::Json(json!({
        "retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": time
    }))
    .into_response()
}

/// Checks `category`: it defaults to `linear` (futures) on Bybit, which the simulator does not
/// serve, so a client that forgets `category=spot` hears about it.
fn check_category(q: &HashMap<String, String>, time: i64) -> Result<(), Box<Response>> {
    match q.get("category").map(String::as_str) {
        Some("spot") => Ok(()),
        Some(other) => Err(Box::new(error(
            10001,
            &format!("Illegal category: {other} (the simulator serves category=spot only)"),
            time,
        ))),
        None => Err(Box::new(error(
            10001,
            "category defaults to linear, which the simulator does not serve: pass category=spot",
            time,
        ))),
    }
}

fn parse_num(
    q: &HashMap<String, String>,
    name: &str,
    time: i64,
) -> Result<Option<i64>, Box<Response>> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| Box::new(error(10001, &format!("params error: {name} invalid"), time))),
    }
}

/// `GET /v5/market/kline?category=spot&symbol&interval[&start][&end][&limit]`: newest first,
/// the forming candle included, limit 200 by default, 1 to 1000.
async fn kline(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let now = s.clock.now();
    if let Err(e) = check_category(&q, now) {
        return *e;
    }
    let Some(symbol) = q.get("symbol").filter(|v| !v.is_empty()) else {
        return error(10001, "params error: symbol is required", now);
    };
    let Some(idx) = s.symbol_index(symbol) else {
        return error(10001, "Not supported symbols", now);
    };
    let Some(code) = q.get("interval").filter(|v| !v.is_empty()) else {
        return error(10001, "params error: interval is required", now);
    };
    if !Interval::ALL
        .iter()
        .any(|&i| interval_code(i) == Some(code.as_str()))
    {
        return error(10001, "Invalid period!", now);
    }
    if interval_code(s.interval) != Some(code.as_str()) {
        return error(
            10001,
            &format!(
                "Invalid period! (the simulator serves only {})",
                interval_code(s.interval).unwrap_or("-")
            ),
            now,
        );
    }
    let (start, end, limit) = match (
        parse_num(&q, "start", now),
        parse_num(&q, "end", now),
        parse_num(&q, "limit", now),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return *e,
    };
    let limit = match limit {
        None => 200,
        Some(l) if (1..=1000).contains(&l) => l as usize,
        Some(_) => return error(10001, "params error: limit must be in [1, 1000]", now),
    };
    let rows = lock(&s.books)[idx].select(start, end, limit);
    let mut list = String::with_capacity(16 + rows.len() * 120);
    list.push('[');
    for (i, c) in rows.iter().rev().enumerate() {
        if i > 0 {
            list.push(',');
        }
        let _ = write!(
            list,
            r#"["{}","{:.8}","{:.8}","{:.8}","{:.8}","{:.8}","{:.8}"]"#,
            c.open_time,
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume,
            turnover(c)
        );
    }
    list.push(']');
    // Symbol is one of ours (plain ASCII), so it needs no escaping.
    let body = format!(
        r#"{{"retCode":0,"retMsg":"OK","result":{{"category":"spot","symbol":"{symbol}","list":{list}}},"retExtInfo":{{}},"time":{now}}}"#
    );
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// `GET /v5/market/instruments-info?category=spot[&symbol]`.
async fn instruments_info(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let now = s.clock.now();
    if let Err(e) = check_category(&q, now) {
        return *e;
    }
    let picked: Vec<usize> = match q.get("symbol").filter(|v| !v.is_empty()) {
        Some(sym) => match s.symbol_index(sym) {
            Some(i) => vec![i],
            None => return error(10001, "Not supported symbols", now),
        },
        None => (0..s.symbols.len()).collect(),
    };
    let list: Vec<Value> = picked
        .into_iter()
        .map(|i| {
            let symbol = &s.symbols[i];
            let (base, quote) = split(symbol);
            json!({
                "symbol": symbol,
                "baseCoin": base,
                "quoteCoin": quote,
                "innovation": "0",
                "status": "Trading",
                "marginTrading": "none",
                "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.00000001", "minOrderQty": "0.000048", "maxOrderQty": "71.73956243", "minOrderAmt": "1", "maxOrderAmt": "2000000"},
                "priceFilter": {"tickSize": format!("{:.8}", s.ticks[i])}
            })
        })
        .collect();
    ok(json!({ "category": "spot", "list": list }), now)
}

fn split(symbol: &str) -> (&str, &str) {
    for quote in ["USDT", "USDC", "BTC", "ETH", "EUR"] {
        if let Some(base) = symbol.strip_suffix(quote)
            && !base.is_empty()
        {
            return (base, quote);
        }
    }
    symbol.split_at(symbol.len().saturating_sub(3))
}

/// `GET /v5/market/time`: the market clock.
async fn time(State(s): State<Arc<Shared>>) -> Response {
    let now = s.clock.now();
    ok(
        json!({
            "timeSecond": (now / 1000).to_string(),
            "timeNano": (i128::from(now) * 1_000_000).to_string()
        }),
        now,
    )
}

/// `GET /v5/public/spot`: subscriptions come as `subscribe` ops.
async fn ws(State(s): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| conn::serve(s, socket, &SPOT, BTreeSet::new()))
}

/// Answers `subscribe`, `unsubscribe` and `ping`. Topics for unknown symbols or another
/// interval fail the whole request, as Bybit does for invalid topics.
fn control(shared: &Shared, text: &str, st: &mut ConnState) -> Option<String> {
    let conn_id = format!("sim-{}", st.id);
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return Some(
            json!({"success": false, "ret_msg": "error:request not json", "conn_id": conn_id})
                .to_string(),
        );
    };
    let op = v.get("op").and_then(Value::as_str).unwrap_or("");
    let req_id = v.get("req_id").cloned();
    let mut reply = match op {
        "ping" => json!({"success": true, "ret_msg": "pong", "conn_id": conn_id, "op": "ping"}),
        "subscribe" | "unsubscribe" => {
            let args: Option<Vec<String>> = v
                .get("args")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect());
            let valid = |t: &str| {
                shared
                    .symbols
                    .iter()
                    .any(|s| topic(s, shared.interval).as_deref() == Some(t))
            };
            match args {
                Some(args) if args.len() > 10 => {
                    json!({"success": false, "ret_msg": "args size >10", "conn_id": conn_id, "op": op})
                }
                Some(args)
                    if op == "subscribe"
                        && args_chars(
                            st.subs
                                .iter()
                                .chain(args.iter().filter(|t| !st.subs.contains(*t))),
                        ) > BYBIT_MAX_ARGS_CHARS =>
                {
                    json!({"success": false, "ret_msg": format!("args of a connection exceed {BYBIT_MAX_ARGS_CHARS} characters (simulator's wording)"), "conn_id": conn_id, "op": op})
                }
                Some(args) if op == "subscribe" && args.iter().any(|t| !valid(t)) => {
                    let bad: Vec<&String> = args.iter().filter(|t| !valid(t)).collect();
                    json!({"success": false, "ret_msg": format!("Invalid topic :{bad:?}"), "conn_id": conn_id, "op": op})
                }
                Some(args) => {
                    for t in args {
                        if op == "subscribe" {
                            st.subs.insert(t);
                        } else {
                            st.subs.remove(&t);
                        }
                    }
                    json!({"success": true, "ret_msg": op, "conn_id": conn_id, "op": op})
                }
                None => {
                    json!({"success": false, "ret_msg": "args must be an array of topics", "conn_id": conn_id, "op": op})
                }
            }
        }
        other => {
            json!({"success": false, "ret_msg": format!("Invalid op: {other}"), "conn_id": conn_id, "op": other})
        }
    };
    if let (Some(id), Some(obj)) = (req_id, reply.as_object_mut()) {
        obj.insert("req_id".into(), id);
    }
    Some(reply.to_string())
}

/// A Bybit-shaped body for an injected REST failure.
fn fault_body(status: u16, time: i64) -> Value {
    let (code, msg) = if status == 429 {
        (10006, "Too many visits!")
    } else {
        (10016, "Server error.")
    };
    json!({"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": time})
}
