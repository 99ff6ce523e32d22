//! The simulator's per-venue seam: each venue module (`binance`, `bybit`, `okx`) implements
//! [`SimVenue`] (its REST and WebSocket routes, its fault bodies, its request weight) and one
//! [`Shape`] per socket framing; [`VENUES`] and [`SHAPES`] are the registry lines.

use std::sync::Arc;

use axum::Router;
use axum::response::Response;
use manus_core::Interval;

use super::conn::ConnState;
use super::state::{Frames, Shared, Step};
use super::{binance, bybit, okx};

/// One exchange's server side.
pub(crate) trait SimVenue: Send + Sync {
    /// REST routes (behind the gate that counts calls and injects faults).
    fn rest_routes(&self) -> Router<Arc<Shared>>;
    /// WebSocket routes.
    fn ws_routes(&self) -> Router<Arc<Shared>>;
    /// Whether a REST path is this venue's.
    fn owns(&self, path: &str) -> bool;
    /// The answer to an injected REST failure with this HTTP status.
    fn fault(&self, status: u16, now_ms: i64) -> Response;
    /// The request weight of a path, when the venue meters by header (Binance).
    fn weight(&self, _path: &str) -> Option<u32> {
        None
    }
}

/// One socket framing: how a connection names streams, renders a snapshot and answers
/// control messages.
pub(crate) trait Shape: Send + Sync {
    /// A unique id, e.g. `binance-raw`.
    fn id(&self) -> &'static str;
    /// The name a client subscribes to for this symbol's stream (none: not servable).
    fn name(&self, symbol: &str, interval: Interval) -> Option<String>;
    /// The frame for one symbol's snapshot (rendered once per step and shape, then shared).
    fn render(&self, shared: &Shared, slot: usize, step: &Step, f: &Frames) -> String;
    /// Answers a control message, updating the subscriptions (the replies, in order).
    fn control(&self, shared: &Shared, slot: usize, text: &str, st: &mut ConnState) -> Vec<String>;
    /// A broken frame of flavour `n` for the malformed-frame drill (a client must survive it).
    fn malformed(&self, n: u64) -> &'static str {
        match n % 4 {
            0 => r#"{"e":"kline","E":17000000"#,
            1 => "this is not json",
            2 => r#"{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":"oops","x":"maybe"}}"#,
            _ => r#"{"topic":"kline.5.BTCUSDT","data":{"start":null},"ts":"x"}"#,
        }
    }
    /// The frame announcing a server shutdown, if the protocol has one (Binance).
    fn shutdown_notice(&self, _event_time: i64) -> Option<String> {
        None
    }
    /// Whether the server pings (Binance does; Bybit and OKX wait for the client's ping).
    fn server_pings(&self) -> bool;
    /// Whether the connection is cut above `FaultPlan::ws_rate_limit` messages a second.
    fn rate_limited(&self) -> bool;
}

/// Every venue the simulator serves, all on one port.
pub(crate) static VENUES: &[&dyn SimVenue] = &[&binance::BINANCE, &bybit::BYBIT, &okx::OKX];

/// Every socket framing; a frame cache slot per entry.
pub(crate) static SHAPES: [&dyn Shape; 4] = [
    &binance::RAW,
    &binance::COMBINED,
    &bybit::SPOT,
    &okx::BUSINESS,
];

/// The slot of a shape in [`SHAPES`] (every shape is listed: a test checks the ids).
pub(crate) fn slot(shape: &dyn Shape) -> usize {
    SHAPES
        .iter()
        .position(|s| s.id() == shape.id())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_ids_are_unique_and_venues_own_distinct_paths() {
        for (i, s) in SHAPES.iter().enumerate() {
            assert_eq!(slot(*s), i, "{}", s.id());
        }
        for path in [
            "/api/v3/klines",
            "/v5/market/kline",
            "/api/v5/market/candles",
        ] {
            assert_eq!(VENUES.iter().filter(|v| v.owns(path)).count(), 1, "{path}");
        }
    }
}
