//! [`FeedError`]: everything that can go wrong talking to an exchange, classified so callers
//! know whether to retry.

use std::time::Duration;

/// An exchange, transport or payload error.
#[derive(Debug, thiserror::Error)]
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
    /// True when the same request may succeed later (rate limits, 5xx, transport errors).
    pub fn is_retryable(&self) -> bool {
        match self {
            FeedError::RateLimited { .. } | FeedError::Http(_) | FeedError::Ws(_) => true,
            FeedError::Status { status, .. } => *status >= 500,
            // Binance -1000 unknown, -1001 disconnected, -1003 too much weight, -1006/-1007
            // backend timeouts; Bybit 10006 too many visits, 10016 server error.
            FeedError::ExchangeError { code, .. } => {
                matches!(code, -1000 | -1001 | -1003 | -1006 | -1007 | 10006 | 10016)
            }
            FeedError::Parse(_) | FeedError::Invalid(_) => false,
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
