//! `/metrics`: the server's, the hub's, the store writer's and every live stream's counters in
//! the OpenMetrics text format, encoded by `prometheus-client`. The values live where they are
//! counted (atomics of the server, the hub and the store writer; the hub's per-stream
//! figures), so a scrape reads them through a [`Collector`] instead of keeping copies in sync.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::conns::ConnStats;
use super::hub::LiveHub;

/// The `Content-Type` of [`encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Request counters of the server.
#[derive(Debug, Default)]
pub struct WebMetrics {
    /// Requests answered.
    pub requests: AtomicU64,
    /// Requests refused for a missing or wrong token.
    pub unauthorized: AtomicU64,
    /// Requests answered with another 4xx status.
    pub client_errors: AtomicU64,
    /// Requests answered with a 5xx status.
    pub server_errors: AtomicU64,
    /// Connection counters of the accept loop.
    pub conns: ConnStats,
}

/// The registry a server's `/metrics` encodes: one collector reading `hub` and `web`.
pub fn registry(hub: LiveHub, web: Arc<WebMetrics>) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(Figures { hub, web }));
    r
}

/// The exposition text of `registry` (ends with `# EOF`).
pub fn encode(registry: &Registry) -> String {
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail, and our collector returns only the writer's errors.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// Reads every figure at scrape time.
#[derive(Debug)]
struct Figures {
    hub: LiveHub,
    web: Arc<WebMetrics>,
}

fn ld(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

fn ldz(a: &AtomicUsize) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

type Enc<'a, 'b> = &'a mut DescriptorEncoder<'b>;

/// A counter without labels (`NAME_total`).
fn counter(e: Enc, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

/// A gauge without labels.
fn gauge(e: Enc, name: &str, help: &str, v: f64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

/// A counter family, one sample per label set.
fn counters<L: EncodeLabelSet>(
    e: Enc,
    name: &str,
    help: &str,
    rows: &[(L, u64)],
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, ConstCounter::new(0u64).metric_type())?;
    for (labels, v) in rows {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

/// A gauge family, one sample per label set.
fn gauges<L: EncodeLabelSet>(
    e: Enc,
    name: &str,
    help: &str,
    rows: &[(L, f64)],
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, ConstGauge::new(0.0f64).metric_type())?;
    for (labels, v) in rows {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

impl Collector for Figures {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let e = &mut e;
        let m = &self.web;
        counter(
            e,
            "manus_web_requests",
            "HTTP requests answered.",
            ld(&m.requests),
        )?;
        counter(
            e,
            "manus_web_unauthorized",
            "Requests refused for a missing or wrong token.",
            ld(&m.unauthorized),
        )?;
        counter(
            e,
            "manus_web_client_errors",
            "Requests answered with a 4xx status.",
            ld(&m.client_errors),
        )?;
        counter(
            e,
            "manus_web_server_errors",
            "Requests answered with a 5xx status.",
            ld(&m.server_errors),
        )?;
        gauge(
            e,
            "manus_web_connections",
            "Open HTTP connections.",
            ldz(&m.conns.open),
        )?;
        counters(
            e,
            "manus_web_connections_closed",
            "Connections closed or refused by the connection limits.",
            &[
                ([("reason", "idle_evicted")], ld(&m.conns.evicted)),
                ([("reason", "refused_busy")], ld(&m.conns.refused)),
                ([("reason", "accept_error")], ld(&m.conns.accept_errors)),
            ],
        )?;
        let c = self.hub.counters();
        counters(
            e,
            "manus_hub_events",
            "Live events published to the web hub.",
            &[
                ([("kind", "candle")], ld(&c.candles)),
                ([("kind", "record")], ld(&c.records)),
                ([("kind", "stats")], ld(&c.stats)),
            ],
        )?;
        gauge(
            e,
            "manus_hub_subscribers",
            "Live event-stream clients connected.",
            ld(&c.subscribers) as f64,
        )?;
        counter(
            e,
            "manus_hub_lagged",
            "Times a slow client fell behind and was resynchronised.",
            ld(&c.lagged),
        )?;
        if let Some(st) = self.hub.store_stats() {
            let s = st.snapshot();
            counters(
                e,
                "manus_store_records",
                "Signal records handed to the store, by outcome (dropped, failed and abandoned are lost).",
                &[
                    ([("outcome", "written")], s.written),
                    ([("outcome", "duplicate")], s.duplicates),
                    ([("outcome", "dropped")], s.dropped),
                    ([("outcome", "failed")], s.write_errors),
                    ([("outcome", "abandoned")], s.abandoned),
                ],
            )?;
            counter(
                e,
                "manus_store_lost",
                "Signal records not stored (dropped, failed or abandoned at shutdown).",
                s.lost(),
            )?;
            gauge(
                e,
                "manus_store_queue_depth",
                "Signal records waiting for the store writer.",
                s.depth as f64,
            )?;
            let kinds: Vec<([(&str, &str); 1], u64)> = st
                .failures()
                .iter()
                .map(|f| ([("kind", f.kind.as_str())], f.count))
                .collect();
            counters(
                e,
                "manus_store_write_failures",
                "Signal records the store failed to write, by kind of failure.",
                &kinds,
            )?;
        }
        // Copied out of the hub's lock: a few numbers per stream, nothing cloned in bulk.
        let streams = self.hub.stream_figures();
        let label = |s: &super::hub::StreamFigures| {
            [
                ("symbol", s.symbol.clone()),
                ("interval", s.interval.as_str().to_string()),
            ]
        };
        let prices: Vec<_> = streams
            .iter()
            .filter_map(|s| Some((label(s), s.last_price?)))
            .collect();
        gauges(
            e,
            "manus_stream_last_price",
            "Latest price per live stream.",
            &prices,
        )?;
        let mut signals = Vec::with_capacity(streams.len() * 3);
        for s in &streams {
            let [sym, iv] = label(s);
            for (d, n) in [("BUY", s.buys), ("SELL", s.sells), ("HOLD", s.holds)] {
                signals.push(([sym.clone(), iv.clone(), ("decision", d.to_string())], n));
            }
        }
        counters(
            e,
            "manus_stream_signals",
            "Closed-candle records per live stream and confluence decision.",
            &signals,
        )?;
        // Every number of the header figures, as a gauge per stream.
        let mut figures: std::collections::BTreeMap<&str, Vec<_>> = Default::default();
        for s in &streams {
            for (k, v) in s.stats.iter().flat_map(|st| st.numbers()) {
                figures.entry(k).or_default().push((label(s), v));
            }
        }
        for (k, rows) in figures {
            gauges(
                e,
                &format!("manus_live_{k}"),
                "Live pipeline figure, as on the dashboard header.",
                &rows,
            )?;
        }
        Ok(())
    }
}
