//! Market data: the feed seam ([`feed::FeedConfig`], [`feed::FeedEvent`]), the Binance(.US) and
//! Bybit v5 adapters, and the simulated exchange ([`sim`]) that speaks Binance's protocol on
//! loopback.

pub mod binance;
pub mod bybit;
pub mod feed;
pub mod sim;
pub mod tls;

pub use feed::{
    ExchangeKind, Feed, FeedConfig, FeedCounters, FeedError, FeedEvent, MarketFeed, Origin,
    RestClient, StreamKey,
};
