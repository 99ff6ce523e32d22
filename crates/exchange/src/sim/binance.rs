//! Binance's protocol, server side: kline events, the REST endpoints (`ping`, `time`,
//! `exchangeInfo`, `klines`) with Binance's error payloads, and the raw and combined WebSocket
//! routes with `SUBSCRIBE`/`UNSUBSCRIBE`/`LIST_SUBSCRIPTIONS`.
//!
//! Payload shapes follow <https://developers.binance.com/docs/binance-spot-api-docs>.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use manus_core::{Candle, Interval};
use serde_json::{Value, json};

use super::conn::{self, ConnState};
use super::drills::MAX_STREAMS;
use super::state::{Frames, Shared, Step, lock};
use super::venue::{Shape, SimVenue};

/// Binance's server side (Binance and Binance.US share it).
pub(crate) struct Binance;

/// The registry's Binance.
pub(crate) static BINANCE: Binance = Binance;

impl SimVenue for Binance {
    fn rest_routes(&self) -> axum::Router<Arc<Shared>> {
        axum::Router::new()
            .route("/api/v3/ping", get(ping))
            .route("/api/v3/time", get(time))
            .route("/api/v3/exchangeInfo", get(exchange_info))
            .route("/api/v3/klines", get(klines))
    }
    fn ws_routes(&self) -> axum::Router<Arc<Shared>> {
        axum::Router::new()
            .route("/ws", get(ws_raw_root))
            .route("/ws/{*streams}", get(ws_raw))
            .route("/stream", get(ws_combined))
    }
    fn owns(&self, path: &str) -> bool {
        path.starts_with("/api/v3/")
    }
    fn fault(&self, status: u16, _now_ms: i64) -> Response {
        let (code, msg) = match status {
            429 | 418 => (
                -1003,
                "Too much request weight used; current limit is 1200 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
            ),
            _ => (
                -1000,
                "An unknown error occurred while processing the request.",
            ),
        };
        error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            msg,
        )
    }
    fn weight(&self, path: &str) -> Option<u32> {
        Some(weight(path))
    }
}

/// `/ws/...`: bare payloads.
pub(crate) struct Raw;
/// The registry's raw framing.
pub(crate) static RAW: Raw = Raw;
/// `/stream?streams=...`: `{"stream":..,"data":..}` payloads.
pub(crate) struct Combined;
/// The registry's combined framing.
pub(crate) static COMBINED: Combined = Combined;

