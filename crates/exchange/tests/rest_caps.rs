//! `RestClient` never reads more than it needs: a server that sends an endless body gets a
//! clear error for a success answer (longer than any legal page) and a bounded error for a
//! failure answer (its first few KB), quickly and without exhausting memory.

use std::time::Duration;

use manus_core::Interval;
use manus_exchange::feed::rest::ERROR_BODY_CAP;
use manus_exchange::{ExchangeKind, FeedError, RestClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves every connection `status` with a chunked body that never ends (until the client
/// hangs up). Returns the base URL.
async fn endless(status: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut req = [0u8; 4096];
                let _ = sock.read(&mut req).await;
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
                );
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 8192, "[".repeat(8192));
                while sock.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn an_endless_success_body_is_refused_with_a_clear_error() {
    for kind in [
        ExchangeKind::BinanceUs,
        ExchangeKind::Bybit,
        ExchangeKind::Okx,
    ] {
        let base = endless("200 OK").await;
        let rest = RestClient::new(kind, &base)
            .expect("client")
            .with_max_retries(0);
        let got = tokio::time::timeout(
            Duration::from_secs(20),
            rest.klines("BTCUSDT", Interval::M1, None, None, 10),
        )
        .await
        .expect("gives up instead of reading forever");
        match got {
            Err(e @ FeedError::BodyTooLarge { limit, .. }) => {
                assert_eq!(limit, kind.venue().max_body(), "{kind}");
                assert!(e.to_string().contains("longer than"), "{e}");
                assert!(!e.is_retryable());
            }
            other => panic!("{kind}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_endless_error_body_is_cut_to_a_few_kilobytes() {
    let base = endless("404 Not Found").await;
    let rest = RestClient::new(ExchangeKind::BinanceUs, &base)
        .expect("client")
        .with_max_retries(0);
    let got = tokio::time::timeout(Duration::from_secs(20), rest.server_time())
        .await
        .expect("gives up instead of reading forever");
    match got {
        Err(FeedError::Status { status, body }) => {
            assert_eq!(status, 404);
            assert!(body.starts_with('['), "{body}");
            assert!(body.len() <= ERROR_BODY_CAP, "{} bytes kept", body.len());
        }
        other => panic!("{other:?}"),
    }
}
