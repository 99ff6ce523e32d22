//! REST transport errors say what went wrong ("connection refused", "invalid HTTP version"),
//! not only reqwest's "error sending request", against local peers on 127.0.0.1:0.

use manus_exchange::{ExchangeKind, RestClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn error_against(base: &str) -> String {
    let c = RestClient::new(ExchangeKind::BinanceUs, base)
        .unwrap()
        .with_max_retries(0);
    c.check_symbol("BTCUSDT").await.unwrap_err().to_string()
}

#[tokio::test]
async fn a_refused_connection_says_so() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = error_against(&format!("http://{addr}")).await;
    assert!(e.to_lowercase().contains("connection refused"), "{e}");
}

#[tokio::test]
async fn a_peer_that_is_not_http_says_so() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
        }
    });
    let e = error_against(&format!("http://{addr}")).await;
    assert!(e.contains("invalid HTTP version"), "{e}");
}