impl Shape for Raw {
    fn id(&self) -> &'static str {
        "binance-raw"
    }
    fn name(&self, symbol: &str, interval: Interval) -> Option<String> {
        Some(stream_name(symbol, interval))
    }
    fn render(&self, shared: &Shared, _slot: usize, step: &Step, f: &Frames) -> String {
        kline_event(
            &shared.symbols[f.symbol],
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
    fn shutdown_notice(&self, event_time: i64) -> Option<String> {
        Some(shutdown_event(event_time))
    }
    fn server_pings(&self) -> bool {
        true
    }
    fn rate_limited(&self) -> bool {
        true
    }
}

impl Shape for Combined {
    fn id(&self) -> &'static str {
        "binance-combined"
    }
    fn name(&self, symbol: &str, interval: Interval) -> Option<String> {
        Some(stream_name(symbol, interval))
    }
    fn render(&self, shared: &Shared, slot: usize, step: &Step, f: &Frames) -> String {
        let raw = RAW.render(shared, slot, step, f);
        let stream = shared.name(slot, f.symbol).unwrap_or("");
        format!(r#"{{"stream":"{stream}","data":{raw}}}"#)
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
    fn shutdown_notice(&self, event_time: i64) -> Option<String> {
        Some(format!(
            r#"{{"stream":"!serverShutdown","data":{}}}"#,
            shutdown_event(event_time)
        ))
    }
    fn server_pings(&self) -> bool {
        true
    }
    fn rate_limited(&self) -> bool {
        true
    }
}

/// The raw `serverShutdown` event.
fn shutdown_event(event_time: i64) -> String {
    format!(r#"{{"e":"serverShutdown","E":{event_time}}}"#)
}

/// `btcusdt@kline_5m`.
pub(crate) fn stream_name(symbol: &str, interval: Interval) -> String {
    format!(
        "{}@kline_{}",
        symbol.to_ascii_lowercase(),
        interval.as_str()
    )
}

/// Values Binance sends besides OHLCV, derived deterministically from the candle so REST and
/// WebSocket agree: (quote volume, trades, taker buy base, taker buy quote, first trade id).
fn extras(c: &Candle) -> (f64, i64, f64, f64, i64) {
    use super::market::q8;
    let quote = q8(c.volume * (c.open + c.high + c.low + c.close) / 4.0);
    let trades = if c.volume > 0.0 {
        ((c.volume * 1e4).sqrt().round() as i64).max(1)
    } else {
        0
    };
    // A stable pseudo-random taker share in [0.35, 0.65) keyed by the open time.
    let h = (c.open_time as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    let share = 0.35 + 0.3 * (h as f64 / (1u64 << 53) as f64);
    let first = if trades > 0 { c.open_time / 100 } else { -1 };
    (
        quote,
        trades,
        q8(c.volume * share),
        q8(quote * share),
        first,
    )
}

/// A kline event exactly as Binance streams it.
pub(crate) fn kline_event(
    symbol: &str,
    interval: Interval,
    c: &Candle,
    event_time: i64,
    closed: bool,
) -> String {
    let (q, n, vb, qb, f) = extras(c);
    let last = if n > 0 { f + n - 1 } else { -1 };
    format!(
        concat!(
            r#"{{"e":"kline","E":{},"s":"{}","k":{{"t":{},"T":{},"s":"{}","i":"{}","f":{},"L":{},"#,
            r#""o":"{:.8}","c":"{:.8}","h":"{:.8}","l":"{:.8}","v":"{:.8}","n":{},"x":{},"#,
            r#""q":"{:.8}","V":"{:.8}","Q":"{:.8}","B":"0"}}}}"#
        ),
        event_time,
        symbol,
        c.open_time,
        c.close_time,
        symbol,
        interval.as_str(),
        f,
        last,
        c.open,
        c.close,
        c.high,
        c.low,
        c.volume,
        n,
        closed,
        q,
        vb,
        qb
    )
}

/// One REST klines row: `[t,"o","h","l","c","v",T,"q",n,"V","Q","0"]`.
fn write_row(out: &mut String, c: &Candle) {
    let (q, n, vb, qb, _) = extras(c);
    let _ = write!(
        out,
        r#"[{},"{:.8}","{:.8}","{:.8}","{:.8}","{:.8}",{},"{:.8}",{},"{:.8}","{:.8}","0"]"#,
        c.open_time, c.open, c.high, c.low, c.close, c.volume, c.close_time, q, n, vb, qb
    );
}

/// A Binance error response.
pub(crate) fn error(status: StatusCode, code: i64, msg: &str) -> Response {
    (status, axum::Json(json!({ "code": code, "msg": msg }))).into_response()
}

fn mandatory(name: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        -1102,
        &format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
    )
}

fn json_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Checks a `symbol` parameter the way Binance does.
fn check_symbol(shared: &Shared, symbol: &str) -> Result<usize, Box<Response>> {
    let legal = !symbol.is_empty()
        && symbol.len() <= 20
        && symbol
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if !legal {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            -1100,
            "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.",
        )));
    }
    shared
        .symbol_index(symbol)
        .ok_or_else(|| Box::new(error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol.")))
}

fn parse_num(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, Box<Response>> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                -1100,
                &format!(
                    "Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
                ),
            ))
        }),
    }
}

/// Request weight of a Binance REST path (Binance.com's figures).
fn weight(path: &str) -> u32 {
    match path {
        "/api/v3/klines" => 2,
        "/api/v3/exchangeInfo" => 20,
        _ => 1,
    }
}

/// `GET /api/v3/ping`.
async fn ping() -> Response {
    json_response("{}".into())
}

/// `GET /api/v3/time`: the market clock.
async fn time(State(s): State<Arc<Shared>>) -> Response {
    json_response(format!(r#"{{"serverTime":{}}}"#, s.clock.now()))
}

fn split_symbol(symbol: &str) -> (&str, &str) {
    for quote in [
        "USDT", "USDC", "FDUSD", "BUSD", "USD", "BTC", "ETH", "EUR", "BNB",
    ] {
        if let Some(base) = symbol.strip_suffix(quote)
            && !base.is_empty()
        {
            return (base, quote);
        }
    }
    symbol.split_at(symbol.len().saturating_sub(3))
}

fn symbol_info(shared: &Shared, i: usize) -> Value {
    let symbol = &shared.symbols[i];
    let (base, quote) = split_symbol(symbol);
    let tick = shared.ticks[i];
    json!({
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": true,
        "ocoAllowed": true,
        "isSpotTradingAllowed": true,
        "isMarginTradingAllowed": false,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": format!("{tick:.8}"), "maxPrice": "10000000.00000000", "tickSize": format!("{tick:.8}")},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"}
        ],
        "permissions": ["SPOT"]
    })
}

