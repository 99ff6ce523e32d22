//! OKX v5, server side: `candle{bar}` pushes and `subscribe`/`unsubscribe` plus the text
//! `ping` on `/ws/v5/business`, and the REST endpoints `/api/v5/market/candles` (≤ 300, the
//! forming candle included), `/api/v5/market/history-candles` (≤ 100, closed only), both newest
//! first and paged by exclusive `after`/`before`, `/api/v5/public/instruments` and
//! `/api/v5/public/time`, with `{"code":"..","msg":"..","data":[]}` errors.
//!
//! Payload shapes follow <https://www.okx.com/docs-v5/en/>. Instrument ids come from our
//! symbols by the feed adapter's own mapping (`BTCUSDT` → `BTC-USDT`).

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
use super::market::q8;
use super::state::{Frames, Shared, Step, lock};
use super::venue::{Shape, SimVenue};
use crate::okx::message::{inst_id, interval_code};

/// OKX's server side.
pub(crate) struct Okx;

/// The registry's OKX.
pub(crate) static OKX: Okx = Okx;

impl SimVenue for Okx {
    fn rest_routes(&self) -> axum::Router<Arc<Shared>> {
        axum::Router::new()
            .route("/api/v5/market/candles", get(candles))
            .route("/api/v5/market/history-candles", get(history_candles))
            .route("/api/v5/public/instruments", get(instruments))
            .route("/api/v5/public/time", get(time))
    }
    fn ws_routes(&self) -> axum::Router<Arc<Shared>> {
        axum::Router::new().route("/ws/v5/business", get(ws))
    }
    fn owns(&self, path: &str) -> bool {
        path.starts_with("/api/v5/")
    }
    fn fault(&self, status: u16, _now_ms: i64) -> Response {
        let (code, msg) = if status == 429 {
            ("50011", "Too Many Requests")
        } else {
            ("50026", "System error, please try again later.")
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            axum::Json(json!({"code": code, "msg": msg, "data": []})),
        )
            .into_response()
    }
}

/// `/ws/v5/business` candle pushes.
pub(crate) struct Business;

/// The registry's OKX framing.
pub(crate) static BUSINESS: Business = Business;

/// `candle5m`, for intervals OKX serves aligned to UTC.
fn channel(interval: Interval) -> Option<String> {
    interval_code(interval).map(|bar| format!("candle{bar}"))
}

impl Shape for Business {
    fn id(&self) -> &'static str {
        "okx-business"
    }
    fn name(&self, symbol: &str, interval: Interval) -> Option<String> {
        Some(format!("{}:{}", channel(interval)?, inst_id(symbol).ok()?))
    }
    fn render(&self, shared: &Shared, slot: usize, step: &Step, f: &Frames) -> String {
        let name = shared.name(slot, f.symbol).unwrap_or(":");
        let (channel, inst) = name.split_once(':').unwrap_or((name, ""));
        let mut row = String::with_capacity(160);
        write_row(&mut row, &f.candle, step.closed);
        format!(r#"{{"arg":{{"channel":"{channel}","instId":"{inst}"}},"data":[{row}]}}"#)
    }
    fn control(&self, shared: &Shared, slot: usize, text: &str, st: &mut ConnState) -> Vec<String> {
        control(shared, slot, text, st)
    }
    fn malformed(&self, n: u64) -> &'static str {
        match n % 3 {
            0 => r#"{"arg":{"channel":"candle5m","instId":"BTC-USDT"},"data":[["oops"]]}"#,
            1 => r#"{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[["1","2","3"#,
            _ => "this is not json",
        }
    }
    fn server_pings(&self) -> bool {
        false
    }
    fn rate_limited(&self) -> bool {
        false
    }
}

/// One row `["ts","o","h","l","c","vol","volCcy","volCcyQuote","confirm"]`.
fn write_row(out: &mut String, c: &Candle, closed: bool) {
    let quote = q8(c.volume * (c.open + c.high + c.low + c.close) / 4.0);
    let _ = write!(
        out,
        r#"["{}","{:.8}","{:.8}","{:.8}","{:.8}","{:.8}","{:.8}","{:.8}","{}"]"#,
        c.open_time,
        c.open,
        c.high,
        c.low,
        c.close,
        c.volume,
        c.volume,
        quote,
        if closed { 1 } else { 0 }
    );
}

/// An OKX error answer.
fn error(status: StatusCode, code: &str, msg: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "msg": msg, "data": []})),
    )
        .into_response()
}

fn ok(data: Value) -> Response {
    axum::Json(json!({"code": "0", "msg": "", "data": data})).into_response()
}

/// The symbol index of an `instId`.
fn instrument(s: &Shared, inst: &str) -> Option<usize> {
    s.symbols
        .iter()
        .position(|sym| inst_id(sym).is_ok_and(|i| i == inst))
}

fn parse_num(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, Box<Response>> {
    match q.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                "51000",
                &format!("Parameter {name} error"),
            ))
        }),
    }
}

