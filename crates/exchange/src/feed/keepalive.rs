//! Keepalive per venue: how often a connection pings, how fast it sends its subscriptions, and
//! how long it may hear nothing before it is presumed dead.
//!
//! A quiet market is not a dead connection. Klines may stop while nothing trades (whether an
//! exchange keeps pushing unchanged klines then is not documented), so the silence watchdog
//! counts every frame, pongs and server pings included, and the connection pings at a third of
//! the silence timeout so that a live server always answers in time. A server that never
//! answered a ping on this connection (Binance.US may not) gets until its own next ping (every
//! 3 min there, 20 s on Binance global) before the connection is given up. Stream by stream,
//! a quiet market shows as [`super::FeedEvent::Stale`], not as a reconnect.
//!
//! On Binance every ping, pong and control message counts against 5 incoming messages a
//! second per connection; over it the connection is cut (repeatedly: an IP ban). There the
//! client pings at most once a second and paces its `SUBSCRIBE` messages at three a second,
//! leaving room for the pongs that answer the server's pings.

use std::time::Duration;

use crate::venue::Venue;

/// How one connection keeps itself alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keepalive {
    /// Ping this often.
    pub ping_every: Duration,
    /// Send subscription messages at least this far apart.
    pub subscribe_every: Duration,
    /// Give up after this long without a frame, once the server has answered a ping.
    pub silence: Duration,
    /// Give up after this long without a frame while it has not.
    pub silence_unanswered: Duration,
}

impl Keepalive {
    /// The plan for `venue` with the configured silence timeout.
    pub fn plan(venue: &dyn Venue, silence: Duration) -> Keepalive {
        let rate = venue.max_incoming_per_sec();
        // Pings take at most one of the allowed messages a second.
        let min_ping = match rate {
            Some(_) => Duration::from_secs(1),
            None => Duration::from_millis(10),
        };
        let ping_every = (silence / 3).clamp(min_ping, venue.ping_cap().max(min_ping));
        // Subscriptions take at most the allowance minus a ping and a pong.
        let subscribe_every = match rate {
            Some(n) if n > 2 => Duration::from_secs(1) / (n - 2),
            Some(_) => Duration::from_secs(1),
            None => Duration::ZERO,
        };
        // At least a ping interval and a half: a live server has a chance to answer.
        let silence = silence.max(ping_every * 3 / 2);
        let silence_unanswered = match venue.server_ping_every() {
            Some(p) => silence.max(p + silence),
            None => silence,
        };
        Keepalive {
            ping_every,
            subscribe_every,
            silence,
            silence_unanswered,
        }
    }

    /// The silence timeout, depending on whether the server has answered a ping.
    pub fn silence_for(&self, answered: bool) -> Duration {
        if answered {
            self.silence
        } else {
            self.silence_unanswered
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExchangeKind;

    #[test]
    fn each_venue_gets_its_own_plan() {
        struct Case {
            kind: ExchangeKind,
            silence_s: u64,
            expected: Keepalive,
        }
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let cases = [
            // Binance.US pings every 3 min: until it answers one of ours, wait for its own.
            Case {
                kind: ExchangeKind::BinanceUs,
                silence_s: 30,
                expected: Keepalive {
                    ping_every: s(10),
                    subscribe_every: ms(333),
                    silence: s(30),
                    silence_unanswered: s(210),
                },
            },
            Case {
                kind: ExchangeKind::Binance,
                silence_s: 30,
                expected: Keepalive {
                    ping_every: s(10),
                    subscribe_every: ms(333),
                    silence: s(30),
                    silence_unanswered: s(50),
                },
            },
            // A short timeout on Binance: pings no faster than once a second.
            Case {
                kind: ExchangeKind::Binance,
                silence_s: 1,
                expected: Keepalive {
                    ping_every: s(1),
                    subscribe_every: ms(333),
                    silence: ms(1500),
                    silence_unanswered: ms(21_500),
                },
            },
            // Bybit wants a ping every 20 s and never pings itself.
            Case {
                kind: ExchangeKind::Bybit,
                silence_s: 90,
                expected: Keepalive {
                    ping_every: s(20),
                    subscribe_every: Duration::ZERO,
                    silence: s(90),
                    silence_unanswered: s(90),
                },
            },
        ];
        for c in cases {
            let mut got = Keepalive::plan(c.kind.venue(), s(c.silence_s));
            // 1 s / 3 rounds to 333.333333 ms.
            got.subscribe_every = ms(got.subscribe_every.as_millis() as u64);
            assert_eq!(got, c.expected, "{:?}", c.kind);
        }
    }
}
