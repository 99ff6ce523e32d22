//! Market data: the feed seam ([`feed::FeedConfig`], [`feed::FeedEvent`]), the adapter seam
//! ([`venue::Venue`] and its [`venue::REGISTRY`]), the Binance(.US), Bybit v5 and OKX v5
//! adapters, and the simulated exchange ([`sim`]) that speaks all of their protocols on
//! loopback.

pub mod binance;
pub mod bybit;
pub mod feed;
pub mod okx;
pub mod sim;
pub mod tls;
pub mod venue;

pub use feed::{
    ExchangeKind, Feed, FeedConfig, FeedCounters, FeedError, FeedEvent, MarketFeed, Origin,
    RestClient, StreamKey,
};
pub use venue::{REGISTRY, Venue};
