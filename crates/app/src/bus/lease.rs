//! Stream ownership among workers: a lease per stream in the JetStream key-value bucket
//! [`BUCKET`] (key `streams.{exchange}.{SYMBOL}.{interval}`, value the owner's id), whose
//! entries expire [`Leases::ttl`] after their last write. Each worker renews its leases every
//! third of the TTL and heartbeats `workers.{id}` in the same bucket; the live workers' count
//! sets each one's fair share (the stream count divided by it, rounded up). A worker below it
//! takes free leases (those of a dead worker, once expired); a worker above it gives streams
//! back, but only after its pipeline stopped them and the bus acknowledged their records
//! (the `applied` set), so the next owner resumes from the bus without a gap.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures_util::TryStreamExt;
use manus_exchange::feed::StreamKey;
use tokio::sync::watch;

use super::BusError;

/// The lease bucket.
pub const BUCKET: &str = "manus_leases";

/// Lease counters, for the status line and `/metrics`.
#[derive(Debug, Default)]
pub struct LeaseStats {
    /// Streams owned now.
    pub owned: AtomicU64,
    /// Live workers seen at the last round.
    pub workers: AtomicU64,
    /// Successful renewals.
    pub renewals: AtomicU64,
    /// Leases taken (at start, on a join's rebalance, or over from a dead worker).
    pub acquired: AtomicU64,
    /// Leases given back to rebalance.
    pub released: AtomicU64,
    /// Leases lost (not renewed in time: another worker may own the stream now).
    pub lost: AtomicU64,
    /// Streams started on the feed (each time one starts: a stream kept across a change of
    /// the owned set is not started again).
    pub stream_starts: AtomicU64,
    /// Streams stopped on the feed (given back, lost, or at a feed restart).
    pub stream_stops: AtomicU64,
    /// Times the whole feed was restarted (it stopped on its own).
    pub feed_restarts: AtomicU64,
}

/// The key of a stream's lease.
pub fn lease_key(exchange: &str, s: &StreamKey) -> String {
    format!("streams.{exchange}.{}.{}", s.symbol, s.interval)
}

/// A worker's view of the leases.
#[derive(Debug)]
pub struct Leases {
    kv: kv::Store,
    me: String,
    /// How long an entry lives without renewal (the bucket's max age).
    pub ttl: Duration,
    exchange: String,
    /// Every stream of the run, in this worker's preference order.
    all: Vec<StreamKey>,
    /// Leases held: stream → the revision to renew against.
    owned: BTreeMap<StreamKey, u64>,
    /// Of those, the ones the pipeline should run.
    want: BTreeSet<StreamKey>,
    stats: Arc<LeaseStats>,
}

/// Opens (or creates) the bucket with this TTL (an existing bucket keeps its own).
pub async fn bucket(js: &jetstream::Context, ttl: Duration) -> Result<kv::Store, BusError> {
    let err = |e: async_nats::Error| BusError::Kv {
        bucket: BUCKET,
        source: e,
    };
    if let Ok(kv) = js.get_key_value(BUCKET).await {
        return Ok(kv);
    }
    // The bucket's stream as `create_key_value` would make it: that call first reads the
    // account's limits in a shape Debian's nats-server 2.9 does not answer with.
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("KV_{BUCKET}"),
        subjects: vec![format!("$KV.{BUCKET}.>")],
        max_messages_per_subject: 1,
        max_age: ttl,
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .map_err(|e| err(e.into()))?;
    js.get_key_value(BUCKET).await.map_err(|e| err(e.into()))
}

impl Leases {
    /// A worker `me` competing for `all` streams.
    pub fn new(
        kv: kv::Store,
        me: &str,
        ttl: Duration,
        exchange: &str,
        all: &[StreamKey],
        stats: Arc<LeaseStats>,
    ) -> Self {
        // Each worker tries the free streams from its own starting point, so joiners do not
        // all race for the same keys.
        let mut all = all.to_vec();
        if !all.is_empty() {
            let start = me
                .bytes()
                .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
            let n = all.len();
            all.rotate_left(start % n);
        }
        Leases {
            kv,
            me: me.to_string(),
            ttl,
            exchange: exchange.to_string(),
            all,
            owned: BTreeMap::new(),
            want: BTreeSet::new(),
            stats,
        }
    }

    fn worker_key(&self) -> String {
        format!("workers.{}", self.me)
    }

