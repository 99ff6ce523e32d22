//! `manus serve --bus`: the dashboard's live page over every worker's streams. Two ordered
//! consumers (new messages only) feed the closed candles and records on the bus into the
//! [`LiveHub`], as a local pipeline would.

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use manus_core::record::SignalRecord;
use manus_exchange::feed::StreamKey;

use super::publish::CandleMsg;
use super::{BusConfig, BusError, CANDLES_STREAM, SIGNALS_STREAM, ensure_streams};
use crate::web::LiveHub;

/// Feeds `hub` from the bus until the connection ends; a message that does not parse is
/// skipped with a warning.
pub async fn feed_hub(cfg: BusConfig, hub: LiveHub) -> Result<(), BusError> {
    let js = cfg.connect(false).await?;
    ensure_streams(&js, cfg.retention).await?;
    let mut readers = Vec::new();
    for name in [CANDLES_STREAM, SIGNALS_STREAM] {
        let err = |e: async_nats::Error| BusError::Stream { name, source: e };
        let msgs = js
            .get_stream_no_info(name)
            .await
            .map_err(|e| err(e.into()))?
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|e| err(e.into()))?
            .messages()
            .await
            .map_err(|e| err(e.into()))?;
        readers.push(msgs.map(move |m| (name, m)));
    }
    let mut all = futures_util::stream::select_all(readers);
    tracing::info!("live page fed from the bus at {}", cfg.urls);
    while let Some((name, msg)) = all.next().await {
        let msg = msg.map_err(|e| BusError::Stream {
            name,
            source: e.into(),
        })?;
        if name == CANDLES_STREAM {
            match serde_json::from_slice::<CandleMsg>(&msg.payload) {
                Ok(c) => hub.publish_candle(
                    &StreamKey {
                        symbol: c.symbol,
                        interval: c.interval,
                    },
                    &c.candle,
                    false,
                ),
                Err(e) => tracing::warn!("a candle on {} that does not parse: {e}", msg.subject),
            }
        } else {
            match serde_json::from_slice::<SignalRecord>(&msg.payload) {
                Ok(r) => hub.publish_record(&r),
                Err(e) => tracing::warn!("a record on {} that does not parse: {e}", msg.subject),
            }
        }
    }
    Ok(())
}
