//! TLS set-up: one crypto provider for the whole process, rustls' `ring`. The workspace builds
//! no other (reqwest's `rustls-no-provider`, rustls without `aws-lc-rs`), so a provider must
//! be installed before the first HTTPS client is built; this crate's clients do it themselves.

/// Installs `ring` as the process's rustls crypto provider, unless one is installed already.
/// Cheap and idempotent: the binary calls it first thing, [`crate::RestClient::new`] calls it,
/// and so must code that builds its own `reqwest::Client` in this workspace.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExchangeKind, RestClient};

    /// A loopback server that accepts connections and closes them at once (no TLS), so a TLS
    /// client gets as far as building its configuration and starting the handshake.
    async fn closing_server() -> std::net::SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                drop(s);
            }
        });
        addr
    }

    #[tokio::test]
    async fn https_and_wss_clients_build_with_the_one_provider() {
        install_crypto_provider();
        install_crypto_provider(); // idempotent
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        let addr = closing_server().await;

        // reqwest with rustls-no-provider panics here if no provider is installed.
        let rest = RestClient::new(ExchangeKind::Binance, &format!("https://{addr}"))
            .expect("the HTTPS client builds");
        drop(rest);
        let http = reqwest::Client::builder().build().expect("reqwest builds");
        let err = http
            .get(format!("https://{addr}/"))
            .send()
            .await
            .expect_err("no TLS server there");
        assert!(err.is_connect() || err.is_request(), "{err}");

        // tokio-tungstenite builds its rustls connector (webpki roots) on a wss:// URL.
        let ws = tokio_tungstenite::connect_async(format!("wss://{addr}/ws")).await;
        assert!(ws.is_err(), "no TLS server there");
    }
}
