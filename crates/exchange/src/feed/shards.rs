//! Spreading streams over several connections: an exchange caps the streams one connection may
//! carry ([`crate::venue::Venue::max_streams`]), so a feed with more opens one connection per
//! shard. Each shard is a whole driver (its own socket, lanes, reconnect, backfill and
//! handover) over its own streams, so every stream lives on exactly one connection and a drop
//! costs only that connection's streams a backfill; the shards share the consumer's channel,
//! the counters, the REST client and the connection pacer. Streams added while the feed runs
//! ([`super::Feed::add`]) get shards of their own, so the running ones are never touched; a
//! shard whose streams were all removed closes.

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
}
