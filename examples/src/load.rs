//! The apps of the load test (`scripts/load`, `src/bin/load_target.rs`) and of the router
//! benchmark (`cargo bench -p auth-tests --bench stack`): one small JSON handler served three
//! ways, and the realistic session cookie the protected one is read with.
//!
//! - [`bare_app`]: the handler alone;
//! - [`cookie_app`]: the same reply, also reading the `Cookie` header's length;
//! - [`protected_app`]: the same reply behind `auth.layer()` and `RequireAuth::new()`,
//!   extracting `Session`, in an app that also mounts the `/auth/*` routes. The client's
//!   issuer is fake and never contacted: reading a session needs no provider metadata. Its
//!   backend already holds [`UNRELATED_LOGOUTS`] back-channel logouts of other sessions and
//!   users, so the numbers are those of an app where logouts have happened.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_axum::{AuthOptions, AuthState, RequireAuth, Session};
use auth_core::cookies::{CookieAttributes, CookieJar, MemoryCookieJar};
use auth_core::internal::{CookieStateStore, SessionData, StateStore, WriteOptions};
use auth_core::store::{LogoutKey, MemoryBackend, SessionBackend};
use auth_core::{ClientAuth, ServerClient};
use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// The app's fixed secret (a benchmark fixture, not a real one).
const SECRET: &str = "load-target-secret-0123456789abcdef0123456789";
const SESSION_COOKIE: &str = "_a0_session";
const ISSUER: &str = "https://tenant.example.invalid/";
const CLIENT_ID: &str = "kbyuFDidLLm280LIwVFiazOqjO3ty8KH";

/// The one reply all three variants send.
fn reply(cookie_bytes: usize, logged_in: bool) -> Json<Value> {
    Json(json!({"ok": true, "cookie_bytes": cookie_bytes, "logged_in": logged_in}))
}

fn cookie_len(headers: &HeaderMap) -> usize {
    headers.get(COOKIE).map_or(0, |v| v.as_bytes().len())
}

async fn bare() -> Json<Value> {
    reply(0, false)
}

async fn with_cookie(headers: HeaderMap) -> Json<Value> {
    reply(cookie_len(&headers), false)
}

async fn protected(session: Session, headers: HeaderMap) -> Json<Value> {
    reply(cookie_len(&headers), session.sub().is_some())
}

/// The handler alone.
pub fn bare_app() -> Router {
    Router::new().route("/", get(bare))
}

/// The same reply, also reading the `Cookie` header's length.
pub fn cookie_app() -> Router {
    Router::new().route("/", get(with_cookie))
}

/// How many back-channel logouts (each by `sid` and by `sub`, of other sessions) the protected
/// app's backend holds before it serves.
pub const UNRELATED_LOGOUTS: usize = 1000;

/// The same reply behind `auth.layer()` and `RequireAuth::new()`, extracting [`Session`],
/// with the `/auth/*` routes mounted too; `base_url` is the app's own address. The app's
/// memory backend holds [`UNRELATED_LOGOUTS`] logouts of other sessions and users.
///
/// # Errors
/// A message when the client configuration is refused.
pub async fn protected_app(base_url: &str) -> Result<Router, String> {
    let backend = Arc::new(MemoryBackend::new());
    let at_ms = unix_now().saturating_sub(60) * 1000;
    for i in 0..UNRELATED_LOGOUTS {
        for key in [
            LogoutKey::Sid(format!("other-session-{i}")),
            LogoutKey::Sub(format!("auth0|other-user-{i}")),
        ] {
            backend
                .record_logout(&key, at_ms, Duration::from_secs(86_400))
                .await
                .map_err(|e| format!("recording a logout failed: {e}"))?;
        }
    }
    let client = ServerClient::builder()
        .session_backend_arc(backend)
        .issuer(ISSUER)
        .client_id(CLIENT_ID)
        .client_auth(ClientAuth::none())
        .secret(SECRET)
        .session_cookie_name(SESSION_COOKIE)
        .app_base_url(base_url)
        .build()
        .map_err(|e| format!("client: {e}"))?;
    let auth = AuthState::new(client, AuthOptions::new()).map_err(|e| format!("auth state: {e}"))?;
    Ok(Router::new()
        .route("/", get(protected))
        .route_layer(RequireAuth::new())
        .merge(auth.router())
        .layer(auth.layer()))
}

