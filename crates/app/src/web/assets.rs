//! The embedded static files: the single-page dashboard (`index.html`, `app.js`, `style.css`)
//! and TradingView's lightweight-charts (standalone production build, Apache-2.0, vendored with
//! its licence). Compiled into the binary: no build step, no CDN, works offline.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::routes::api_error;

/// The page shell for every page (`/`, `/live`, `/history`, `/backtests`).
pub const INDEX_HTML: &str = include_str!("../../web/index.html");
/// The dashboard's script.
pub const APP_JS: &str = include_str!("../../web/app.js");
/// The dashboard's styles.
pub const STYLE_CSS: &str = include_str!("../../web/style.css");
/// lightweight-charts v4.2.3, standalone production build (defines `LightweightCharts`).
pub const CHARTS_JS: &str =
    include_str!("../../web/vendor/lightweight-charts.standalone.production.js");
/// lightweight-charts' licence (Apache-2.0).
pub const CHARTS_LICENSE: &str = include_str!("../../web/vendor/LICENSE-lightweight-charts");

/// One embedded file: name, content type, body, and whether it may be cached for long.
struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static str,
    immutable: bool,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        mime: "text/javascript; charset=utf-8",
        body: APP_JS,
        immutable: false,
    },
    Asset {
        name: "style.css",
        mime: "text/css; charset=utf-8",
        body: STYLE_CSS,
        immutable: false,
    },
    Asset {
        name: "lightweight-charts.js",
        mime: "text/javascript; charset=utf-8",
        body: CHARTS_JS,
        immutable: true,
    },
    Asset {
        name: "LICENSE-lightweight-charts.txt",
        mime: "text/plain; charset=utf-8",
        body: CHARTS_LICENSE,
        immutable: true,
    },
];

fn respond(mime: &'static str, body: &'static str, immutable: bool) -> Response {
    let cache = if immutable {
        "public, max-age=86400"
    } else {
        // The page and its script change with the binary: always revalidate.
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body,
    )
        .into_response()
}

/// The page shell.
pub async fn index() -> Response {
    respond("text/html; charset=utf-8", INDEX_HTML, false)
}

/// `/assets/{name}`: one of the embedded files, else 404.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => respond(a.mime, a.body, a.immutable),
        None => api_error(
            StatusCode::NOT_FOUND,
            format!("no asset '{}'", name.chars().take(60).collect::<String>()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_references_only_embedded_assets() {
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
        }
        for src in [
            "/assets/app.js",
            "/assets/style.css",
            "/assets/lightweight-charts.js",
        ] {
            assert!(INDEX_HTML.contains(src), "index.html does not load {src}");
        }
        // No CDN or remote URL: the dashboard must work offline.
        for text in [INDEX_HTML, APP_JS, STYLE_CSS] {
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "remote URL in an asset"
            );
        }
        assert!(CHARTS_JS.contains("Lightweight Charts"));
        assert!(CHARTS_LICENSE.contains("Apache License"));
    }
}
