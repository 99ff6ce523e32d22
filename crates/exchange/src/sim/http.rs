//! The router: every REST and WebSocket route of both protocols on one port, and the REST gate
//! that counts calls, injects planned failures (429 + `Retry-After`, 5xx) and adds Binance's
//! `X-MBX-USED-WEIGHT-1M` header.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::state::{Shared, bump};
use super::{binance, bybit};

/// Builds the whole app.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let rest = Router::new()
        .route("/api/v3/ping", get(binance::ping))
        .route("/api/v3/time", get(binance::time))
        .route("/api/v3/exchangeInfo", get(binance::exchange_info))
        .route("/api/v3/klines", get(binance::klines))
        .route("/v5/market/kline", get(bybit::kline))
        .route("/v5/market/instruments-info", get(bybit::instruments_info))
        .route("/v5/market/time", get(bybit::time))
        .route_layer(middleware::from_fn_with_state(shared.clone(), rest_gate));
    let ws = Router::new()
        .route("/ws", get(binance::ws_raw_root))
        .route("/ws/{*streams}", get(binance::ws_raw))
        .route("/stream", get(binance::ws_combined))
        .route("/v5/public/spot", get(bybit::ws));
    rest.merge(ws).fallback(not_found).with_state(shared)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"code": -1, "msg": "Not found (simulated exchange)"})),
    )
        .into_response()
}

/// Counts the call, answers with a planned failure if one is pending, and otherwise lets the
/// handler run, adding the used-weight header on Binance paths.
async fn rest_gate(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    bump(&s.counters.rest_calls);
    let path = req.uri().path().to_string();
    let is_binance = path.starts_with("/api/");
    let used = if is_binance {
        s.use_weight(binance::weight(&path))
    } else {
        0
    };
    let mut resp = match s.take_rest_fault() {
        Some(f) => {
            bump(&s.counters.rest_failures);
            let status = bybit::status(f.status);
            let mut resp = if is_binance {
                let (code, msg) = match f.status {
                    429 | 418 => (
                        -1003,
                        "Too much request weight used; current limit is 1200 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
                    ),
                    _ => (
                        -1000,
                        "An unknown error occurred while processing the request.",
                    ),
                };
                binance::error(status, code, msg)
            } else {
                (
                    status,
                    axum::Json(bybit::fault_body(f.status, s.clock.now())),
                )
                    .into_response()
            };
            if let Some(secs) = f.retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            resp
        }
        None => next.run(req).await,
    };
    if is_binance {
        resp.headers_mut()
            .insert("x-mbx-used-weight-1m", HeaderValue::from(used));
    }
    resp
}