/// `GET /api/v3/exchangeInfo[?symbol=X | ?symbols=["X","Y"]]`.
async fn exchange_info(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut picked = Vec::new();
    if let Some(sym) = q.get("symbol") {
        match check_symbol(&s, sym) {
            Ok(i) => picked.push(i),
            Err(e) => return *e,
        }
    } else if let Some(list) = q.get("symbols") {
        let Ok(names) = serde_json::from_str::<Vec<String>>(list) else {
            return error(
                StatusCode::BAD_REQUEST,
                -1100,
                "Illegal characters found in parameter 'symbols'; legal range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$'.",
            );
        };
        for n in &names {
            match check_symbol(&s, n) {
                Ok(i) => picked.push(i),
                Err(e) => return *e,
            }
        }
    } else {
        picked.extend(0..s.symbols.len());
    }
    let body = json!({
        "timezone": "UTC",
        "serverTime": s.clock.now(),
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000}
        ],
        "exchangeFilters": [],
        "symbols": picked.into_iter().map(|i| symbol_info(&s, i)).collect::<Vec<_>>()
    });
    axum::Json(body).into_response()
}

/// `GET /api/v3/klines?symbol&interval[&startTime][&endTime][&limit]`: ascending, the forming
/// candle last when in range, limit 500 by default and capped at 1000.
async fn klines(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let symbol = match q.get("symbol").map(String::as_str) {
        None | Some("") => return mandatory("symbol"),
        Some(v) => v,
    };
    let interval = match q.get("interval").map(String::as_str) {
        None | Some("") => return mandatory("interval"),
        Some(v) => v,
    };
    let idx = match check_symbol(&s, symbol) {
        Ok(i) => i,
        Err(e) => return *e,
    };
    let Ok(interval) = interval.parse::<Interval>() else {
        return error(StatusCode::BAD_REQUEST, -1120, "Invalid interval.");
    };
    if interval != s.interval {
        return error(
            StatusCode::BAD_REQUEST,
            -1120,
            &format!(
                "Invalid interval. (the simulator serves only {})",
                s.interval
            ),
        );
    }
    let (start, end, limit) = match (
        parse_num(&q, "startTime"),
        parse_num(&q, "endTime"),
        parse_num(&q, "limit"),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return *e,
    };
    let limit = match limit {
        None => 500,
        Some(l) if l >= 1 => l.min(1000) as usize,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                -1130,
                "Data sent for parameter 'limit' is not valid.",
            );
        }
    };
    let rows = lock(&s.books)[idx].select(start, end, limit);
    let mut body = String::with_capacity(16 + rows.len() * 160);
    body.push('[');
    for (i, c) in rows.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        write_row(&mut body, c);
    }
    body.push(']');
    json_response(body)
}

/// `GET /ws/<stream>[/<stream>...]`: raw streams (bare payloads).
async fn ws_raw(
    State(s): State<Arc<Shared>>,
    Path(stream): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    let subs = stream
        .split('/')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect();
    ws.on_upgrade(move |socket| conn::serve(s, socket, &RAW, subs))
}

/// `GET /ws`: a raw connection that subscribes with `SUBSCRIBE`.
async fn ws_raw_root(State(s): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| conn::serve(s, socket, &RAW, BTreeSet::new()))
}

/// `GET /stream?streams=a/b`: combined streams.
async fn ws_combined(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let subs = q
        .get("streams")
        .map(|v| {
            v.split('/')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    ws.on_upgrade(move |socket| conn::serve(s, socket, &COMBINED, subs))
}

/// Answers a control message (`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`). Like Binance,
/// a well-formed stream for an unknown symbol is accepted and then never sends anything.
fn control(_shared: &Shared, text: &str, st: &mut ConnState) -> Option<String> {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return Some(
            r#"{"error":{"code":3,"msg":"Invalid JSON: expected value at line 1 column 1"}}"#
                .into(),
        );
    };
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let params = || -> Option<Vec<String>> {
        v.get("params")?
            .as_array()?
            .iter()
            .map(|p| p.as_str().map(str::to_string))
            .collect()
    };
    let reply = match v.get("method").and_then(Value::as_str) {
        Some("SUBSCRIBE") => match params() {
            Some(p) if st.subs.len() + p.len() > MAX_STREAMS => bad_request(
                &id,
                &format!(
                    "Invalid request: a connection can listen to at most {MAX_STREAMS} streams (simulator's wording)"
                ),
            ),
            Some(p) => {
                st.subs.extend(p);
                json!({ "result": null, "id": id })
            }
            None => bad_request(&id, "Invalid request: params must be an array of strings"),
        },
        Some("UNSUBSCRIBE") => match params() {
            Some(p) => {
                for s in p {
                    st.subs.remove(&s);
                }
                json!({ "result": null, "id": id })
            }
            None => bad_request(&id, "Invalid request: params must be an array of strings"),
        },
        Some("LIST_SUBSCRIPTIONS") => {
            json!({ "result": st.subs.iter().collect::<Vec<_>>(), "id": id })
        }
        _ => bad_request(
            &id,
            "Invalid request: unknown variant, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`",
        ),
    };
    Some(reply.to_string())
}

fn bad_request(id: &Value, msg: &str) -> Value {
    json!({ "error": { "code": 2, "msg": msg }, "id": id })
}
