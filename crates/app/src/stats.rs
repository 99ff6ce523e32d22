//! The figures of a live run that its views share: the connection state ([`ConnState`]) and one
//! stream's header figures ([`StreamStats`]). The live pipeline produces them; the terminal
//! dashboard, the web page and `/metrics` read them. Kept below all of those so none of them
//! imports another.

use serde::{Serialize, Serializer};

/// The WebSocket connection as the feed last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    /// Nothing heard yet.
    Connecting,
    /// Connected and subscribed.
    Connected(String),
    /// Dropped, with the reason.
    Disconnected(String),
    /// A reconnect attempt is scheduled.
    Reconnecting {
        /// Attempt number.
        attempt: u32,
        /// Delay before it, ms.
        in_ms: u64,
    },
}

impl ConnState {
    /// The state without its text (URL, reason), as the header figures carry it.
    pub fn phase(&self) -> ConnPhase {
        match self {
            ConnState::Connecting => ConnPhase::Connecting,
            ConnState::Connected(_) => ConnPhase::Connected,
            ConnState::Disconnected(_) => ConnPhase::Disconnected,
            ConnState::Reconnecting { attempt, .. } => {
                ConnPhase::Reconnecting { attempt: *attempt }
            }
        }
    }
}

/// [`ConnState`] without its text: copied cheaply, shown as `connected`, `reconnecting
/// (attempt 3)`, ...
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConnPhase {
    /// Nothing heard yet.
    #[default]
    Connecting,
    /// Connected and subscribed.
    Connected,
    /// Dropped.
    Disconnected,
    /// A reconnect attempt is scheduled.
    Reconnecting {
        /// Attempt number.
        attempt: u32,
    },
}

impl std::fmt::Display for ConnPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnPhase::Connecting => f.write_str("connecting"),
            ConnPhase::Connected => f.write_str("connected"),
            ConnPhase::Disconnected => f.write_str("disconnected"),
            ConnPhase::Reconnecting { attempt } => write!(f, "reconnecting (attempt {attempt})"),
        }
    }
}

impl Serialize for ConnPhase {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One stream's header figures, as the terminal dashboard shows them; the web page receives
/// them as JSON (these field names) and `/metrics` exposes each number as `manus_live_<name>`.
/// Plain numbers (`Copy`), so readers copy them out of a lock instead of cloning anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StreamStats {
    /// The connection.
    pub connection: ConnPhase,
    /// Latency of live closed candles, frame read to record ready: median, µs.
    pub latency_p50_us: u64,
    /// 99th percentile, µs.
    pub latency_p99_us: u64,
    /// Largest, µs.
    pub latency_max_us: u64,
    /// Frames read from the socket.
    pub messages_received: u64,
    /// Frames that became events.
    pub messages_processed: u64,
    /// Frames that could not be parsed.
    pub malformed: u64,
    /// Reconnections so far.
    pub reconnections: u64,
    /// Candles fetched over REST to fill gaps.
    pub backfilled: u64,
    /// Records emitted (all streams).
    pub records: u64,
    /// Strategy failures (all streams).
    pub strategy_failures: u64,
    /// Wall clock minus the exchange's event time of the newest frame, ms (`None`: not a lag).
    pub feed_lag_ms: Option<i64>,
    /// Seconds since the pipeline started.
    pub uptime_s: u64,
    /// The stream is stale (signals paused).
    pub stale: bool,
    /// Live closed candles of this stream.
    pub live_candles: u64,
    /// Records the store wrote (with a store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_written: Option<u64>,
    /// Records the store lost (with a store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_lost: Option<u64>,
    /// Records waiting for the store writer (with a store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_queued: Option<u64>,
}

impl StreamStats {
    /// Every number with its field name (booleans as 0/1; absent ones left out), for `/metrics`.
    pub fn numbers(&self) -> Vec<(&'static str, f64)> {
        let mut out = vec![
            ("latency_p50_us", self.latency_p50_us as f64),
            ("latency_p99_us", self.latency_p99_us as f64),
            ("latency_max_us", self.latency_max_us as f64),
            ("messages_received", self.messages_received as f64),
            ("messages_processed", self.messages_processed as f64),
            ("malformed", self.malformed as f64),
            ("reconnections", self.reconnections as f64),
            ("backfilled", self.backfilled as f64),
            ("records", self.records as f64),
            ("strategy_failures", self.strategy_failures as f64),
            ("uptime_s", self.uptime_s as f64),
            ("stale", f64::from(u8::from(self.stale))),
            ("live_candles", self.live_candles as f64),
        ];
        let optional = [
            ("feed_lag_ms", self.feed_lag_ms.map(|v| v as f64)),
            ("store_written", self.store_written.map(|v| v as f64)),
            ("store_lost", self.store_lost.map(|v| v as f64)),
            ("store_queued", self.store_queued.map(|v| v as f64)),
        ];
        out.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_the_field_names_the_page_reads() {
        let s = StreamStats {
            connection: ConnState::Reconnecting {
                attempt: 3,
                in_ms: 10,
            }
            .phase(),
            latency_p99_us: 31,
            store_written: Some(4),
            ..StreamStats::default()
        };
        let v = serde_json::to_value(s).unwrap();
        assert_eq!(v["connection"], "reconnecting (attempt 3)");
        assert_eq!(v["latency_p99_us"], 31);
        assert_eq!(v["store_written"], 4);
        assert!(v.get("store_lost").is_none());
        assert!(v["feed_lag_ms"].is_null());
        // Every number the JSON carries is on /metrics, and nothing else.
        let numbers: Vec<&str> = s.numbers().iter().map(|(k, _)| *k).collect();
        let json_numbers: Vec<&str> = v
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| v.is_number() || v.is_boolean())
            .map(|(k, _)| k.as_str())
            .collect();
        let mut a = numbers.clone();
        let mut b = json_numbers.clone();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
    }
}
