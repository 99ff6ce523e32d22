//! The HTTP surface: pages, `/api/...` JSON endpoints, the live event stream (Server-Sent
//! Events) and Prometheus `/metrics`. Every query string is validated: an unknown parameter,
//! a bad value or an inverted date range answers `400 {"error": "..."}`.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::Stream;
use manus_core::model::parse_iso8601_ms;
use manus_core::{Action, Interval};
use manus_exchange::feed::StreamKey;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::assets;
use super::auth::{self, url_params};
use super::hub::{HubEvent, LiveHub};
use super::metrics::WebMetrics;
use crate::store::{Order, SignalQuery, Store};

/// A store shared by request handlers; every call runs in `spawn_blocking`.
pub type SharedStore = Arc<Mutex<Box<dyn Store>>>;

/// Largest page of `/api/signals`.
pub const MAX_LIMIT: usize = 1000;
/// Default page of `/api/signals`.
pub const DEFAULT_LIMIT: usize = 100;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The live side.
    pub hub: LiveHub,
    /// History, when a store is open.
    pub store: Option<SharedStore>,
    /// The access token, when one is required.
    pub token: Option<Arc<str>>,
    /// Request counters.
    pub metrics: Arc<WebMetrics>,
    /// What `/metrics` encodes (see [`super::metrics::registry`]).
    pub exposition: Arc<Registry>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("AppState")
            .field("store", &self.store.is_some())
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// A JSON error response `{"error": msg}`.
pub fn api_error(status: StatusCode, msg: impl Into<String>) -> Response {
    let body = json!({ "error": msg.into(), "status": status.as_u16() });
    (status, axum::Json(body)).into_response()
}

/// A handler error: status and message.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn bad(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        api_error(self.0, self.1)
    }
}

type ApiResult = Result<Response, ApiError>;

/// The router with every route, the access guard and the counters.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/live", get(assets::index))
        .route("/history", get(assets::index))
        .route("/backtests", get(assets::index))
        .route("/assets/{name}", get(assets::asset))
        .route("/api/health", get(health))
        .route("/api/streams", get(streams))
        .route("/api/live", get(live_snapshot))
        .route("/api/events", get(events))
        .route("/api/signals", get(signals))
        .route("/api/backtests", get(backtests))
        .route("/api/backtests/{id}", get(backtest))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .layer(middleware::from_fn_with_state(state.clone(), auth::guard))
        .with_state(state)
}

async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let r = next.run(req).await;
    let m = &state.metrics;
    m.requests.fetch_add(1, Ordering::Relaxed);
    if r.status().is_client_error() {
        m.client_errors.fetch_add(1, Ordering::Relaxed);
    } else if r.status().is_server_error() {
        m.server_errors.fetch_add(1, Ordering::Relaxed);
    }
    r
}

async fn not_found() -> Response {
    api_error(StatusCode::NOT_FOUND, "no such page or endpoint")
}

/// Validated query parameters: only `allowed` keys (and `token`), each at most once.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in url_params(raw.unwrap_or("")) {
            if k == "token" {
                continue;
            }
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::bad(if allowed.is_empty() {
                    format!("unknown parameter '{k}': this endpoint takes none")
                } else {
                    format!(
                        "unknown parameter '{k}'; expected one of: {}",
                        allowed.join(", ")
                    )
                }));
            }
            if out.iter().any(|(o, _)| *o == k) {
                return Err(ApiError::bad(format!("parameter '{k}' given twice")));
            }
            out.push((k, v));
        }
        Ok(Params(out))
    }

    /// A non-empty value of `k`.
    fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(o, v)| o == k && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }

    fn symbol(&self) -> Result<Option<String>, ApiError> {
        self.get("symbol").map(parse_symbol).transpose()
    }

    fn interval(&self) -> Result<Option<Interval>, ApiError> {
        self.get("interval")
            .map(|s| {
                s.parse::<Interval>().map_err(|_| {
                    ApiError::bad(format!(
                        "invalid interval '{s}'; valid: {}",
                        manus_core::model::interval_choices()
                    ))
                })
            })
            .transpose()
    }

    fn usize_in(&self, k: &str, default: usize, lo: usize, hi: usize) -> Result<usize, ApiError> {
        let Some(s) = self.get(k) else {
            return Ok(default);
        };
        match s.parse::<usize>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(n),
            _ => Err(ApiError::bad(format!(
                "invalid {k} '{s}': expected a whole number from {lo} to {hi}"
            ))),
        }
    }

    fn time(&self, k: &str) -> Result<Option<i64>, ApiError> {
        self.get(k).map(|s| parse_time(k, s)).transpose()
    }

    /// The stream named by the required `symbol` and `interval`.
    fn stream(&self) -> Result<StreamKey, ApiError> {
        let symbol = self
            .symbol()?
            .ok_or_else(|| ApiError::bad("missing parameter 'symbol', e.g. symbol=BTCUSDT"))?;
        let interval = self
            .interval()?
            .ok_or_else(|| ApiError::bad("missing parameter 'interval', e.g. interval=5m"))?;
        Ok(StreamKey { symbol, interval })
    }
}

