//! Spreading streams over several connections: an exchange caps the streams one connection may
//! carry ([`crate::venue::Venue::max_streams`]), so a feed with more opens one connection per
//! shard. Each shard is a whole driver (its own socket, lanes, reconnect, backfill and
//! handover) over its own streams, so every stream lives on exactly one connection and a drop
//! costs only that connection's streams a backfill; the shards share the consumer's channel,
//! the counters, the REST client and the connection pacer.

use std::future::Future;

use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::StreamKey;

/// Splits `streams` into the fewest shards of at most `max` each, as even as possible and in
/// order (2,500 at 1,024 make 834 + 833 + 833, not 1,024 + 1,024 + 452: equal shards equal
/// the work of each socket task).
pub(crate) fn split(streams: &[StreamKey], max: usize) -> Vec<Vec<StreamKey>> {
    let max = max.max(1);
    let n = streams.len().div_ceil(max).max(1);
    let (base, extra) = (streams.len() / n, streams.len() % n);
    let mut out = Vec::with_capacity(n);
    let mut at = 0;
    for i in 0..n {
        let len = base + usize::from(i < extra);
        out.push(streams[at..at + len].to_vec());
        at += len;
    }
    out
}

/// Runs every shard's driver as its own task until all have ended or `stop` fires (or its
/// sender goes away); then stops each one and waits for them. Dropping or aborting this future
/// aborts the shards (the [`JoinSet`] does), and with them their sockets.
pub(crate) async fn supervise<F, Fut>(shards: Vec<F>, stop: oneshot::Receiver<()>)
where
    F: FnOnce(oneshot::Receiver<()>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut set = JoinSet::new();
    let mut stops = Vec::with_capacity(shards.len());
    for run in shards {
        let (tx, rx) = oneshot::channel();
        stops.push(tx);
        set.spawn(run(rx));
    }
    tokio::select! {
        _ = stop => {}
        _ = async { while set.join_next().await.is_some() {} } => return,
    }
    for s in stops {
        let _ = s.send(());
    }
    while set.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use manus_core::Interval;

    fn keys(n: usize) -> Vec<StreamKey> {
        (0..n)
            .map(|i| StreamKey {
                symbol: format!("S{i}USDT"),
                interval: Interval::M1,
            })
            .collect()
    }

    #[test]
    fn every_stream_lands_on_exactly_one_shard_within_the_cap() {
        for (n, max) in [(1, 1024), (1024, 1024), (1025, 1024), (2500, 1024), (7, 3)] {
            let all = keys(n);
            let shards = split(&all, max);
            assert_eq!(shards.len(), n.div_ceil(max), "{n} at {max}");
            assert!(shards.iter().all(|s| !s.is_empty() && s.len() <= max));
            let (lo, hi) = shards.iter().fold((usize::MAX, 0), |(lo, hi), s| {
                (lo.min(s.len()), hi.max(s.len()))
            });
            assert!(hi - lo <= 1, "uneven shards for {n} at {max}: {lo}..{hi}");
            // In order and each exactly once: the concatenation is the input.
            assert_eq!(shards.concat(), all);
        }
    }

    #[tokio::test]
    async fn stop_reaches_every_shard_and_waits_for_it() {
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        let shards: Vec<_> = (0..3)
            .map(|i| {
                let done = done_tx.clone();
                move |stop: oneshot::Receiver<()>| async move {
                    let _ = stop.await;
                    let _ = done.send(i);
                }
            })
            .collect();
        drop(done_tx);
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(supervise(shards, stop_rx));
        stop_tx.send(()).expect("supervisor listens");
        task.await.expect("supervisor ends");
        let mut stopped = Vec::new();
        while let Some(i) = done_rx.recv().await {
            stopped.push(i);
        }
        stopped.sort_unstable();
        assert_eq!(stopped, vec![0, 1, 2]);
    }
}
