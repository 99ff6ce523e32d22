//! The NATS JetStream bus (`--bus nats://HOST:PORT[,...]`): closed candles and signal records
//! are published to the streams [`CANDLES_STREAM`] and [`SIGNALS_STREAM`] on subjects
//! `manus.{candles,signals}.{exchange}.{SYMBOL}.{interval}`, each with the header
//! `Nats-Msg-Id: {exchange}:{SYMBOL}:{interval}:{open_time}` so a record published twice
//! (restart, failover, overlap) is stored once. Publishing is off the candle path
//! ([`publish`]); workers share streams through leases ([`lease`]).

pub mod alerts;
pub mod hub;
pub mod lease;
pub mod metrics;
pub mod publish;

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use manus_core::Interval;

pub use publish::{BusReport, BusStats, BusTap, Publisher};

/// The stream holding closed candles.
pub const CANDLES_STREAM: &str = "MANUS_CANDLES";
/// The stream holding signal records.
pub const SIGNALS_STREAM: &str = "MANUS_SIGNALS";
/// How long the streams keep messages unless configured otherwise.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long JetStream remembers message ids: long enough to cover a takeover or a restart
/// that republishes what the previous owner already sent.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// What a bus message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A closed candle.
    Candle,
    /// A signal record.
    Signal,
}

impl Kind {
    fn token(self) -> &'static str {
        match self {
            Kind::Candle => "candles",
            Kind::Signal => "signals",
        }
    }
}

/// Errors of the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A `--bus` value that is not a list of `nats://HOST:PORT`.
    #[error("--bus '{url}': {why}; expected nats://HOST:PORT[,nats://HOST:PORT...]")]
    BadUrl {
        /// The value given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The server could not be reached.
    #[error("connecting to the bus at {url}: {source}")]
    Connect {
        /// The servers tried.
        url: String,
        /// The client's error.
        source: async_nats::ConnectError,
    },
    /// A stream could not be created or read.
    #[error("JetStream stream {name}: {source}")]
    Stream {
        /// The stream.
        name: &'static str,
        /// The server's answer.
        source: async_nats::Error,
    },
    /// The lease bucket could not be created or used.
    #[error("JetStream key-value bucket {bucket}: {source}")]
    Kv {
        /// The bucket.
        bucket: &'static str,
        /// The server's answer.
        source: async_nats::Error,
    },
}

/// Where the bus is and how long it keeps messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusConfig {
    /// The checked server list, comma-separated.
    pub urls: String,
    /// How long [`CANDLES_STREAM`] and [`SIGNALS_STREAM`] keep messages when this process
    /// creates them.
    pub retention: Duration,
}

impl BusConfig {
    /// Checks `urls` (`nats://HOST:PORT`, comma-separated) with the default retention.
    pub fn parse(urls: &str) -> Result<Self, BusError> {
        let bad = |why: String| BusError::BadUrl {
            url: urls.to_string(),
            why,
        };
        let parts: Vec<&str> = urls
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() {
            return Err(bad("no server".into()));
        }
        for p in &parts {
            let url =
                reqwest::Url::parse(p).map_err(|e| bad(format!("'{p}' is not a URL ({e})")))?;
            if !matches!(url.scheme(), "nats" | "tls") {
                return Err(bad(format!("scheme '{}' is not supported", url.scheme())));
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(bad(format!("'{p}' has no host")));
            }
        }
        Ok(BusConfig {
            urls: parts.join(","),
            retention: DEFAULT_RETENTION,
        })
    }

    /// Connects; with `retry`, returns at once and keeps trying in the background (a
    /// publisher must not hold up the local outputs while the bus is down).
    pub async fn connect(&self, retry: bool) -> Result<jetstream::Context, BusError> {
        let mut opts = async_nats::ConnectOptions::new()
            .name("manus")
            .max_reconnects(None);
        if retry {
            opts = opts.retry_on_initial_connect();
        }
        let client =
            opts.connect(self.urls.as_str())
                .await
                .map_err(|source| BusError::Connect {
                    url: self.urls.clone(),
                    source,
                })?;
        Ok(jetstream::new(client))
    }
}

/// `--bus URL [--bus-retention-days N]`, shared by `live`, `demo` and `worker`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BusArgs {
    /// Also publish every closed candle and signal record to this NATS JetStream bus,
    /// e.g. nats://127.0.0.1:4222 (several servers: comma-separated).
    #[arg(long, value_name = "nats://HOST:PORT[,...]", env = "MANUS_BUS")]
    pub bus: Option<String>,
    /// Days the bus streams keep messages when this process creates them (default 7).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u64).range(1..=3650))]
    pub bus_retention_days: Option<u64>,
}

impl BusArgs {
    /// The checked bus, from the flag or else the settings file's `bus`.
    pub fn config(&self, settings_bus: Option<&str>) -> Result<Option<BusConfig>, BusError> {
        let Some(urls) = self.bus.as_deref().or(settings_bus) else {
            return Ok(None);
        };
        let mut cfg = BusConfig::parse(urls)?;
        if let Some(days) = self.bus_retention_days {
            cfg.retention = Duration::from_secs(days * 24 * 3600);
        }
        Ok(Some(cfg))
    }
}

