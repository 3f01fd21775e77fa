//! CPU cost of the per-request and per-login work of `auth-core`, without network.
//!
//! ```sh
//! cargo bench -p auth-core --features internal --bench core -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Groups:
//! - `session_open`: the cached `CookieStateStore` (`store/cache.rs`) reading a realistic session (ID + access + refresh
//!   token, ~3.3 KB of JSON, two cookie chunks): `uncached` (cache turned off: the path every
//!   read took before the opened-session cache), `cold` (cache on, a different cookie every
//!   time, so every read misses, opens and inserts; `uncached` reads the same ring of
//!   cookies), `hot` (the same cookie again: a hit, returned as an owned copy),
//!   `shared` (the client's per-request read: a hit through the cache decorator, the
//!   document shared, no copy);
//! - `session_seal`: `CookieStateStore::set` of the same session;
//! - `seal_raw` / `open_raw`: the sealer alone on the session JSON;
//! - `chunks`: splitting a ~6 KB value into cookies and joining it back;
//! - `id_token_verify`: RS256 ID token validation against a cached, parsed JWKS (and, for
//!   comparison, parsing the JWKS every time);
//! - `login_start`: `start_interactive_login` with the provider metadata already cached
//!   (a loopback server answers the one discovery request), into a `MemoryCookieJar`.
//!
//! Store calls never wait on anything here, so they are polled once with a no-op waker
//! instead of going through a runtime, which measures the work alone.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

use auth_core::cookies::{CookieAttributes, CookieJar, MemoryCookieJar};
use auth_core::internal::{self, Jwks, Sealer, SessionData, StateStore, WriteOptions};
use auth_core::{ClientAuth, LoginOptions, ServerClient};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SECRET: &str = "bench-secret-0123456789abcdef0123456789";
const NAME: &str = "_a0_session";
const ISSUER: &str = "https://tenant.eu.auth0.com/";
const CLIENT_ID: &str = "kbyuFDidLLm280LIwVFiazOqjO3ty8KH";
const NONCE: &str = "b3H0cEKpxGWxFmnT4vMq9sX2aZ7rL1dN";
const RSA1: &str = include_str!("../testdata/rsa1.pem");
const RSA1_JWK: &str = include_str!("../testdata/rsa1.jwk.json");
/// Sessions sealed for the `cold` case: well over the cache's 1024 entries, so cycling
/// through them never hits.
const COLD_COOKIES: usize = 4096;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Polls a future that never waits (the cookie store's calls) to completion.
fn ready<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the benchmarked call waited on something"),
    }
}

fn sign(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    let key = EncodingKey::from_rsa_pem(RSA1.as_bytes()).expect("test key");
    jsonwebtoken::encode(&header, claims, &key).expect("signs")
}

/// An RS256 ID token as Auth0 issues it for a social login with profile and email scopes.
fn id_token(now: u64) -> String {
    sign(&json!({
        "given_name": "Jane", "family_name": "Doe", "nickname": "jane.doe", "name": "Jane Josephine Doe",
        "picture": "https://lh3.googleusercontent.com/a/ACg8ocKx7mN2pQ9rS4tU6vW8xY0zA1bC3dE5fG7hJ9kL1mN3=s96-c",
        "locale": "en", "updated_at": "2026-11-20T10:00:00.000Z",
        "email": "jane.doe@example.com", "email_verified": true,
        "org_id": "org_7Xk2mN9pQ4rS6tU8", "org_name": "acme-widgets",
        "https://example.com/roles": ["admin", "billing"],
        "iss": ISSUER, "aud": CLIENT_ID, "sub": "google-oauth2|104928374650192837465",
        "iat": now - 5, "exp": now + 36_000, "auth_time": now - 10,
        "sid": "Kx7mN2pQ9rS4tU6vW8xY0zA1bC3dE5fG", "nonce": NONCE
    }))
}

