//! The live pipeline: for each (symbol, interval) stream a [`SignalEngine`](manus_core::SignalEngine)
//! and a rolling window, fed by any [`MarketFeed`](manus_exchange::feed::MarketFeed).
//!
//! Key types: [`Pipeline`] (synchronous: feed events in, [`SignalRecord`](manus_core::record::SignalRecord)s
//! out, latency histogram), [`run_headless`] (the async loop writing JSON lines), [`Shutdown`]
//! (SIGINT/SIGTERM) and [`ScriptedFeed`] (an in-memory feed for tests and benchmarks).
//!
//! One task drives every stream: a closed candle costs microseconds, far less than handing it to
//! another thread would, so the socket task and this loop are the only two that matter.

pub mod breakdown;
mod fine_timer;
pub mod pipeline;
pub mod prewarm;
pub mod run;
pub mod scripted;

pub use pipeline::{
    ConnState, DecisionEntry, Latency, Level, Pipeline, PipelineConfig, StreamState, Totals,
};
pub use run::{RecordSink, Shutdown, Stop, Stopper, Tap, handle, run_headless};
pub use scripted::ScriptedFeed;

#[cfg(test)]
mod tests;
