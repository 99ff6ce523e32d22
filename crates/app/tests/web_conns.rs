//! The web server's connection limits against a real server on 127.0.0.1:0: idle and
//! half-sent connections beyond the cap are closed oldest first, so an authenticated request
//! still gets through; when every connection is busy, a new one is refused at once with a 503;
//! an unfinished request head is closed after the header timeout.
//!
//! The header timeout is 60 s in the cap tests, so only the cap can explain a prompt answer.

use std::time::Duration;

use manus_core::{Candle, Interval};
use manus_exchange::feed::StreamKey;
use market_manus::web::{self, ConnLimits, LiveHub, WebServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "conn-test-token-0123456789";

async fn server(limits: ConnLimits) -> (WebServer, LiveHub) {
    let hub = LiveHub::new();
    let srv = web::spawn_with(
        "127.0.0.1:0".parse().unwrap(),
        hub.clone(),
        None,
        Some(TOKEN.into()),
        limits,
    )
    .await
    .expect("server starts");
    (srv, hub)
}

fn client() -> reqwest::Client {
    // reqwest is built without a default TLS provider: install the workspace's one.
    manus_exchange::tls::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// One value of `/metrics` (the first row whose name and labels start with `prefix`).
async fn metric(c: &reqwest::Client, srv: &WebServer, prefix: &str) -> f64 {
    let text = c
        .get(format!("{}/metrics", srv.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// True when the peer closed `s` (EOF or reset) within a generous bound.
async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    matches!(
        tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn idle_and_half_sent_connections_cannot_lock_out_a_token_holder() {
    let cap = 16;
    let (srv, _hub) = server(ConnLimits {
        max_connections: cap,
        header_timeout: Duration::from_secs(60),
    })
    .await;
    let flood = 100;
    let mut idle = Vec::new();
    for i in 0..flood {
        let mut s = TcpStream::connect(srv.addr()).await.unwrap();
        if i % 2 == 1 {
            // An unfinished request head, before any authentication.
            s.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .await
                .unwrap();
        }
        idle.push(s);
    }
    let c = client();
    let started = std::time::Instant::now();
    let r = c
        .get(format!("{}/api/health", srv.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(10));
    // The oldest idle connection (nothing sent) and the oldest half-sent one were closed.
    assert!(
        closed(&mut idle[0]).await,
        "oldest idle connection still open"
    );
    assert!(
        closed(&mut idle[1]).await,
        "oldest half-sent connection still open"
    );
    let evicted = metric(
        &c,
        &srv,
        "manus_web_connections_closed_total{reason=\"idle_evicted\"}",
    )
    .await;
    assert!(evicted >= (flood + 1 - cap) as f64, "evicted {evicted}");
    srv.shutdown().await;
}

#[tokio::test]
async fn when_every_connection_is_busy_a_new_one_is_refused_at_once() {
    let cap = 3;
    let (srv, hub) = server(ConnLimits {
        max_connections: cap,
        header_timeout: Duration::from_secs(60),
    })
    .await;
    let key = StreamKey {
        symbol: "BTCUSDT".into(),
        interval: Interval::M1,
    };
    let candle = Candle {
        open_time: 0,
        close_time: 59_999,
        open: 1.0,
        high: 2.0,
        low: 0.5,
        close: 1.5,
        volume: 1.0,
    };
    hub.publish_candle(&key, &candle, false);
    // Open event streams are requests in progress: never evicted.
    let mut streams = Vec::new();
    for _ in 0..cap {
        let mut resp = client()
            .get(format!(
                "{}/api/events?symbol=BTCUSDT&interval=1m&token={TOKEN}",
                srv.url()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        // The first event proves the stream is being served.
        assert!(resp.chunk().await.unwrap().is_some());
        streams.push(resp);
    }
    let mut s = TcpStream::connect(srv.addr()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut answer))
        .await
        .expect("refused promptly")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    // The streams are still served.
    hub.publish_candle(
        &key,
        &Candle {
            open_time: 60_000,
            close_time: 119_999,
            ..candle
        },
        false,
    );
    for resp in &mut streams {
        assert!(resp.chunk().await.unwrap().is_some());
    }
    drop(streams);
    srv.shutdown().await;
}

#[tokio::test]
async fn an_unfinished_request_head_is_closed_after_the_header_timeout() {
    let (srv, _hub) = server(ConnLimits {
        max_connections: 64,
        header_timeout: Duration::from_millis(300),
    })
    .await;
    let mut half = TcpStream::connect(srv.addr()).await.unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(srv.addr()).await.unwrap();
    assert!(closed(&mut half).await, "half-sent head still open");
    assert!(closed(&mut silent).await, "silent connection still open");
    srv.shutdown().await;
}