/// A realistic session: ID token, an RS256 access token for an API, a refresh token and the
/// profile claims; ~3.3 KB of JSON, two cookie chunks once sealed.
fn session(now: u64) -> SessionData {
    let access_token = sign(&json!({
        "iss": ISSUER, "sub": "google-oauth2|104928374650192837465",
        "aud": ["https://api.example.com/", "https://tenant.eu.auth0.com/userinfo"],
        "iat": now - 5, "exp": now + 86_400, "azp": CLIENT_ID,
        "scope": "openid profile email offline_access read:orders write:orders",
        "permissions": ["read:orders", "write:orders", "read:invoices", "read:profile"],
        "org_id": "org_7Xk2mN9pQ4rS6tU8"
    }));
    serde_json::from_value(json!({
        "user": {
            "given_name": "Jane", "family_name": "Doe", "nickname": "jane.doe", "name": "Jane Josephine Doe",
            "picture": "https://lh3.googleusercontent.com/a/ACg8ocKx7mN2pQ9rS4tU6vW8xY0zA1bC3dE5fG7hJ9kL1mN3=s96-c",
            "locale": "en", "updated_at": "2026-11-20T10:00:00.000Z",
            "email": "jane.doe@example.com", "email_verified": true,
            "org_id": "org_7Xk2mN9pQ4rS6tU8", "org_name": "acme-widgets",
            "https://example.com/roles": ["admin", "billing"],
            "iss": ISSUER, "sub": "google-oauth2|104928374650192837465",
            "sid": "Kx7mN2pQ9rS4tU6vW8xY0zA1bC3dE5fG"
        },
        "id_token": id_token(now),
        "refresh_token": "v1.MRrK0Zs8-y6x5w4v3u2t1s0r9q8p7o6n5m4l3k2j1i0h9g8f7e6d5c4b3a2Z1Y0X9W8V7U6T5S4R3Q2P1O0N9M8L7K6J5-aBcDeFgHiJkLmN",
        "token_sets": [{
            "audience": "https://api.example.com/", "access_token": access_token,
            "scope": "openid profile email offline_access read:orders write:orders", "expires_at": now + 86_400
        }],
        "connection_token_sets": [],
        "internal": {"sid": "Kx7mN2pQ9rS4tU6vW8xY0zA1bC3dE5fG", "created_at": now, "last_active": now}
    }))
    .expect("a session document")
}

/// The request jar carrying `store`'s cookies for `s`.
fn sealed_jar(store: &dyn StateStore, s: &SessionData, now: u64) -> MemoryCookieJar {
    let mut jar = MemoryCookieJar::default();
    ready(store.set(s, WriteOptions::new(now + 86_400, true), &mut jar)).expect("cookie store writes");
    jar.next_request()
}

fn session_benches(c: &mut Criterion) {
    let now = unix_now();
    let s = session(now);
    let json = serde_json::to_vec(&s).expect("serializes");
    let attrs = CookieAttributes::default();
    let uncached = internal::cookie_state_store(&[SECRET], NAME, attrs.clone(), 0);
    let cached = internal::cookie_state_store(&[SECRET], NAME, attrs.clone(), 1024);
    let jar = sealed_jar(&cached, &s, now);
    let chunks = jar.names().len();
    let header = jar.to_cookie_header();
    let sealed_len = internal::read_chunked(&jar, NAME, 20).map_or(0, |v| v.len());
    eprintln!(
        "session: JSON {} B, sealed {sealed_len} B, {chunks} cookie chunks, Cookie header {} B",
        json.len(),
        header.len()
    );
    assert_eq!(chunks, 2, "the benchmark session must span two chunks");
    let cold_jars: Vec<MemoryCookieJar> = (0..COLD_COOKIES).map(|_| sealed_jar(&cached, &s, now)).collect();

    let mut g = c.benchmark_group("session_open");
    // `uncached` and `cold` read the same ring of distinct cookies, so their difference is
    // the cache's own cost on a miss (CPU-cache effects of the ring are the same for both).
    let mut next = 0usize;
    g.bench_function("uncached", |b| {
        b.iter_batched_ref(
            || {
                next = (next + 1) % COLD_COOKIES;
                cold_jars[next].clone()
            },
            |j| assert!(ready(uncached.get(j)).expect("no store error").is_some()),
            BatchSize::SmallInput,
        );
    });
    let cold = internal::cookie_state_store(&[SECRET], NAME, attrs.clone(), 1024);
    g.bench_function("cold", |b| {
        b.iter_batched_ref(
            || {
                next = (next + 1) % COLD_COOKIES;
                cold_jars[next].clone()
            },
            |j| assert!(ready(cold.get(j)).expect("no store error").is_some()),
            BatchSize::SmallInput,
        );
    });
    g.bench_function("hot", |b| {
        b.iter_batched_ref(
            || jar.clone(),
            |j| assert!(ready(cached.get(j)).expect("no store error").is_some()),
            BatchSize::SmallInput,
        );
    });
    // The per-request path: the shared read of a hit.
    g.bench_function("shared", |b| {
        b.iter_batched_ref(
            || jar.clone(),
            |j| assert!(ready(cached.read(j)).expect("no store error").is_some()),
            BatchSize::SmallInput,
        );
    });
    g.finish();
    let (hits, misses, len) = cold.stats();
    eprintln!("cold store cache: {hits} hits, {misses} misses, {len} entries");
    let (hits, misses, len) = cached.stats();
    eprintln!("hot store cache: {hits} hits, {misses} misses, {len} entries");

    let mut g = c.benchmark_group("session_seal");
    g.bench_function("set", |b| {
        b.iter_batched_ref(
            MemoryCookieJar::default,
            |j| ready(cached.set(&s, WriteOptions::new(now + 86_400, false), j)).expect("writes"),
            BatchSize::SmallInput,
        );
    });
    g.finish();

    let sealer = Sealer::new(&[SECRET], &[NAME]);
    let sealed = sealer.seal(NAME, &json);
    let mut g = c.benchmark_group("seal_raw");
    g.bench_function("seal", |b| b.iter(|| sealer.seal(NAME, &json)));
    g.finish();
    let mut g = c.benchmark_group("open_raw");
    g.bench_function("open", |b| {
        b.iter(|| sealer.open(NAME, &sealed).expect("opens"));
    });
    g.bench_function("open_and_parse", |b| {
        b.iter(|| {
            let plain = sealer.open(NAME, &sealed).expect("opens");
            serde_json::from_slice::<SessionData>(&plain).expect("parses")
        });
    });
    g.finish();

    // A ~6 KB cookie value: two full chunks and a bit.
    let value: String = "abcdefghijklmnopqrstuvwxyz0123456789-_ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        .chars()
        .cycle()
        .take(6 * 1024)
        .collect();
    let mut written = MemoryCookieJar::default();
    internal::write_chunked(&mut written, NAME, &value, &attrs);
    let written = written.next_request();
    eprintln!(
        "chunks: a {} B value in {} cookies",
        value.len(),
        written.names().len()
    );
    let mut g = c.benchmark_group("chunks");
    g.bench_function("write_6k", |b| {
        b.iter_batched_ref(
            MemoryCookieJar::default,
            |j| internal::write_chunked(j, NAME, &value, &attrs),
            BatchSize::SmallInput,
        );
    });
    g.bench_function("read_6k", |b| {
        b.iter(|| internal::read_chunked(&written, NAME, 20).expect("joins"));
    });
    g.finish();
}

