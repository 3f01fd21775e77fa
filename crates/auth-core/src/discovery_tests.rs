//! Cache behaviour against a tiny loopback HTTP server whose answers the test controls.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A loopback provider whose answers the test controls (also used by `id_token_tests`).
pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) metadata_hits: Arc<AtomicUsize>,
    pub(crate) jwks_hits: Arc<AtomicUsize>,
    pub(crate) jwks: Arc<Mutex<Value>>,
    /// Extra members merged into the discovery document.
    pub(crate) metadata_extra: Arc<Mutex<Value>>,
    /// While set, every request is answered `500` (the provider is down).
    pub(crate) failing: Arc<AtomicBool>,
}

pub(crate) fn jwk(kid: &str) -> Value {
    let mut k: Value = serde_json::from_str(include_str!("../testdata/rsa1.jwk.json")).unwrap();
    k["kid"] = json!(kid);
    k
}

/// The public JWK of `testdata/rsa2.pem`.
pub(crate) fn jwk2(kid: &str) -> Value {
    let mut k: Value = serde_json::from_str(include_str!("../testdata/rsa2.jwk.json")).unwrap();
    k["kid"] = json!(kid);
    k
}

/// Serves discovery and JWKS; every response waits `delay` so concurrent callers overlap.
pub(crate) async fn serve(issuer_override: Option<&str>, delay: Duration) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = Server {
        base: base.clone(),
        metadata_hits: Arc::new(AtomicUsize::new(0)),
        jwks_hits: Arc::new(AtomicUsize::new(0)),
        jwks: Arc::new(Mutex::new(json!({"keys": [jwk("k1")]}))),
        metadata_extra: Arc::new(Mutex::new(json!({}))),
        failing: Arc::new(AtomicBool::new(false)),
    };
    let issuer = issuer_override.map_or_else(|| base.clone(), str::to_owned);
    let (m, j, doc, extra, failing, b) = (
        server.metadata_hits.clone(),
        server.jwks_hits.clone(),
        server.jwks.clone(),
        server.metadata_extra.clone(),
        server.failing.clone(),
        base,
    );
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (m, j, doc, extra, failing, b, issuer) = (
                m.clone(),
                j.clone(),
                doc.clone(),
                extra.clone(),
                failing.clone(),
                b.clone(),
                issuer.clone(),
            );
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let body = if req.starts_with("GET /.well-known/openid-configuration") {
                    m.fetch_add(1, Ordering::SeqCst);
                    let mut meta = json!({"issuer": issuer, "authorization_endpoint": format!("{b}/authorize"), "token_endpoint": format!("{b}/token"), "jwks_uri": format!("{b}/jwks")});
                    if let (Some(meta), Some(extra)) =
                        (meta.as_object_mut(), extra.lock().unwrap().as_object())
                    {
                        meta.extend(extra.clone());
                    }
                    meta.to_string()
                } else {
                    j.fetch_add(1, Ordering::SeqCst);
                    doc.lock().unwrap().to_string()
                };
                tokio::time::sleep(delay).await;
                let status = if failing.load(Ordering::SeqCst) {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    server
}

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_callers_share_one_fetch() {
    let s = serve(None, Duration::from_millis(150)).await;
    let d = Arc::new(Discovery::new(
        http(),
        s.base.clone(),
        Duration::from_secs(600),
        Duration::from_secs(30),
    ));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let d = d.clone();
            tokio::spawn(async move { d.jwks().await.map(|k| k.keys.len()) })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 1);
    }
    assert_eq!(s.metadata_hits.load(Ordering::SeqCst), 1);
    assert_eq!(s.jwks_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn ttl_expiry_refetches() {
    let s = serve(None, Duration::ZERO).await;
    let d = Discovery::new(
        http(),
        s.base.clone(),
        Duration::from_millis(50),
        Duration::from_secs(30),
    );
    d.metadata().await.unwrap();
    d.metadata().await.unwrap();
    assert_eq!(s.metadata_hits.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(80)).await;
    d.metadata().await.unwrap();
    assert_eq!(s.metadata_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unknown_kid_refetches_once_then_cools_down() {
    let s = serve(None, Duration::ZERO).await;
    let d = Discovery::new(
        http(),
        s.base.clone(),
        Duration::from_secs(600),
        Duration::from_secs(30),
    );
    let first = d.jwks().await.unwrap();
    assert!(first.find(Some("k2")).is_empty());
    // The provider rotates in k2.
    *s.jwks.lock().unwrap() = json!({"keys": [jwk("k1"), jwk("k2")]});
    let fresh = d
        .jwks_after_unknown_kid(&first, RefetchSource::IdToken)
        .await
        .unwrap()
        .expect("refetched");
    assert_eq!(fresh.find(Some("k2")).len(), 1);
    assert_eq!(s.jwks_hits.load(Ordering::SeqCst), 2);
    // A caller still holding the old set gets the new one without another fetch.
    let again = d
        .jwks_after_unknown_kid(&first, RefetchSource::IdToken)
        .await
        .unwrap()
        .expect("shared");
    assert!(Arc::ptr_eq(&again, &fresh));
    // Another unknown kid right away: cooldown, no fetch.
    assert!(
        d.jwks_after_unknown_kid(&fresh, RefetchSource::IdToken)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(s.jwks_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn jwks_skips_unusable_keys() {
    let doc = json!({"keys": [
        {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB", "kid": "enc"},
        {"kty": "oct", "k": "c2VjcmV0", "kid": "sym"},
        {"kty": "RSA", "kid": "broken", "n": 5},
        jwk("good"),
    ]});
    let keys = parse_jwks(&doc).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].kid.as_deref(), Some("good"));
    assert!(parse_jwks(&json!({"nokeys": []})).is_err());
}

#[tokio::test]
async fn issuer_mismatch_is_refused() {
    let s = serve(Some("https://evil.example.com/"), Duration::ZERO).await;
    let d = Discovery::new(
        http(),
        s.base.clone(),
        Duration::from_secs(600),
        Duration::from_secs(30),
    );
    let e = d.metadata().await.unwrap_err();
    assert_eq!(e.code(), "discovery_error");
    assert!(matches!(
        e,
        crate::Error::Discovery(DiscoveryError::IssuerMismatch { .. })
    ));
}

#[tokio::test]
async fn unreachable_provider_is_a_transport_error() {
    // A port nobody listens on: refused at once.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let d = Discovery::new(
        http(),
        format!("http://{addr}"),
        Duration::from_secs(600),
        Duration::from_secs(30),
    );
    assert_eq!(d.metadata().await.unwrap_err().code(), "transport_error");

    // A server that accepts but never answers: the request timeout ends it.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let d = Discovery::new(
        client,
        format!("http://{addr}"),
        Duration::from_secs(600),
        Duration::from_secs(30),
    );
    let started = Instant::now();
    let e = d.metadata().await.unwrap_err();
    assert!(
        matches!(e, crate::Error::Transport(crate::TransportError::Timeout { .. })),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

fn sign_rs256(kid: &str, pem: &str) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.to_owned());
    let claims = json!({"iss": "x", "sub": "u", "aud": "client-1", "iat": 1, "exp": 2});
    encode(&h, &claims, &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()).unwrap()
}

/// Issue 10 item 8: junk posted to the unauthenticated back-channel route names unknown
/// `kid`s; with one shared cooldown it spent the refetch, and the first callback after a key
/// rotation failed with `unknown_key` for the whole cooldown.
#[tokio::test]
async fn backchannel_junk_does_not_spend_the_callback_refetch() {
    use crate::error::IdTokenError;
    use crate::id_token::{SignatureCheck, verified};
    const RSA2: &str = include_str!("../testdata/rsa2.pem");
    let s = serve(None, Duration::ZERO).await;
    let d = Discovery::new(
        http(),
        s.base.clone(),
        Duration::from_secs(600),
        Duration::from_secs(30),
    );
    let check = SignatureCheck {
        allowed_algs: &[],
        client_secret: None,
    };
    for i in 0..20 {
        let junk = sign_rs256(&format!("junk-{i}"), RSA2);
        let e = verified(&d, &junk, &check, RefetchSource::LogoutToken)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::IdToken(IdTokenError::UnknownKey)), "{e:?}");
    }
    // First fetch + one refetch for all the junk (its own slot is now cooling down).
    assert_eq!(s.jwks_hits.load(Ordering::SeqCst), 2);

    // The provider rotates in k2 and a real callback's ID token is signed with it.
    *s.jwks.lock().unwrap() = json!({"keys": [jwk("k1"), jwk2("k2")]});
    let token = sign_rs256("k2", RSA2);
    let (header, _) = verified(&d, &token, &check, RefetchSource::IdToken)
        .await
        .expect("the callback's refetch was not spent by the junk");
    assert_eq!(header["kid"], "k2");
    assert_eq!(s.jwks_hits.load(Ordering::SeqCst), 3);

    // Both slots are now cooling down: more junk of either kind fetches nothing.
    for source in [RefetchSource::LogoutToken, RefetchSource::IdToken] {
        let junk = sign_rs256("junk-again", RSA2);
        assert!(verified(&d, &junk, &check, source).await.is_err());
    }
    assert_eq!(s.jwks_hits.load(Ordering::SeqCst), 3);
}

/// Issue 10 item 8: a failed fetch is remembered; until the failure TTL passes, callers get
/// a typed error without another request to the provider.
#[tokio::test]
async fn failed_fetch_is_not_retried_until_the_failure_ttl_expires() {
    let s = serve(None, Duration::ZERO).await;
    s.failing.store(true, Ordering::SeqCst);
    let d = Discovery::new(
        http(),
        s.base.clone(),
        Duration::from_secs(600),
        Duration::from_secs(30),
    )
    .with_failure_ttl(Duration::from_millis(500));
    let e = d.metadata().await.unwrap_err();
    assert!(
        matches!(e, Error::Transport(TransportError::Status { status: 500, .. })),
        "{e:?}"
    );
    for _ in 0..50 {
        let e = d.metadata().await.unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Transport(TransportError::RecentlyFailed { retry_after_secs: 1, reason, .. })
                    if reason.contains("500")
            ),
            "{e:?}"
        );
        assert_eq!(e.code(), "transport_error");
        assert_eq!(d.jwks().await.unwrap_err().code(), "transport_error");
    }
    assert_eq!(s.metadata_hits.load(Ordering::SeqCst), 1);
    assert_eq!(s.jwks_hits.load(Ordering::SeqCst), 0);

    // The provider recovers; once the failure TTL has passed, the next call fetches.
    s.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(d.jwks().await.unwrap().keys.len(), 1);
    assert_eq!(s.metadata_hits.load(Ordering::SeqCst), 2);
    assert_eq!(s.jwks_hits.load(Ordering::SeqCst), 1);
}