/// An upper-cased symbol of letters and digits (at most 30).
fn parse_symbol(s: &str) -> Result<String, ApiError> {
    if s.is_empty() || s.len() > 30 || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::bad(format!(
            "invalid symbol '{}': expected letters and digits, e.g. BTCUSDT",
            s.chars().take(40).collect::<String>()
        )));
    }
    Ok(s.to_ascii_uppercase())
}

/// Milliseconds since the epoch, or an ISO-8601 UTC date or date-time.
fn parse_time(k: &str, s: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    parse_iso8601_ms(s).ok_or_else(|| {
        ApiError::bad(format!(
            "invalid {k} '{s}': expected a date (2024-01-31), a UTC date-time (2024-01-31T12:00:00Z) or milliseconds since the epoch"
        ))
    })
}

fn parse_decision(s: &str) -> Result<Action, ApiError> {
    match s.to_ascii_uppercase().as_str() {
        "BUY" => Ok(Action::Buy),
        "SELL" => Ok(Action::Sell),
        "HOLD" => Ok(Action::Hold),
        _ => Err(ApiError::bad(format!(
            "invalid decision '{s}': expected BUY, SELL or HOLD"
        ))),
    }
}

fn json_response(v: &impl serde::Serialize) -> Response {
    axum::Json(v).into_response()
}

/// Runs `f` on the store in a blocking thread; 503 when no store is open.
async fn with_store<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Store) -> crate::store::Result<T> + Send + 'static,
{
    let Some(store) = state.store.clone() else {
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "no store is open: run 'manus serve --db PATH' to browse history".into(),
        ));
    };
    let joined = tokio::task::spawn_blocking(move || {
        let mut guard = store.lock().unwrap_or_else(|p| p.into_inner());
        f(guard.as_mut())
    })
    .await;
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::warn!("store query failed: {e}");
            Err(ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the store could not answer; see the server log".into(),
            ))
        }
        Err(_) => Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the store query was interrupted".into(),
        )),
    }
}

async fn health(State(state): State<AppState>, RawQuery(q): RawQuery) -> ApiResult {
    Params::parse(q.as_deref(), &[])?;
    Ok(json_response(&json!({
        "ok": true,
        "store": state.store.is_some(),
        "streams": state.hub.streams().len(),
    })))
}

async fn streams(State(state): State<AppState>, RawQuery(q): RawQuery) -> ApiResult {
    Params::parse(q.as_deref(), &[])?;
    Ok(json_response(&state.hub.streams()))
}

async fn live_snapshot(State(state): State<AppState>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref(), &["symbol", "interval"])?;
    let key = p.stream()?;
    match state.hub.snapshot(&key) {
        Some(s) => Ok(json_response(&s)),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no live stream {key}; see /api/streams"),
        )),
    }
}

/// The live event stream of one (symbol, interval): a `snapshot` event, then `candle`,
/// `record` and `stats` events; a `snapshot` again whenever this client fell behind.
async fn events(State(state): State<AppState>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref(), &["symbol", "interval"])?;
    let key = p.stream()?;
    // Subscribe before taking the snapshot so nothing falls between the two.
    let rx = state.hub.subscribe();
    let hub = state.hub.clone();
    let stream = event_stream(hub, rx, key);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// Decrements the subscriber gauge when the client goes away.
struct Subscribed(LiveHub);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0
            .counters()
            .subscribers
            .fetch_sub(1, Ordering::Relaxed);
    }
}

