//! [`Budget`]: keeps one client's REST requests inside its exchange's documented request
//! budget ([`WeightRule`]: Binance.US 1,200 weight a minute, Binance 6,000, Bybit 600 requests
//! per 5 s, OKX per-endpoint limits per 2 s), counting each request's own weight
//! ([`crate::venue::Venue::request_weight`]) and trusting the exchange's used-weight header
//! where it sends one (it also counts other clients on the same address).
//!
//! Requests stop at five sixths of the limit: the header lags concurrent requests, and the
//! rest is headroom for other programs on the same address.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::venue::WeightRule;

/// The weight spent in the current window, shared by every clone of a client.
#[derive(Debug)]
pub(crate) struct Budget {
    window: Duration,
    soft: u32,
    /// Windows start on the wall clock's grid (Binance counts per calendar minute); false when
    /// time is scaled (the simulator's accelerated market has its own grid).
    aligned: bool,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    start: Option<Instant>,
    used: u32,
}

impl Budget {
    /// A budget for `rule` with time running `scale` times as long (1.0 for a real exchange,
    /// below 1 for an accelerated simulator whose minutes pass in milliseconds).
    pub fn new(rule: WeightRule, scale: f64) -> Self {
        let real = scale == 1.0;
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        Budget {
            window: rule.window.mul_f64(scale).max(Duration::from_millis(1)),
            soft: (rule.limit - rule.limit / 6).max(1),
            aligned: real,
            state: Mutex::new(State {
                start: None,
                used: 0,
            }),
        }
    }

    /// The weight a request may use in one window before the client waits.
    pub fn soft_limit(&self) -> u32 {
        self.soft
    }

    /// Reserves `weight` for a request now, or says how long until the window renews. A
    /// request is never refused in a fresh window, whatever its weight.
    pub fn reserve(&self, weight: u32) -> Result<(), Duration> {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let start = match s.start {
            Some(start) if now < start + self.window => start,
            _ => {
                s.used = 0;
                let start = now - self.offset_in_window();
                s.start = Some(start);
                start
            }
        };
        if s.used > 0 && s.used.saturating_add(weight) > self.soft {
            return Err(start + self.window - now);
        }
        s.used = s.used.saturating_add(weight);
        Ok(())
    }

    /// Takes the exchange's figure of the weight used in its current window.
    pub fn observe(&self, used: u32) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.used = used;
    }

    /// How far into its window the wall clock is, for aligned windows.
    fn offset_in_window(&self) -> Duration {
        if !self.aligned {
            return Duration::ZERO;
        }
        let window_ms = self.window.as_millis().max(1);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        Duration::from_millis((now_ms % window_ms) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExchangeKind;

    /// Requests of `path` a fresh window admits under `kind`'s budget.
    fn admitted(kind: ExchangeKind, path: &str) -> u32 {
        let venue = kind.venue();
        let b = Budget::new(venue.weight_rule(), 1e-3);
        let w = venue.request_weight(path);
        let mut n = 0;
        while b.reserve(w).is_ok() {
            n += 1;
            assert!(n < 100_000, "never refused");
        }
        n
    }

    #[test]
    fn each_venue_keeps_its_documented_limit_and_endpoint_weights() {
        struct Case {
            kind: ExchangeKind,
            path: &'static str,
            // Derived from the documentation: (limit - limit/6) / weight.
            expected: u32,
        }
        let cases = [
            // Binance.US: 1200/min, klines weight 1, exchangeInfo 10.
            Case {
                kind: ExchangeKind::BinanceUs,
                path: "/api/v3/klines?symbol=BTCUSDT&interval=1m",
                expected: 1000,
            },
            Case {
                kind: ExchangeKind::BinanceUs,
                path: "/api/v3/exchangeInfo?symbols=[\"BTCUSDT\"]",
                expected: 100,
            },
            // Binance global: 6000/min, klines weight 2, exchangeInfo 20.
            Case {
                kind: ExchangeKind::Binance,
                path: "/api/v3/klines?symbol=BTCUSDT&interval=1m",
                expected: 2500,
            },
            Case {
                kind: ExchangeKind::Binance,
                path: "/api/v3/exchangeInfo?symbols=[\"BTCUSDT\"]",
                expected: 250,
            },
            // Bybit: 600 requests per 5 s.
            Case {
                kind: ExchangeKind::Bybit,
                path: "/v5/market/kline?category=spot",
                expected: 500,
            },
            // OKX: 40 per 2 s budget; history-candles counts 2 (20 per 2 s).
            Case {
                kind: ExchangeKind::Okx,
                path: "/api/v5/market/candles?instId=BTC-USDT",
                expected: 34,
            },
            Case {
                kind: ExchangeKind::Okx,
                path: "/api/v5/market/history-candles?instId=BTC-USDT",
                expected: 17,
            },
        ];
        for c in cases {
            assert_eq!(
                admitted(c.kind, c.path),
                c.expected,
                "{:?} {}",
                c.kind,
                c.path
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_window_says_how_long_and_renews() {
        let rule = ExchangeKind::BinanceUs.venue().weight_rule();
        let b = Budget::new(rule, 0.5);
        assert!(b.reserve(1).is_ok());
        tokio::time::advance(Duration::from_secs(10)).await;
        // The exchange reports more than we spent (another client on the address).
        b.observe(990);
        assert!(b.reserve(10).is_ok(), "up to the soft limit of 1000");
        let wait = b.reserve(1).expect_err("over the soft limit");
        assert_eq!(
            wait,
            Duration::from_secs(20),
            "a 30 s window (60 s scaled by 0.5)"
        );
        tokio::time::advance(wait).await;
        assert!(b.reserve(1).is_ok(), "a fresh window");
    }
}