/// The builder's default failure cache (5 s) is wired into the client.
#[tokio::test]
async fn client_default_failure_cache_limits_outbound_fetches() {
    let s = serve(None, Duration::ZERO).await;
    s.failing.store(true, Ordering::SeqCst);
    let client = crate::ServerClient::builder()
        .issuer(s.base.clone())
        .client_id("client-1")
        .client_auth(crate::ClientAuth::none())
        .secret("0123456789abcdef0123456789abcdef-secret")
        .app_base_url("http://localhost:3000")
        .build()
        .unwrap();
    for _ in 0..10 {
        assert_eq!(client.metadata().await.unwrap_err().code(), "transport_error");
    }
    assert_eq!(s.metadata_hits.load(Ordering::SeqCst), 1);
}

/// Issue 10 item 8: past the TTL, a failed refresh serves the last good JWKS and metadata
/// (up to the maximum staleness) instead of failing every token validation.
#[tokio::test]
async fn stale_jwks_is_served_while_the_provider_fails_after_ttl() {
    let s = serve(None, Duration::ZERO).await;
    let d = Discovery::new(
        http(),
        s.base.clone(),
        Duration::from_millis(100),
        Duration::from_secs(30),
    )
    .with_failure_ttl(Duration::from_secs(5))
    .with_max_stale(Duration::from_secs(60));
    let keys = d.jwks().await.unwrap();
    let meta = d.metadata().await.unwrap();
    s.failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;

    let again = d.jwks().await.expect("the last good JWKS is served");
    assert!(Arc::ptr_eq(&again, &keys));
    assert!(Arc::ptr_eq(&d.metadata().await.unwrap(), &meta));
    // One refresh attempt each, then the failure is remembered: no request per call.
    assert_eq!(s.metadata_hits.load(Ordering::SeqCst), 2);
    assert_eq!(s.jwks_hits.load(Ordering::SeqCst), 2);
    for _ in 0..20 {
        assert!(Arc::ptr_eq(&d.jwks().await.unwrap(), &keys));
    }
    assert_eq!(s.metadata_hits.load(Ordering::SeqCst), 2);
    assert_eq!(s.jwks_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn stale_copies_end_at_the_maximum_staleness() {
    let s = serve(None, Duration::ZERO).await;
    let d = Discovery::new(
        http(),
        s.base.clone(),
        Duration::from_millis(50),
        Duration::from_secs(30),
    )
    .with_failure_ttl(Duration::ZERO)
    .with_max_stale(Duration::from_millis(100));
    d.jwks().await.unwrap();
    s.failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(d.jwks().await.is_ok(), "within TTL + max staleness");
    tokio::time::sleep(Duration::from_millis(120)).await;
    let e = d.jwks().await.unwrap_err();
    assert!(
        matches!(e, Error::Transport(TransportError::Status { status: 500, .. })),
        "{e:?}"
    );
    // The provider recovers: fetched again at once (no failure cache here).
    s.failing.store(false, Ordering::SeqCst);
    assert!(d.jwks().await.is_ok());
}

/// The same through the client's public entry points: junk posted to the back-channel
/// handler, then the provider rotates its key, then a callback's ID token signed with the
/// new key validates at once.
#[tokio::test]
async fn client_backchannel_junk_then_callback_after_key_rotation() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    const RSA2: &str = include_str!("../testdata/rsa2.pem");
    let s = serve(None, Duration::ZERO).await;
    let client = crate::ServerClient::builder()
        .issuer(s.base.clone())
        .client_id("client-1")
        .client_auth(crate::ClientAuth::none())
        .secret("0123456789abcdef0123456789abcdef-secret")
        .app_base_url("http://localhost:3000")
        .build()
        .unwrap();
    let meta = client.metadata().await.unwrap();
    let n = crate::time::now();
    let sign = |kid: &str, claims: &Value| {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(kid.to_owned());
        encode(&h, claims, &EncodingKey::from_rsa_pem(RSA2.as_bytes()).unwrap()).unwrap()
    };
    for i in 0..10 {
        let junk = sign(
            &format!("junk-{i}"),
            &json!({"iss": meta.issuer, "aud": "client-1", "iat": n, "jti": format!("j{i}"), "sid": "s",
                    "events": {crate::BACKCHANNEL_LOGOUT_EVENT: {}}}),
        );
        let e = client.handle_backchannel_logout(&junk).await.unwrap_err();
        assert_eq!(e.code(), "invalid_logout_token", "{e:?}");
    }
    assert_eq!(s.jwks_hits.load(Ordering::SeqCst), 2);

    *s.jwks.lock().unwrap() = json!({"keys": [jwk2("k2")]});
    let id_token = sign(
        "k2",
        &json!({"iss": meta.issuer, "sub": "user-1", "aud": "client-1", "iat": n, "exp": n + 600}),
    );
    let claims = client
        .validate_id_token(&meta, &id_token, None)
        .await
        .expect("the callback refetches the rotated JWKS");
    assert_eq!(claims["sub"], "user-1");
    assert_eq!(s.jwks_hits.load(Ordering::SeqCst), 3);
}
