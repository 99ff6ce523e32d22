//! The router: every venue's REST and WebSocket routes (from [`VENUES`]) on one port, and the
//! REST gate that counts calls, injects planned failures (429 + `Retry-After`, 5xx) in the
//! owning venue's error shape, and adds a metered venue's used-weight header.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::state::{Shared, bump};
use super::venue::VENUES;

/// Builds the whole app.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut rest = Router::new();
    let mut ws = Router::new();
    for v in VENUES {
        rest = rest.merge(v.rest_routes());
        ws = ws.merge(v.ws_routes());
    }
    let rest = rest.route_layer(middleware::from_fn_with_state(shared.clone(), rest_gate));
    rest.merge(ws)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            super::drills::request_line_limit,
        ))
        .with_state(shared)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"code": -1, "msg": "Not found (simulated exchange)"})),
    )
        .into_response()
}

/// Counts the call, answers with a planned failure if one is pending, and otherwise lets the
/// handler run, adding the used-weight header on metered paths.
async fn rest_gate(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    bump(&s.counters.rest_calls);
    let path = req.uri().path().to_string();
    let venue = VENUES.iter().find(|v| v.owns(&path));
    let weight = venue.and_then(|v| v.weight(&path)).map(|w| s.use_weight(w));
    let mut resp = match s.take_rest_fault() {
        Some(f) => {
            bump(&s.counters.rest_failures);
            let mut resp = match venue {
                Some(v) => v.fault(f.status, s.clock.now()),
                None => StatusCode::from_u16(f.status)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                    .into_response(),
            };
            if let Some(secs) = f.retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            resp
        }
        None => next.run(req).await,
    };
    if let Some(used) = weight {
        resp.headers_mut()
            .insert("x-mbx-used-weight-1m", HeaderValue::from(used));
    }
    resp
}
