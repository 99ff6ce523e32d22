//! Discord: an incoming webhook (<https://discord.com/developers/docs/resources/webhook>),
//! `POST {webhook_url}` with `{"content": ...}` (at most 2000 characters). A 429 carries
//! `Retry-After` and `{"retry_after": seconds}`. The URL embeds the webhook token: it is a
//! [`Secret`].

use super::{BoxFuture, Notifier, Outgoing, Secret, SendError, post_json};

/// Discord's content limit, in characters.
const MAX_CONTENT: usize = 2000;

/// Posts to one Discord webhook.
pub struct Discord {
    name: String,
    url: Secret,
    client: reqwest::Client,
}

impl std::fmt::Debug for Discord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discord")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish()
    }
}

impl Discord {
    /// A notifier named `name` posting to the webhook `url`.
    pub fn new(name: &str, url: Secret, client: reqwest::Client) -> Self {
        Discord {
            name: name.to_string(),
            url,
            client,
        }
    }
}

impl Notifier for Discord {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "discord"
    }

    fn send<'a>(&'a self, msg: &'a Outgoing) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let content: String = msg.text.chars().take(MAX_CONTENT).collect();
            let body = serde_json::to_vec(&serde_json::json!({ "content": content }))
                .map_err(|e| SendError::Permanent(e.to_string()))?;
            post_json(&self.client, self.url.expose(), body, &[]).await
        })
    }
}
