//! Access control: the bind policy (loopback by default; any other address needs a token), the
//! token check on every request and event-stream or WebSocket upgrade (`Authorization: Bearer T`
//! or `?token=T`), and a `Host` check on tokenless loopback servers against DNS rebinding.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::routes::{AppState, api_error};

/// Shortest token accepted: a guessable token on a public port is no protection.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why a bind/token combination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A non-loopback address without a token.
    #[error(
        "refusing to serve on {0} without a token: anyone on the network could read it; set a token (at least {MIN_TOKEN_LEN} characters) or bind to 127.0.0.1"
    )]
    TokenRequired(SocketAddr),
    /// A token that is too short or has characters that cannot go in a header or URL.
    #[error("invalid token: use at least {MIN_TOKEN_LEN} characters from A-Z a-z 0-9 - _ . ~")]
    BadToken,
}

/// Checks the bind policy: loopback is open, anything else needs a valid token.
pub fn check_policy(bind: SocketAddr, token: Option<&str>) -> Result<(), PolicyError> {
    if let Some(t) = token {
        let ok_chars = t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
        if t.len() < MIN_TOKEN_LEN || !ok_chars {
            return Err(PolicyError::BadToken);
        }
        return Ok(());
    }
    if bind.ip().is_loopback() {
        Ok(())
    } else {
        Err(PolicyError::TokenRequired(bind))
    }
}

/// Equal-length-independent comparison whose time does not depend on where bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        let y = b.get(i % b.len().max(1)).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// The token a request carries, from the `Authorization` header or the `token` query parameter.
fn presented_token<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(t) = v.strip_prefix("Bearer ")
    {
        return Some(t.trim().to_string());
    }
    let q = query?;
    url_params(q)
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
}

/// Decodes `a=b&c=d` (percent-decoding, `+` as space).
pub fn url_params(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True when `host` (a `Host` header value) names this machine's loopback.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Middleware: token check (when a token is set), else a loopback `Host` check; adds security
/// headers to every response.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(expected) = state.token.as_deref() {
        let given = presented_token(req.headers(), req.uri().query());
        let ok = given
            .as_deref()
            .is_some_and(|g| constant_time_eq(g.as_bytes(), expected.as_bytes()));
        if !ok {
            state
                .metrics
                .unauthorized
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut r = api_error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong token: send 'Authorization: Bearer <token>' or '?token=<token>'",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"manus\""),
            );
            return with_security_headers(r);
        }
    } else {
        // Without a token, only loopback names may reach the server: a web page on another
        // site cannot re-point its own host name at 127.0.0.1 and read the dashboard.
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_loopback_host(host) {
            return with_security_headers(api_error(
                StatusCode::MISDIRECTED_REQUEST,
                "this server only answers to localhost names; set --token to serve other hosts",
            ));
        }
    }
    with_security_headers(next.run(req).await)
}

fn with_security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_cases() {
        struct Case {
            bind: &'static str,
            token: Option<&'static str>,
            ok: bool,
        }
        let cases = [
            Case {
                bind: "127.0.0.1:8080",
                token: None,
                ok: true,
            },
            Case {
                bind: "[::1]:8080",
                token: None,
                ok: true,
            },
            Case {
                bind: "0.0.0.0:8080",
                token: None,
                ok: false,
            },
            Case {
                bind: "192.168.1.2:80",
                token: None,
                ok: false,
            },
            Case {
                bind: "0.0.0.0:8080",
                token: Some("0123456789abcdef"),
                ok: true,
            },
            Case {
                bind: "0.0.0.0:8080",
                token: Some("short"),
                ok: false,
            },
            Case {
                bind: "127.0.0.1:8080",
                token: Some("has space in it 123"),
                ok: false,
            },
        ];
        for c in cases {
            let r = check_policy(c.bind.parse().unwrap(), c.token);
            assert_eq!(r.is_ok(), c.ok, "{} {:?}: {r:?}", c.bind, c.token);
        }
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(!constant_time_eq(b"a", b""));
    }

    #[test]
    fn query_and_header_tokens_are_found() {
        let mut h = HeaderMap::new();
        assert_eq!(
            presented_token(&h, Some("a=1&token=x%2Dy")),
            Some("x-y".into())
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tok"),
        );
        assert_eq!(presented_token(&h, None), Some("tok".into()));
        assert_eq!(presented_token(&HeaderMap::new(), Some("a=1")), None);
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "LOCALHOST",
            "127.0.0.1",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["evil.example:8080", "", "10.0.0.1:80", "localhost.evil.com"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn percent_decoding_handles_bad_escapes() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%"), "%");
    }
}