fn id_token_benches(c: &mut Criterion) {
    let now = unix_now();
    let token = id_token(now);
    let mut jwk: Value = serde_json::from_str(RSA1_JWK).expect("jwk");
    jwk["kid"] = json!("k1");
    let doc = json!({"keys": [jwk]});
    let keys = Jwks::parse(&doc).expect("jwks parses");
    let verified = internal::verify_id_token_with_keys(&token, &keys, ISSUER, CLIENT_ID, Some(NONCE), now);
    assert!(verified.is_ok(), "{verified:?}");
    let mut g = c.benchmark_group("id_token_verify");
    g.bench_function("rs256_cached_jwks", |b| {
        b.iter(|| {
            internal::verify_id_token_with_keys(&token, &keys, ISSUER, CLIENT_ID, Some(NONCE), now)
                .expect("valid")
        });
    });
    g.bench_function("rs256_parse_jwks_each_time", |b| {
        b.iter(|| {
            internal::verify_id_token(&token, &doc, ISSUER, CLIENT_ID, Some(NONCE), now).expect("valid")
        });
    });
    g.finish();
}

/// Serves the discovery document on loopback (the login benchmark fetches it once).
async fn discovery_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds loopback");
    let base = format!("http://{}", listener.local_addr().expect("has an address"));
    let doc = json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "end_session_endpoint": format!("{base}/oidc/logout"),
    })
    .to_string();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let doc = doc.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{doc}",
                    doc.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    base
}

fn login_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let issuer = rt.block_on(discovery_server());
    let client = ServerClient::builder()
        .issuer(issuer)
        .client_id(CLIENT_ID)
        .client_auth(ClientAuth::none())
        .secret(SECRET)
        .app_base_url("https://app.example.com")
        .build()
        .expect("client builds");
    // The first call fetches the metadata; every measured call finds it cached.
    let url = rt
        .block_on(client.start_interactive_login(LoginOptions::new(), &mut MemoryCookieJar::default()))
        .expect("login starts");
    eprintln!("login_start: authorize URL {} B", url.as_str().len());
    let mut g = c.benchmark_group("login_start");
    g.bench_function("start_interactive_login", |b| {
        b.iter_batched_ref(
            MemoryCookieJar::default,
            |j| {
                rt.block_on(client.start_interactive_login(LoginOptions::new(), j))
                    .expect("login starts")
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

criterion_group!(benches, session_benches, id_token_benches, login_benches);
criterion_main!(benches);