/// Both candle endpoints: rows opening strictly between `before` and `after`, the newest
/// `limit` of them, newest first.
fn select(q: &HashMap<String, String>, s: &Shared, max: i64, forming: bool) -> Response {
    let Some(inst) = q.get("instId").filter(|v| !v.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "50014",
            "Parameter instId can not be empty",
        );
    };
    let Some(idx) = instrument(s, inst) else {
        return error(
            StatusCode::BAD_REQUEST,
            "51001",
            "Instrument ID does not exist",
        );
    };
    let bar = q.get("bar").map_or("1m", String::as_str);
    if interval_code(s.interval) != Some(bar) {
        return error(
            StatusCode::BAD_REQUEST,
            "51000",
            &format!(
                "Parameter bar error (the simulator serves only {})",
                interval_code(s.interval).unwrap_or("-")
            ),
        );
    }
    let (after, before, limit) = match (
        parse_num(q, "after"),
        parse_num(q, "before"),
        parse_num(q, "limit"),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return *e,
    };
    let limit = match limit {
        None => 100,
        Some(l) if (1..=max).contains(&l) => l as usize,
        Some(_) => {
            return error(StatusCode::BAD_REQUEST, "51000", "Parameter limit error");
        }
    };
    let books = lock(&s.books);
    let book = &books[idx];
    let forming_open = book.forming.map(|f| f.open_time);
    let mut rows: Vec<Candle> = book.select(None, after.map(|a| a - 1), limit + 1);
    rows.retain(|c| before.is_none_or(|b| c.open_time > b));
    if !forming {
        rows.retain(|c| Some(c.open_time) != forming_open);
    }
    let excess = rows.len().saturating_sub(limit);
    rows.drain(..excess);
    drop(books);
    let mut body = String::with_capacity(32 + rows.len() * 130);
    body.push_str(r#"{"code":"0","msg":"","data":["#);
    for (i, c) in rows.iter().rev().enumerate() {
        if i > 0 {
            body.push(',');
        }
        write_row(&mut body, c, Some(c.open_time) != forming_open);
    }
    body.push_str("]}");
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// `GET /api/v5/market/candles?instId&bar[&after][&before][&limit ≤ 300]`.
async fn candles(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    select(&q, &s, 300, true)
}

/// `GET /api/v5/market/history-candles?instId&bar[&after][&before][&limit ≤ 100]`.
async fn history_candles(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    select(&q, &s, 100, false)
}

/// `GET /api/v5/public/instruments?instType=SPOT[&instId]`.
async fn instruments(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match q.get("instType").map(String::as_str) {
        Some("SPOT") => {}
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "51000",
                "Parameter instType error (the simulator serves SPOT only)",
            );
        }
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "50014",
                "Parameter instType can not be empty",
            );
        }
    }
    let picked: Vec<usize> = match q.get("instId").filter(|v| !v.is_empty()) {
        Some(inst) => match instrument(&s, inst) {
            Some(i) => vec![i],
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "51001",
                    "Instrument ID does not exist",
                );
            }
        },
        None => (0..s.symbols.len()).collect(),
    };
    let data: Vec<Value> = picked
        .into_iter()
        .filter_map(|i| {
            let inst = inst_id(&s.symbols[i]).ok()?;
            let (base, quote) = inst.split_once('-')?;
            Some(json!({
                "instType": "SPOT", "instId": inst, "baseCcy": base, "quoteCcy": quote,
                "state": "live", "tickSz": format!("{:.8}", s.ticks[i]), "lotSz": "0.00000001",
                "minSz": "0.00001", "listTime": "1606468572000"
            }))
        })
        .collect();
    ok(Value::Array(data))
}

/// `GET /api/v5/public/time`: the market clock.
async fn time(State(s): State<Arc<Shared>>) -> Response {
    ok(json!([{ "ts": s.clock.now().to_string() }]))
}

/// `GET /ws/v5/business`: subscriptions come as `subscribe` ops.
async fn ws(State(s): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| conn::serve(s, socket, &BUSINESS, BTreeSet::new()))
}

/// Answers `ping` (text `pong`), `subscribe` and `unsubscribe` (one event per argument; an
/// unknown channel or instrument fails the whole request with an `error` event, as OKX does).
fn control(shared: &Shared, slot: usize, text: &str, st: &mut ConnState) -> Vec<String> {
    if text == "ping" {
        return vec!["pong".into()];
    }
    let conn_id = format!("sim{:x}", st.id);
    let err = |code: &str, msg: String| {
        vec![json!({"event": "error", "code": code, "msg": msg, "connId": conn_id}).to_string()]
    };
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return err("60012", format!("Invalid request: {text}"));
    };
    let op = v.get("op").and_then(Value::as_str).unwrap_or("");
    if op != "subscribe" && op != "unsubscribe" {
        return err("60012", format!("Invalid request: {text}"));
    }
    let Some(args) = v.get("args").and_then(Value::as_array) else {
        return err("60012", format!("Invalid request: {text}"));
    };
    let mut names = Vec::with_capacity(args.len());
    for a in args {
        let (Some(ch), Some(inst)) = (
            a.get("channel").and_then(Value::as_str),
            a.get("instId").and_then(Value::as_str),
        ) else {
            return err("60012", format!("Invalid request: {text}"));
        };
        let name = format!("{ch}:{inst}");
        let known = (0..shared.symbols.len()).any(|i| shared.name(slot, i) == Some(name.as_str()));
        if op == "subscribe" && !known {
            return err(
                "60018",
                format!(
                    "Wrong URL or channel:{ch},instId:{inst} doesn't exist. Please use the correct URL, channel and parameters referring to API document."
                ),
            );
        }
        names.push((name, a.clone()));
    }
    names
        .into_iter()
        .map(|(name, arg)| {
            if op == "subscribe" {
                st.subs.insert(name);
            } else {
                st.subs.remove(&name);
            }
            json!({"event": op, "arg": arg, "connId": conn_id}).to_string()
        })
        .collect()
}
