//! Load-test target for `scripts/load`: one small JSON handler served three ways, each on its
//! own loopback port, by a Tokio runtime with one worker thread (so results compare per core):
//!
//! - `bare` (`LOAD_PORT`, default 18080): the handler alone;
//! - `cookie` (`LOAD_PORT + 1`): the same reply, also reading the `Cookie` header's length;
//! - `protected` (`LOAD_PORT + 2`): the same reply behind `auth.layer()` and
//!   `RequireAuth::new()`, extracting `Session`, in an app that also mounts the `/auth/*`
//!   routes. The client has a fake issuer that is never contacted: reading a session needs
//!   no provider metadata.
//!
//! On start it seals a realistic session (ID + access + refresh token, ~3.3 KB of JSON, two
//! cookie chunks) with the app's fixed secret, checks each variant once, and prints:
//!
//! ```text
//! session JSON <n> B, sealed <n> B, <n> cookie chunks, Cookie header <n> B
//! bare http://127.0.0.1:18080/
//! cookie http://127.0.0.1:18081/
//! protected http://127.0.0.1:18082/
//! cookie-header _a0_session_0=…; _a0_session_1=…
//! ready
//! ```
//!
//! It stops on Ctrl-C / SIGTERM, and by itself after `LOAD_TARGET_MAX_SECS` (default 900).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_axum::{AuthOptions, AuthState, RequireAuth, Session};
use auth_core::cookies::{CookieAttributes, CookieJar, MemoryCookieJar};
use auth_core::store::{CookieStateStore, StateStore, WriteOptions};
use auth_core::{ClientAuth, ServerClient, SessionData};
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

fn unix_now() -> u64 {
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
/// profile claims, as after a social login.
fn session(now: u64) -> SessionData {
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
    match serde_json::from_value(doc) {
        Ok(s) => s,
        Err(e) => fail(&format!("the session document does not parse: {e}")),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("load_target: {msg}");
    std::process::exit(1)
}

/// Seals `s` as the app does and returns `(Cookie header, chunk count, sealed length)`.
async fn cookie_header(s: &SessionData, now: u64) -> (String, usize, usize) {
    let store = CookieStateStore::new(&[SECRET], SESSION_COOKIE, CookieAttributes::default());
    let mut jar = MemoryCookieJar::default();
    if let Err(e) = store
        .set(s, WriteOptions::new(now + 86_400, true), &mut jar)
        .await
    {
        fail(&format!("sealing the session failed: {e}"));
    }
    let jar = jar.next_request();
    let names = jar.names();
    let sealed: usize = names.iter().filter_map(|n| jar.get(n)).map(|v| v.len()).sum();
    (jar.to_cookie_header(), names.len(), sealed)
}

fn auth_state(protected_port: u16) -> AuthState {
    let client = ServerClient::builder()
        .issuer(ISSUER)
        .client_id(CLIENT_ID)
        .client_auth(ClientAuth::none())
        .secret(SECRET)
        .session_cookie_name(SESSION_COOKIE)
        .app_base_url(format!("http://127.0.0.1:{protected_port}"))
        .build()
        .unwrap_or_else(|e| fail(&format!("client: {e}")));
    AuthState::new(client, AuthOptions::new()).unwrap_or_else(|e| fail(&format!("auth state: {e}")))
}

async fn serve(name: &'static str, port: u16, app: Router) -> String {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail(&format!("cannot listen on {addr} ({name}): {e}")));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("load_target: {name} server stopped: {e}");
        }
    });
    format!("http://{addr}/")
}

/// One request per variant before the load starts, so a broken setup fails loudly.
async fn self_check(urls: &[String; 3], cookie: &str, cookie_bytes: usize) {
    let http = reqwest::Client::new();
    let get = |url: &str, cookie: Option<&str>| {
        let mut req = http.get(url).header("accept", "application/json");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        send(url.to_owned(), req)
    };
    let expect = |what: &str, got: (u16, Value), status: u16, body: Option<Value>| {
        if got.0 != status || body.is_some_and(|b| b != got.1) {
            fail(&format!(
                "self-check {what}: expected {status}, got {} {}",
                got.0, got.1
            ));
        }
    };
    let [bare, cookie_url, protected] = urls;
    expect(
        "bare",
        get(bare, None).await,
        200,
        Some(json!({"ok": true, "cookie_bytes": 0, "logged_in": false})),
    );
    expect(
        "cookie",
        get(cookie_url, Some(cookie)).await,
        200,
        Some(json!({"ok": true, "cookie_bytes": cookie_bytes, "logged_in": false})),
    );
    expect(
        "protected with the session",
        get(protected, Some(cookie)).await,
        200,
        Some(json!({"ok": true, "cookie_bytes": cookie_bytes, "logged_in": true})),
    );
    expect(
        "protected without a session",
        get(protected, None).await,
        401,
        None,
    );
    let mut tampered = cookie.to_owned().into_bytes();
    if let Some(b) = tampered.get_mut(cookie.len() / 2) {
        *b = if *b == b'A' { b'B' } else { b'A' };
    }
    let tampered = String::from_utf8(tampered).unwrap_or_default();
    expect(
        "protected with a tampered session",
        get(protected, Some(&tampered)).await,
        401,
        None,
    );
}

async fn send(url: String, req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("self-check {url}: {e}")));
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn shutdown_signal(max: Duration) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
        () = tokio::time::sleep(max) => eprintln!("load_target: stopping after {} s", max.as_secs()),
    }
}

fn main() {
    let base: u16 = std::env::var("LOAD_PORT")
        .ok()
        .map_or(Ok(18080), |p| p.parse())
        .unwrap_or_else(|_| fail("LOAD_PORT must be a port number"));
    let max_secs: u64 = std::env::var("LOAD_TARGET_MAX_SECS")
        .ok()
        .map_or(Ok(900), |s| s.parse())
        .unwrap_or_else(|_| fail("LOAD_TARGET_MAX_SECS must be a number of seconds"));
    let (Some(p_cookie), Some(p_protected)) = (base.checked_add(1), base.checked_add(2)) else {
        fail("LOAD_PORT is too high");
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("runtime: {e}")));
    runtime.block_on(async move {
        let now = unix_now();
        let s = session(now);
        let json_len = serde_json::to_vec(&s).map_or(0, |v| v.len());
        let (cookie, chunks, sealed) = cookie_header(&s, now).await;

        let auth = auth_state(p_protected);
        let protected_app = Router::new()
            .route("/", get(protected))
            .route_layer(RequireAuth::new())
            .merge(auth.router())
            .layer(auth.layer());
        let urls = [
            serve("bare", base, Router::new().route("/", get(bare))).await,
            serve("cookie", p_cookie, Router::new().route("/", get(with_cookie))).await,
            serve("protected", p_protected, protected_app).await,
        ];
        self_check(&urls, &cookie, cookie.len()).await;

        println!(
            "session JSON {json_len} B, sealed {sealed} B, {chunks} cookie chunks, Cookie header {} B",
            cookie.len()
        );
        for (name, url) in ["bare", "cookie", "protected"].iter().zip(&urls) {
            println!("{name} {url}");
        }
        println!("cookie-header {cookie}");
        println!("ready");
        shutdown_signal(Duration::from_secs(max_secs)).await;
    });
}
