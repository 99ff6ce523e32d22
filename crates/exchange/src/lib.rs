//! Market data: the feed seam, exchange adapters and the simulated exchange.
