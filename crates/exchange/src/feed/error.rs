//! [`FeedError`]: everything that can go wrong talking to an exchange, classified so callers
//! know whether to retry.

use std::time::Duration;

/// An exchange, transport or payload error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeedError {
    /// The exchange answered with an error payload, e.g. Binance `{"code":-1121,"msg":"Invalid
    /// symbol."}` or Bybit `{"retCode":10001,"retMsg":"..."}`.
    #[error("exchange error {code}: {msg}")]
    ExchangeError {
        /// The exchange's error code.
        code: i64,
        /// The exchange's message, verbatim.
        msg: String,
    },
    /// HTTP 429 (rate limit) or 418 (IP ban): wait `retry_after` before the next request.
    #[error("rate limited (HTTP {status}); retry after {} s", retry_after.as_secs_f64())]
    RateLimited {
        /// 429 or 418.
        status: u16,
        /// The exchange's `Retry-After`.
        retry_after: Duration,
    },
    /// Our own budget of the exchange's request weight is spent until `wait` has passed (we
    /// stop before the exchange would answer 429, and never block a feed on it).
    #[error("request weight budget spent; next request in {} ms", wait.as_millis())]
    WeightBudget {
        /// Until the window renews.
        wait: Duration,
    },
    /// An HTTP status without a recognisable error payload.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the body, for the user.
        body: String,
    },
    /// The request did not complete (connect, TLS, timeout, body read).
    #[error("HTTP request failed: {0}")]
    Http(String),
    /// A success answer longer than any legal one (the rest of it was not read).
    #[error(
        "response from {url} is longer than {limit} bytes, more than any legal answer; refused"
    )]
    BodyTooLarge {
        /// The request.
        url: String,
        /// The cap, bytes.
        limit: usize,
    },
    /// The WebSocket failed to connect or dropped.
    #[error("WebSocket error: {0}")]
    Ws(String),
    /// A payload did not have the documented shape.
    #[error("malformed payload: {0}")]
    Parse(String),
    /// The request cannot be made as configured (no streams, an interval the exchange lacks,
    /// a symbol that is not trading).
    #[error("{0}")]
    Invalid(String),
}

impl FeedError {
    /// How long the exchange (or our own budget) asks us to wait before any request, when it
    /// says so: a 429/418 `Retry-After`, Bybit's 403 "access too frequent", a spent budget.
    pub fn wait(&self) -> Option<Duration> {
        match self {
            FeedError::RateLimited { retry_after, .. } => Some(*retry_after),
            FeedError::WeightBudget { wait } => Some(*wait),
            _ => None,
        }
    }

    /// True when the same request may succeed later (rate limits, 5xx, transport errors).
    pub fn is_retryable(&self) -> bool {
        match self {
            FeedError::RateLimited { .. }
            | FeedError::WeightBudget { .. }
            | FeedError::Http(_)
            | FeedError::Ws(_) => true,
            FeedError::Status { status, .. } => *status >= 500,
            // Each venue lists its own retryable codes; the codes of different exchanges do not
            // overlap (Binance negative, Bybit 10xxx, OKX 5xxxx), so any venue's word counts.
            // `RestClient` asks its own venue.
            FeedError::ExchangeError { code, .. } => crate::venue::REGISTRY
                .iter()
                .any(|e| e.venue.retryable_code(*code)),
            FeedError::Parse(_) | FeedError::Invalid(_) | FeedError::BodyTooLarge { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_retryable_errors() {
        struct Case {
            err: FeedError,
            retryable: bool,
        }
        let cases = [
            Case {
                err: FeedError::ExchangeError {
                    code: -1121,
                    msg: "Invalid symbol.".into(),
                },
                retryable: false,
            },
            Case {
                err: FeedError::ExchangeError {
                    code: -1003,
                    msg: "Too much weight".into(),
                },
                retryable: true,
            },
            Case {
                err: FeedError::RateLimited {
                    status: 429,
                    retry_after: Duration::from_secs(1),
                },
                retryable: true,
            },
            Case {
                err: FeedError::Status {
                    status: 503,
                    body: String::new(),
                },
                retryable: true,
            },
            Case {
                err: FeedError::Status {
                    status: 404,
                    body: String::new(),
                },
                retryable: false,
            },
            Case {
                err: FeedError::Parse("x".into()),
                retryable: false,
            },
            Case {
                err: FeedError::Ws("reset".into()),
                retryable: true,
            },
        ];
        for c in cases {
            assert_eq!(c.err.is_retryable(), c.retryable, "{}", c.err);
        }
    }

    #[test]
    fn exchange_error_shows_the_exchange_message() {
        let e = FeedError::ExchangeError {
            code: -1121,
            msg: "Invalid symbol.".into(),
        };
        assert_eq!(e.to_string(), "exchange error -1121: Invalid symbol.");
    }
}