fn snapshot_event(hub: &LiveHub, key: &StreamKey) -> Event {
    let snap = hub.snapshot(key);
    let data = match snap {
        Some(s) => serde_json::to_string(&s).unwrap_or_else(|_| "null".into()),
        None => json!({
            "symbol": key.symbol, "interval": key.interval,
            "candles": [], "forming": null, "records": [], "stats": null
        })
        .to_string(),
    };
    Event::default().event("snapshot").data(data)
}

fn event_stream(
    hub: LiveHub,
    rx: tokio::sync::broadcast::Receiver<HubEvent>,
    key: StreamKey,
) -> impl Stream<Item = Result<Event, Infallible>> {
    hub.counters().subscribers.fetch_add(1, Ordering::Relaxed);
    let guard = Subscribed(hub.clone());
    let first = snapshot_event(&hub, &key);
    let state = (hub, rx, key, Some(first), guard);
    futures_util::stream::unfold(state, |(hub, mut rx, key, pending, guard)| async move {
        if let Some(ev) = pending {
            return Some((Ok(ev), (hub, rx, key, None, guard)));
        }
        loop {
            match rx.recv().await {
                Ok(ev) if *ev.stream == key => {
                    let out = Event::default().event(ev.kind).data(&*ev.json);
                    return Some((Ok(out), (hub, rx, key, None, guard)));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    // Too slow to keep up: skip what was missed and redraw from a snapshot.
                    hub.counters().lagged.fetch_add(1, Ordering::Relaxed);
                    let ev = snapshot_event(&hub, &key);
                    return Some((Ok(ev), (hub, rx, key, None, guard)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
}

async fn signals(State(state): State<AppState>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(
        q.as_deref(),
        &[
            "exchange", "symbol", "interval", "decision", "from", "to", "limit", "offset", "order",
        ],
    )?;
    let exchange = match p.get("exchange") {
        Some(e) => {
            let ok = e.len() <= 20
                && e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
            if !ok {
                return Err(ApiError::bad(format!(
                    "invalid exchange '{}': expected a name like binanceus, bybit or sim",
                    e.chars().take(40).collect::<String>()
                )));
            }
            // Stored under the CLI name: accept `binance.us` and `BinanceUS` too.
            Some(
                e.parse::<manus_exchange::ExchangeKind>()
                    .map_or_else(|_| e.to_ascii_lowercase(), |k| k.as_str().to_string()),
            )
        }
        None => None,
    };
    let decision = p.get("decision").map(parse_decision).transpose()?;
    let since = p.time("from")?;
    let until = p.time("to")?;
    if let (Some(a), Some(b)) = (since, until)
        && a >= b
    {
        return Err(ApiError::bad(
            "empty date range: 'from' must be before 'to'",
        ));
    }
    let limit = p.usize_in("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)?;
    let offset = p.usize_in("offset", 0, 0, 10_000_000)?;
    let order = match p.get("order").map(str::to_ascii_lowercase).as_deref() {
        None | Some("desc") => Order::Desc,
        Some("asc") => Order::Asc,
        Some(o) => {
            return Err(ApiError::bad(format!(
                "invalid order '{o}': expected asc or desc"
            )));
        }
    };
    let query = SignalQuery {
        exchange,
        symbol: p.symbol()?,
        interval: p.interval()?,
        since,
        until,
        decision,
        // One more than asked tells whether another page exists.
        limit: Some(limit + 1),
        offset,
        order,
    };
    // A stored row that does not parse is skipped (named in the log, counted in the answer),
    // so one damaged row does not make the whole history unreadable.
    let read = with_store(&state, move |s| s.read_signals(&query)).await?;
    crate::store::warn_bad_rows(&read.bad);
    let skipped = read.bad.len();
    let mut rows = read.rows;
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let mut v = serde_json::to_value(&r.record).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("exchange".into(), Value::String(r.exchange));
            }
            v
        })
        .collect();
    Ok(json_response(&json!({
        "items": items,
        "limit": limit,
        "offset": offset,
        "has_more": has_more,
        "skipped": skipped,
    })))
}

async fn backtests(State(state): State<AppState>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref(), &["limit"])?;
    let limit = p.usize_in("limit", 50, 1, 500)?;
    let read = with_store(&state, move |s| s.read_backtest_runs(limit)).await?;
    crate::store::warn_bad_rows(&read.bad);
    let skipped = read.bad.len();
    let runs = read.rows;
    // The list carries parameters and metrics; equity and trades come per run.
    let items: Vec<Value> = runs
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id,
                "created_at": r.created_at,
                "params": r.params,
                "metrics": r.metrics,
            })
        })
        .collect();
    Ok(json_response(
        &json!({ "items": items, "skipped": skipped }),
    ))
}