    /// One round: heartbeat, renew, then take or give back streams towards the fair share.
    /// `applied` is what the pipeline runs now; a lease given back is deleted only once its
    /// stream left it. `acquire` is false on the first round (let the others' heartbeats
    /// show first). Returns the streams the pipeline should run.
    pub async fn round(
        &mut self,
        applied: &BTreeSet<StreamKey>,
        acquire: bool,
    ) -> &BTreeSet<StreamKey> {
        let me = bytes::Bytes::from(self.me.clone());
        if let Err(e) = self.kv.put(self.worker_key(), me.clone()).await {
            tracing::warn!("lease heartbeat failed: {e}");
        }
        // Renew.
        let mut lost = Vec::new();
        for (s, rev) in self.owned.iter_mut() {
            let key = lease_key(&self.exchange, s);
            match self.kv.update(&key, me.clone(), *rev).await {
                Ok(r) => {
                    *rev = r;
                    self.stats.renewals.fetch_add(1, Relaxed);
                }
                Err(e) => {
                    tracing::warn!("lease {key} lost: {e}");
                    lost.push(s.clone());
                }
            }
        }
        for s in lost {
            self.owned.remove(&s);
            self.want.remove(&s);
            self.stats.lost.fetch_add(1, Relaxed);
        }
        // Give back what the pipeline no longer runs.
        let done: Vec<StreamKey> = self
            .owned
            .keys()
            .filter(|s| !self.want.contains(*s) && !applied.contains(*s))
            .cloned()
            .collect();
        for s in done {
            let rev = self.owned.remove(&s);
            let key = lease_key(&self.exchange, &s);
            if let Err(e) = self.kv.delete_expect_revision(&key, rev).await {
                tracing::warn!("releasing lease {key}: {e} (it expires in {:?})", self.ttl);
            }
            self.stats.released.fetch_add(1, Relaxed);
        }
        if let Ok(present) = self.present().await {
            let workers = present
                .iter()
                .filter(|k| k.starts_with("workers."))
                .count()
                .max(1);
            self.stats.workers.store(workers as u64, Relaxed);
            let fair = self.all.len().div_ceil(workers);
            if self.want.len() > fair {
                // The last ones in preference order go back.
                let surplus: Vec<StreamKey> = self
                    .all
                    .iter()
                    .rev()
                    .filter(|s| self.want.contains(*s))
                    .take(self.want.len() - fair)
                    .cloned()
                    .collect();
                for s in surplus {
                    self.want.remove(&s);
                }
            } else if acquire && self.want.len() < fair {
                for s in self.all.clone() {
                    if self.want.len() >= fair {
                        break;
                    }
                    let key = lease_key(&self.exchange, &s);
                    if self.owned.contains_key(&s) || present.contains(&key) {
                        continue;
                    }
                    if let Ok(rev) = self.kv.create(&key, me.clone()).await {
                        self.owned.insert(s.clone(), rev);
                        self.want.insert(s);
                        self.stats.acquired.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        self.stats.owned.store(self.owned.len() as u64, Relaxed);
        &self.want
    }

    /// The keys in the bucket now (live leases and heartbeats).
    async fn present(&self) -> Result<HashSet<String>, BusError> {
        let keys = self.kv.keys().await.map_err(|e| BusError::Kv {
            bucket: BUCKET,
            source: e.into(),
        })?;
        keys.try_collect().await.map_err(|e| BusError::Kv {
            bucket: BUCKET,
            source: e.into(),
        })
    }

    /// Gives every lease and the heartbeat back (a clean stop: the others take over at once).
    pub async fn release_all(&mut self) {
        for (s, rev) in std::mem::take(&mut self.owned) {
            let _ = self
                .kv
                .delete_expect_revision(lease_key(&self.exchange, &s), Some(rev))
                .await;
        }
        let _ = self.kv.delete(self.worker_key()).await;
        self.want.clear();
        self.stats.owned.store(0, Relaxed);
    }
}

/// Runs rounds every third of the TTL until `stop`: publishes the wanted set on `want` and
/// reads what the pipeline runs from `applied`. Releases everything when stopped.
pub async fn run(
    mut leases: Leases,
    want: watch::Sender<BTreeSet<StreamKey>>,
    mut applied: watch::Receiver<BTreeSet<StreamKey>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(leases.ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            // A pipeline restart may free leases to give back now rather than a tick later.
            r = applied.changed() => if r.is_err() { break },
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let running = applied.borrow_and_update().clone();
        let w = leases.round(&running, !first).await.clone();
        first = false;
        want.send_if_modified(|cur| {
            let changed = *cur != w;
            *cur = w;
            changed
        });
    }
    leases.release_all().await;
}
