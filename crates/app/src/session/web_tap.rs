//! [`WebTap`]: the live loop's [`Tap`] that feeds the web dashboard's [`LiveHub`]. It lives in
//! the session, which knows both sides, so the live pipeline and the web page never import
//! each other.

use std::sync::Arc;

use manus_core::record::SignalRecord;
use manus_exchange::FeedCounters;
use manus_exchange::feed::FeedEvent;

use crate::live::{Pipeline, Tap};
use crate::web::LiveHub;

/// Publishes candles, records and (a few times a second) header figures to a hub.
#[derive(Debug, Clone)]
pub struct WebTap {
    hub: LiveHub,
    counters: Arc<FeedCounters>,
}

impl WebTap {
    /// A tap publishing to `hub`, with the feed's `counters` for the header figures.
    pub fn new(hub: LiveHub, counters: Arc<FeedCounters>) -> Self {
        WebTap { hub, counters }
    }
}

impl Tap for WebTap {
    fn on_event(&mut self, ev: &FeedEvent) {
        self.hub.on_feed_event(ev);
    }

    fn on_record(&mut self, rec: &SignalRecord) {
        self.hub.publish_record(rec);
    }

    fn after_event(&mut self, pipeline: &Pipeline) {
        // Throttled by the hub: the figures cost a histogram read.
        if !self.hub.stats_due() {
            return;
        }
        let c = self.counters.snapshot();
        for (st, stats) in pipeline.stream_stats(&c) {
            self.hub.publish_stats(&st.key, stats);
        }
    }
}
