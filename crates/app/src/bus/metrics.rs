//! A worker's `/metrics` (`manus worker --metrics ADDR`): owned streams, live workers, lease
//! renewals, takeovers and hand-backs, and the publisher's counters and backlog, in the
//! Prometheus text format.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::Router;
use axum::routing::get;

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

impl WorkerMetrics {
    /// The Prometheus text.
    pub fn render(&self) -> String {
        let l = &self.leases;
        let r = self.bus.report();
        let rows: [(&str, &str, &str, u64); 10] = [
            (
                "manus_worker_owned_streams",
                "gauge",
                "Streams whose lease this worker holds.",
                l.owned.load(Relaxed),
            ),
            (
                "manus_worker_live_workers",
                "gauge",
                "Workers heartbeating in the lease bucket.",
                l.workers.load(Relaxed),
            ),
            (
                "manus_worker_lease_renewals_total",
                "counter",
                "Leases renewed.",
                l.renewals.load(Relaxed),
            ),
            (
                "manus_worker_leases_acquired_total",
                "counter",
                "Leases taken (start, rebalance, takeover of a dead worker's streams).",
                l.acquired.load(Relaxed),
            ),
            (
                "manus_worker_leases_released_total",
                "counter",
                "Leases handed back to rebalance.",
                l.released.load(Relaxed),
            ),
            (
                "manus_worker_leases_lost_total",
                "counter",
                "Leases not renewed in time.",
                l.lost.load(Relaxed),
            ),
            (
                "manus_bus_published_total",
                "counter",
                "Messages the bus acknowledged.",
                r.published,
            ),
            (
                "manus_bus_dropped_total",
                "counter",
                "Messages dropped on a full publish queue.",
                r.dropped,
            ),
            (
                "manus_bus_retries_total",
                "counter",
                "Republish rounds after a failed publish.",
                r.retries,
            ),
            (
                "manus_bus_backlog",
                "gauge",
                "Messages queued or awaiting their ack.",
                r.backlog,
            ),
        ];
        let mut out = String::with_capacity(2048);
        for (name, kind, help, v) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        out
    }
}

/// Serves `GET /metrics` on `addr` (on the current runtime) until the process ends; returns
/// the bound address.
pub async fn serve(addr: SocketAddr, m: WorkerMetrics) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new().route("/metrics", get(move || async move { m.render() }));
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
        m.bus.queued.store(7, Relaxed);
        m.bus.published.store(5, Relaxed);
        let text = m.render();
        assert!(text.contains("\nmanus_worker_owned_streams 20\n"), "{text}");
        assert!(text.contains("\nmanus_bus_backlog 2\n"), "{text}");
        assert!(
            text.contains("# TYPE manus_worker_lease_renewals_total counter"),
            "{text}"
        );
    }
}
