//! A generic JSON webhook: `POST {url}` with
//! `{"text", "idempotency_key", "sent_at", ...fields}`. When a secret is set, the header
//! `X-Manus-Signature: sha256=<hex HMAC-SHA256 of the exact body>` lets the receiver check the
//! sender; `X-Manus-Idempotency-Key` repeats the key so receivers can drop a repeat.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{BoxFuture, Notifier, Outgoing, Secret, SendError, post_json};
use crate::clock::now_ms;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Manus-Signature";
/// The idempotency header.
pub const IDEMPOTENCY_HEADER: &str = "X-Manus-Idempotency-Key";

/// Posts JSON to one URL, optionally signed.
pub struct Webhook {
    name: String,
    url: String,
    secret: Option<Secret>,
    client: reqwest::Client,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &self.secret)
            .finish()
    }
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `body`).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Webhook {
    /// A notifier named `name` posting to `url`, signing when `secret` is set.
    pub fn new(name: &str, url: &str, secret: Option<Secret>, client: reqwest::Client) -> Self {
        Webhook {
            name: name.to_string(),
            url: url.to_string(),
            secret,
            client,
        }
    }
}

impl Notifier for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn send<'a>(&'a self, msg: &'a Outgoing) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let mut payload = serde_json::Map::new();
            if let serde_json::Value::Object(fields) = &msg.fields {
                payload.extend(fields.clone());
            }
            payload.insert("text".into(), msg.text.clone().into());
            payload.insert("idempotency_key".into(), msg.idempotency_key.clone().into());
            payload.insert("sent_at".into(), now_ms().into());
            let body =
                serde_json::to_vec(&payload).map_err(|e| SendError::Permanent(e.to_string()))?;
            let mut headers = vec![(IDEMPOTENCY_HEADER, msg.idempotency_key.clone())];
            if let Some(s) = &self.secret {
                headers.push((SIGNATURE_HEADER, signature(s.expose().as_bytes(), &body)));
            }
            post_json(&self.client, &self.url, body, &headers).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_rfc_4231_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
