//! The web server under a descriptor limit: with the process's `RLIMIT_NOFILE` lowered so idle
//! connections exhaust it, `accept` fails; the server then closes the oldest idle connection
//! instead of stalling, and an authenticated request is still answered.
//!
//! Its own test binary (one test): the lowered limit applies to the whole process.

use std::time::Duration;

use market_manus::web::{self, ConnLimits, LiveHub};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use tokio::net::TcpStream;

const TOKEN: &str = "fd-test-token-0123456789";

/// The server's open-connection gauge.
async fn open_connections(c: &reqwest::Client, srv: &web::WebServer) -> f64 {
    let text = c
        .get(format!("{}/metrics", srv.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("manus_web_connections "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_descriptor_flood_does_not_lock_out_a_token_holder() {
    let srv = web::spawn_with(
        "127.0.0.1:0".parse().unwrap(),
        LiveHub::new(),
        None,
        Some(TOKEN.into()),
        // The cap is far above the limit: the descriptor limit is what is hit.
        ConnLimits {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(60),
        },
    )
    .await
    .unwrap();
    manus_exchange::tls::install_crypto_provider();
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    // Warm the client (its connection stays pooled) before lowering the limit.
    let r = c
        .get(format!("{}/api/health", srv.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Idle connections, all accepted (the server's gauge counts them and the warm one).
    let flood = 60;
    let mut idle = Vec::new();
    for _ in 0..flood {
        idle.push(TcpStream::connect(srv.addr()).await.unwrap());
    }
    while open_connections(&c, &srv).await < flood as f64 + 1.0 {
        tokio::task::yield_now().await;
    }
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    // Exactly one descriptor left: the new client socket takes it, so the server's `accept`
    // fails until it frees one.
    let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64 - 1;
    let old = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(open_now + 1),
            maximum: old.maximum,
        },
    )
    .unwrap();
    let started = std::time::Instant::now();
    let r = fresh
        .get(format!("{}/api/health", srv.url()))
        .bearer_auth(TOKEN)
        .send()
        .await;
    let elapsed = started.elapsed();
    setrlimit(Resource::Nofile, old).unwrap();
    assert_eq!(r.unwrap().status(), 200);
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    let text = c
        .get(format!("{}/metrics", srv.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let errors: f64 = text
        .lines()
        .find(|l| l.starts_with("manus_web_connections_closed_total{reason=\"accept_error\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap();
    assert!(errors >= 1.0, "the limit was never hit:\n{text}");
    drop(idle);
    srv.shutdown().await;
}