/// Seconds since the Unix epoch.
#[must_use]
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A JWT-shaped token of realistic size (the server never verifies it when reading a session).
fn jwt(claims: &Value, signature_len: usize) -> String {
    let b64 = |bytes: &[u8]| {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::with_capacity(bytes.len() * 4 / 3 + 4);
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    };
    let header = b64(br#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#);
    let payload = b64(claims.to_string().as_bytes());
    let signature: String = "Qm9ndXNTaWduYXR1cmUtbm90LXZlcmlmaWVk"
        .chars()
        .cycle()
        .take(signature_len)
        .collect();
    format!("{header}.{payload}.{signature}")
}

/// The session the load generator presents: ID token, API access token, refresh token and
/// profile claims, as after a social login (about 3.2 KB of JSON).
///
/// # Errors
/// A message when the document does not parse as a session.
pub fn realistic_session(now: u64) -> Result<SessionData, String> {
    let profile = json!({
        "given_name": "Jane", "family_name": "Doe", "nickname": "jane.doe", "name": "Jane Josephine Doe",
        "picture": "https://lh3.googleusercontent.com/a/ACg8ocKx7mN2pQ9rS4tU6vW8xY0zA1bC3dE5fG7hJ9kL1mN3=s96-c",
        "locale": "en", "updated_at": "2026-11-20T10:00:00.000Z",
        "email": "jane.doe@example.com", "email_verified": true,
        "org_id": "org_7Xk2mN9pQ4rS6tU8", "org_name": "acme-widgets",
        "https://example.com/roles": ["admin", "billing"],
        "iss": ISSUER, "sub": "google-oauth2|104928374650192837465",
        "sid": "Kx7mN2pQ9rS4tU6vW8xY0zA1bC3dE5fG"
    });
    let mut id_claims = profile.clone();
    if let Some(c) = id_claims.as_object_mut() {
        c.insert("aud".into(), json!(CLIENT_ID));
        c.insert("iat".into(), json!(now - 5));
        c.insert("exp".into(), json!(now + 36_000));
        c.insert("auth_time".into(), json!(now - 10));
        c.insert("nonce".into(), json!("b3H0cEKpxGWxFmnT4vMq9sX2aZ7rL1dN"));
    }
    let access_token = jwt(
        &json!({
            "iss": ISSUER, "sub": "google-oauth2|104928374650192837465",
            "aud": ["https://api.example.com/", "https://tenant.example.invalid/userinfo"],
            "iat": now - 5, "exp": now + 86_400, "azp": CLIENT_ID,
            "scope": "openid profile email offline_access read:orders write:orders",
            "permissions": ["read:orders", "write:orders", "read:invoices", "read:profile"],
            "org_id": "org_7Xk2mN9pQ4rS6tU8"
        }),
        342,
    );
    let doc = json!({
        "user": profile,
        "id_token": jwt(&id_claims, 342),
        "refresh_token": "v1.MRrK0Zs8-y6x5w4v3u2t1s0r9q8p7o6n5m4l3k2j1i0h9g8f7e6d5c4b3a2Z1Y0X9W8V7U6T5S4R3Q2P1O0N9M8L7K6J5-aBcDeFgHiJkLmN",
        "token_sets": [{
            "audience": "https://api.example.com/", "access_token": access_token,
            "scope": "openid profile email offline_access read:orders write:orders", "expires_at": now + 86_400
        }],
        "connection_token_sets": [],
        "internal": {"sid": "Kx7mN2pQ9rS4tU6vW8xY0zA1bC3dE5fG", "created_at": now, "last_active": now}
    });
    serde_json::from_value(doc).map_err(|e| format!("the session document does not parse: {e}"))
}

/// A sealed session as a browser sends it.
#[derive(Debug, Clone)]
pub struct SessionCookie {
    /// The whole `Cookie` header value (`_a0_session_0=…; _a0_session_1=…`).
    pub header: String,
    /// How many cookie chunks the session was split into.
    pub chunks: usize,
    /// Length of the sealed value, all chunks together.
    pub sealed_len: usize,
}

/// Seals `session` as [`protected_app`] does (same secret and cookie name), valid for a day.
///
/// # Errors
/// A message when sealing fails.
pub async fn session_cookie(session: &SessionData, now: u64) -> Result<SessionCookie, String> {
    let store = CookieStateStore::new(&[SECRET], SESSION_COOKIE, CookieAttributes::default());
    let mut jar = MemoryCookieJar::default();
    store
        .set(session, WriteOptions::new(now + 86_400, true), &mut jar)
        .await
        .map_err(|e| format!("sealing the session failed: {e}"))?;
    let jar = jar.next_request();
    let names = jar.names();
    let sealed_len = names.iter().filter_map(|n| jar.get(n)).map(|v| v.len()).sum();
    Ok(SessionCookie {
        header: jar.to_cookie_header(),
        chunks: names.len(),
        sealed_len,
    })
}
