//! A worker's `/metrics` (`manus worker --metrics ADDR`): owned streams, live workers, lease
//! renewals, takeovers and hand-backs, and the publisher's counters (messages produced,
//! acknowledged, dropped, retried) and backlog, in the OpenMetrics text format encoded by
//! `prometheus-client` (as the dashboard's), read from the counters where they live at
//! scrape time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::Router;
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::BusStats;
use super::lease::LeaseStats;

/// The counters shown.
#[derive(Debug, Clone)]
pub struct WorkerMetrics {
    /// Lease counters.
    pub leases: Arc<LeaseStats>,
    /// Publisher counters.
    pub bus: Arc<BusStats>,
}

impl Collector for WorkerMetrics {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let l = &self.leases;
        let r = self.bus.report();
        let gauges = [
            (
                "manus_worker_owned_streams",
                "Streams whose lease this worker holds.",
                l.owned.load(Relaxed),
            ),
            (
                "manus_worker_live_workers",
                "Workers heartbeating in the lease bucket.",
                l.workers.load(Relaxed),
            ),
            (
                "manus_bus_backlog",
                "Messages queued or awaiting their ack.",
                r.backlog,
            ),
        ];
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v as i64);
            g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let counters = [
            (
                "manus_worker_lease_renewals",
                "Leases renewed.",
                l.renewals.load(Relaxed),
            ),
            (
                "manus_worker_leases_acquired",
                "Leases taken (start, rebalance, takeover of a dead worker's streams).",
                l.acquired.load(Relaxed),
            ),
            (
                "manus_worker_leases_released",
                "Leases handed back to rebalance.",
                l.released.load(Relaxed),
            ),
            (
                "manus_worker_leases_lost",
                "Leases not renewed in time.",
                l.lost.load(Relaxed),
            ),
            (
                "manus_worker_stream_starts",
                "Streams started on the feed (a stream kept across a rebalance is not restarted).",
                l.stream_starts.load(Relaxed),
            ),
            (
                "manus_worker_stream_stops",
                "Streams stopped on the feed (handed back, lost, or a feed restart).",
                l.stream_stops.load(Relaxed),
            ),
            (
                "manus_worker_feed_restarts",
                "Times the whole feed was restarted after it stopped on its own.",
                l.feed_restarts.load(Relaxed),
            ),
            (
                "manus_bus_queued",
                "Messages handed to the publisher (every candle and record produced).",
                self.bus.queued.load(Relaxed),
            ),
            (
                "manus_bus_published",
                "Messages the bus acknowledged.",
                r.published,
            ),
            (
                "manus_bus_dropped",
                "Messages dropped on a full publish queue.",
                r.dropped,
            ),
            (
                "manus_bus_retries",
                "Republish rounds after a failed publish.",
                r.retries,
            ),
        ];
        for (name, help, v) in counters {
            let c = ConstCounter::new(v);
            c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        Ok(())
    }
}

impl WorkerMetrics {
    /// The exposition text (ends with `# EOF`).
    pub fn render(&self) -> String {
        let mut r = Registry::default();
        r.register_collector(Box::new(self.clone()));
        let mut out = String::with_capacity(2048);
        // Writing into a String cannot fail, and the collector returns only the writer's errors.
        let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        out
    }
}

/// Serves `GET /metrics` on `addr` (on the current runtime) until the process ends; returns
/// the bound address.
pub async fn serve(addr: SocketAddr, m: WorkerMetrics) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new().route(
        "/metrics",
        get(move || async move {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    crate::web::metrics::CONTENT_TYPE,
                )],
                m.render(),
            )
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("the metrics server stopped: {e}");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_show_leases_and_backlog() {
        let m = WorkerMetrics {
            leases: Arc::default(),
            bus: Arc::default(),
        };
        m.leases.owned.store(20, Relaxed);
        m.leases.renewals.store(3, Relaxed);
        m.leases.stream_starts.store(25, Relaxed);
        m.bus.queued.store(7, Relaxed);
        m.bus.published.store(5, Relaxed);
        let text = m.render();
        assert!(text.contains("\nmanus_worker_owned_streams 20\n"), "{text}");
        assert!(text.contains("\nmanus_bus_backlog 2\n"), "{text}");
        assert!(text.contains("\nmanus_bus_queued_total 7\n"), "{text}");
        assert!(
            text.contains("\nmanus_worker_lease_renewals_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains("\nmanus_worker_stream_starts_total 25\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