/// A run's bus: where, and the exchange name its subjects carry.
#[derive(Debug, Clone)]
pub struct BusTarget {
    /// The bus.
    pub config: BusConfig,
    /// The exchange token of the subjects and ids (e.g. `binanceus`; the demo's is `sim`).
    pub exchange: String,
}

/// The subject of a message: `manus.{candles|signals}.{exchange}.{SYMBOL}.{interval}`.
pub fn subject(kind: Kind, exchange: &str, symbol: &str, interval: Interval) -> String {
    format!("manus.{}.{exchange}.{symbol}.{interval}", kind.token())
}

/// The message id JetStream deduplicates on: `{exchange}:{SYMBOL}:{interval}:{open_time}`.
pub fn msg_id(exchange: &str, symbol: &str, interval: Interval, open_time: i64) -> String {
    format!("{exchange}:{symbol}:{interval}:{open_time}")
}

/// Creates [`CANDLES_STREAM`] and [`SIGNALS_STREAM`] when missing (an existing stream keeps
/// its configuration: retention is the operator's once set).
pub async fn ensure_streams(js: &jetstream::Context, retention: Duration) -> Result<(), BusError> {
    for (name, kind) in [
        (CANDLES_STREAM, Kind::Candle),
        (SIGNALS_STREAM, Kind::Signal),
    ] {
        js.get_or_create_stream(stream::Config {
            name: name.to_string(),
            subjects: vec![format!("manus.{}.>", kind.token())],
            max_age: retention,
            duplicate_window: DUPLICATE_WINDOW.min(retention),
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| BusError::Stream {
            name,
            source: e.into(),
        })?;
    }
    Ok(())
}

/// The open time of the newest signal record of a stream on the bus, if any (where a worker
/// taking a stream over resumes).
pub async fn last_signal(
    js: &jetstream::Context,
    exchange: &str,
    symbol: &str,
    interval: Interval,
) -> Result<Option<i64>, BusError> {
    let err = |e: async_nats::Error| BusError::Stream {
        name: SIGNALS_STREAM,
        source: e,
    };
    let stream = js
        .get_stream_no_info(SIGNALS_STREAM)
        .await
        .map_err(|e| err(e.into()))?;
    let subject = subject(Kind::Signal, exchange, symbol, interval);
    match stream.get_last_raw_message_by_subject(&subject).await {
        Ok(msg) => {
            #[derive(serde::Deserialize)]
            struct OpenTime {
                open_time: i64,
            }
            let rec: OpenTime = serde_json::from_slice(&msg.payload).map_err(|e| err(e.into()))?;
            Ok(Some(rec.open_time))
        }
        Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(err(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_ids_follow_the_documented_shape() {
        assert_eq!(
            subject(Kind::Signal, "binance", "BTCUSDT", Interval::M5),
            "manus.signals.binance.BTCUSDT.5m"
        );
        assert_eq!(
            subject(Kind::Candle, "okx", "ETHUSDT", Interval::H1),
            "manus.candles.okx.ETHUSDT.1h"
        );
        assert_eq!(
            msg_id("binance", "BTCUSDT", Interval::M5, 1_700_000_000_000),
            "binance:BTCUSDT:5m:1700000000000"
        );
    }

    #[test]
    fn the_flag_wins_over_the_settings_file_and_sets_the_retention() {
        let none = BusArgs::default();
        assert_eq!(none.config(None).unwrap(), None);
        let from_file = none.config(Some("nats://10.0.0.1:4222")).unwrap().unwrap();
        assert_eq!(from_file.urls, "nats://10.0.0.1:4222");
        let flag = BusArgs {
            bus: Some("nats://127.0.0.1:4222".into()),
            bus_retention_days: Some(2),
        };
        let cfg = flag.config(Some("nats://10.0.0.1:4222")).unwrap().unwrap();
        assert_eq!(cfg.urls, "nats://127.0.0.1:4222");
        assert_eq!(cfg.retention, Duration::from_secs(2 * 24 * 3600));
        let settings: crate::config::Settings =
            toml::from_str("bus = \"nats://127.0.0.1:4222\"").unwrap();
        assert_eq!(settings.bus.as_deref(), Some("nats://127.0.0.1:4222"));
    }

    #[test]
    fn bus_urls_are_checked_at_once() {
        let ok = BusConfig::parse(" nats://127.0.0.1:4222 , nats://10.0.0.2:4222").unwrap();
        assert_eq!(ok.urls, "nats://127.0.0.1:4222,nats://10.0.0.2:4222");
        assert_eq!(ok.retention, DEFAULT_RETENTION);
        for (bad, want) in [
            ("", "no server"),
            ("http://x:1", "scheme 'http'"),
            ("notaurl", "not a URL"),
        ] {
            let e = BusConfig::parse(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
