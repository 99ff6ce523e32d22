//! Typed diagnostics a feed reports: [`FeedWarning`] (non-fatal problems) and [`CloseReason`]
//! (why a socket ended). Their `Display` is the text a dashboard shows; code and tests match
//! the variants.

use std::sync::Arc;

use super::{FeedError, StreamKey};

/// A non-fatal problem worth showing; the feed goes on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeedWarning {
    /// The exchange's clock could not be read, so no history was fetched.
    #[error("bootstrap skipped (exchange time unavailable: {0}); continuing from the stream alone")]
    BootstrapSkipped(FeedError),
    /// One stream's history could not be fetched.
    #[error("bootstrap of {key} failed: {error}; continuing from the stream alone")]
    BootstrapFailed {
        /// The stream.
        key: Arc<StreamKey>,
        /// Why.
        error: FeedError,
    },
    /// Klines were dropped by a full internal channel; the gap is backfilled.
    #[error("internal channel overflowed; backfilling the gap")]
    Overflow,
    /// The exchange reported an error on the socket (e.g. a failed subscription).
    #[error("exchange says: {0}")]
    ExchangeMessage(String),
    /// A fill request failed (the gap stays pending: see [`FeedWarning::GapPending`]).
    #[error("backfill of {key} failed: {error}")]
    BackfillFailed {
        /// The stream.
        key: Arc<StreamKey>,
        /// Why.
        error: FeedError,
    },
    /// A resumed stream was down for longer than the resume cap: the oldest missed candles
    /// are not fetched and stay a hole in the consumer's history.
    #[error(
        "{key}: down for {missed} candles, more than the resume cap of {cap}: {gap} candle(s) \
         from {from} to {to} (open times, ms) are left as a gap"
    )]
    ResumeCapped {
        /// The stream.
        key: Arc<StreamKey>,
        /// Candles closed since the consumer's last one.
        missed: u64,
        /// The cap (`FeedConfig::resume_max`).
        cap: u64,
        /// Candles not fetched.
        gap: u64,
        /// Open time of the first candle not fetched, ms.
        from: i64,
        /// Open time of the last candle not fetched, ms.
        to: i64,
    },
    /// A gap could not be filled yet (REST failing or rate limited): it stays pending and is
    /// retried, and the stream's live closed candles wait behind it, in order.
    #[error(
        "{key}: gap from {from} (open time, ms) pending, {held} candle(s) held, oldest {late_ms} ms \
         late; retry {attempt} in {retry_in_ms} ms: {error}"
    )]
    GapPending {
        /// The stream.
        key: Arc<StreamKey>,
        /// Open time of the first missing candle, ms.
        from: i64,
        /// Live closed candles waiting behind the gap.
        held: usize,
        /// How long the oldest of them has waited, ms.
        late_ms: u64,
        /// Failed attempts so far.
        attempt: u32,
        /// When the next attempt is made, ms from now.
        retry_in_ms: u64,
        /// The last failure.
        error: FeedError,
    },
    /// The exchange's own history lacks candles the stream skipped.
    #[error("{key}: {missing} candle(s) missing before {before} could not be fetched")]
    Unfillable {
        /// The stream.
        key: Arc<StreamKey>,
        /// How many candles.
        missing: u64,
        /// Open time of the candle after the hole, ms.
        before: i64,
    },
}

/// Why a WebSocket connection ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// We closed it (shutdown or handover).
    #[error("stopped")]
    Stopped,
    /// The connection did not open within the silence timeout.
    #[error("connect to {url} timed out")]
    ConnectTimeout {
        /// The URL.
        url: String,
    },
    /// The connection could not be opened.
    #[error("connect to {url}: {error}")]
    Connect {
        /// The URL.
        url: String,
        /// The transport's error.
        error: String,
    },
    /// A subscribe frame or ping could not be sent.
    #[error("{what}: {error}")]
    Send {
        /// `subscribe` or `ping`.
        what: &'static str,
        /// The transport's error.
        error: String,
    },
    /// No frame arrived for this long.
    #[error("no frame for {ms} ms")]
    Silence {
        /// The silence timeout, ms.
        ms: u64,
    },
    /// The exchange closed the socket (with a close frame's code and reason, if any).
    #[error("closed by the exchange{}", .frame.as_ref().map(|(c, r)| format!(": {c} {r}")).unwrap_or_default())]
    ClosedByExchange {
        /// Close code and reason.
        frame: Option<(u16, String)>,
    },
    /// Reading failed.
    #[error("read: {0}")]
    Read(String),
    /// The feed's driver or consumer went away.
    #[error("{0} gone")]
    Gone(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_a_dashboard_shows() {
        struct Case {
            shown: String,
            expected: &'static str,
        }
        let cases = [
            Case {
                shown: CloseReason::Silence { ms: 300 }.to_string(),
                expected: "no frame for 300 ms",
            },
            Case {
                shown: CloseReason::ClosedByExchange { frame: None }.to_string(),
                expected: "closed by the exchange",
            },
            Case {
                shown: CloseReason::ClosedByExchange {
                    frame: Some((1001, "going away".into())),
                }
                .to_string(),
                expected: "closed by the exchange: 1001 going away",
            },
            Case {
                shown: CloseReason::Gone("driver").to_string(),
                expected: "driver gone",
            },
            Case {
                shown: FeedWarning::Overflow.to_string(),
                expected: "internal channel overflowed; backfilling the gap",
            },
            Case {
                shown: FeedWarning::BootstrapSkipped(FeedError::Http("down".into())).to_string(),
                expected: "bootstrap skipped (exchange time unavailable: HTTP request failed: down); continuing from the stream alone",
            },
        ];
        for c in cases {
            assert_eq!(c.shown, c.expected);
        }
    }
}
