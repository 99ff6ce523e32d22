//! Telegram: the Bot API's `sendMessage`
//! (<https://core.telegram.org/bots/api#sendmessage>): `POST {base}/bot{token}/sendMessage`
//! with `{"chat_id": ..., "text": ...}`. A 429 answers
//! `{"ok":false,"error_code":429,"parameters":{"retry_after":N}}`.

use super::{BoxFuture, Notifier, Outgoing, Secret, SendError, post_json};

/// The public Bot API.
pub const DEFAULT_API_BASE: &str = "https://api.telegram.org";

/// Sends to one chat through one bot.
pub struct Telegram {
    name: String,
    api_base: String,
    token: Secret,
    chat_id: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for Telegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telegram")
            .field("name", &self.name)
            .field("api_base", &self.api_base)
            .field("token", &self.token)
            .field("chat_id", &self.chat_id)
            .finish()
    }
}

impl Telegram {
    /// A notifier named `name` posting to `chat_id` via the API at `api_base` (overridable
    /// for tests).
    pub fn new(
        name: &str,
        api_base: &str,
        token: Secret,
        chat_id: &str,
        client: reqwest::Client,
    ) -> Self {
        Telegram {
            name: name.to_string(),
            api_base: api_base.trim_end_matches('/').to_string(),
            token,
            chat_id: chat_id.to_string(),
            client,
        }
    }
}

impl Notifier for Telegram {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "telegram"
    }

    fn send<'a>(&'a self, msg: &'a Outgoing) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let url = format!("{}/bot{}/sendMessage", self.api_base, self.token.expose());
            let body = serde_json::to_vec(&serde_json::json!({
                "chat_id": self.chat_id,
                "text": msg.text,
                "disable_web_page_preview": true,
            }))
            .map_err(|e| SendError::Permanent(e.to_string()))?;
            post_json(&self.client, &url, body, &[]).await
        })
    }
}