async fn backtest(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    Params::parse(q.as_deref(), &[])?;
    let id: i64 = id.parse().ok().filter(|&n: &i64| n > 0).ok_or_else(|| {
        ApiError::bad(format!(
            "invalid backtest id '{id}': expected a positive whole number"
        ))
    })?;
    let read = with_store(&state, |s| s.read_backtest_runs(10_000)).await?;
    if let Some(bad) = read.bad.iter().find(|b| b.id == id) {
        crate::store::warn_bad_rows(std::slice::from_ref(bad));
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "backtest run {id} is stored but cannot be read: {}",
                bad.error
            ),
        ));
    }
    match read.rows.into_iter().find(|r| r.id == id) {
        Some(r) => Ok(json_response(&r)),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no backtest run {id}"),
        )),
    }
}

/// The OpenMetrics text of every counter (see [`super::metrics`]).
async fn metrics(State(state): State<AppState>, RawQuery(q): RawQuery) -> ApiResult {
    Params::parse(q.as_deref(), &[])?;
    let text = super::metrics::encode(&state.exposition);
    Ok(([(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)], text).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lagging_event_stream_is_resynchronised_not_blocking() {
        use futures_util::StreamExt;
        let hub = LiveHub::new();
        let key = StreamKey {
            symbol: "BTCUSDT".into(),
            interval: Interval::M1,
        };
        let stream = event_stream(hub.clone(), hub.subscribe(), key.clone());
        let mut stream = Box::pin(stream);
        assert_eq!(hub.counters().subscribers.load(Ordering::Relaxed), 1);
        // The client reads nothing while far more than the channel holds is published.
        let n = super::super::hub::CHANNEL_CAPACITY as i64 * 2;
        for i in 0..n {
            let c = manus_core::Candle {
                open_time: i * 60_000,
                close_time: i * 60_000 + 59_999,
                open: 1.0,
                high: 1.0,
                low: 1.0,
                close: 1.0,
                volume: 1.0,
            };
            hub.publish_candle(&key, &c, false);
        }
        let _initial = stream.next().await.unwrap().unwrap();
        let _resync = stream.next().await.unwrap().unwrap();
        assert_eq!(hub.counters().lagged.load(Ordering::Relaxed), 1);
        drop(stream);
        assert_eq!(hub.counters().subscribers.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn params_reject_unknown_and_repeated_keys() {
        assert!(Params::parse(Some("symbol=BTCUSDT&token=x"), &["symbol"]).is_ok());
        assert!(Params::parse(Some("sym=BTCUSDT"), &["symbol"]).is_err());
        assert!(Params::parse(Some("symbol=A&symbol=B"), &["symbol"]).is_err());
        assert!(Params::parse(Some("x=1"), &[]).is_err());
    }

    #[test]
    fn values_are_validated() {
        struct Case {
            q: &'static str,
            ok: bool,
        }
        let cases = [
            Case {
                q: "symbol=btcusdt&interval=5m",
                ok: true,
            },
            Case {
                q: "symbol=BTC/USDT&interval=5m",
                ok: false,
            },
            Case {
                q: "symbol=BTCUSDT&interval=7m",
                ok: false,
            },
            Case {
                q: "symbol=BTCUSDT",
                ok: false,
            },
            Case {
                q: "interval=1h",
                ok: false,
            },
        ];
        for c in cases {
            let p = Params::parse(Some(c.q), &["symbol", "interval"]).unwrap();
            assert_eq!(p.stream().is_ok(), c.ok, "{}", c.q);
        }
        assert_eq!(parse_time("from", "2024-01-01").unwrap(), 1_704_067_200_000);
        assert_eq!(
            parse_time("from", "1700000000000").unwrap(),
            1_700_000_000_000
        );
        assert!(parse_time("from", "yesterday").is_err());
        assert_eq!(parse_decision("buy").unwrap(), Action::Buy);
        assert!(parse_decision("maybe").is_err());
    }
}
