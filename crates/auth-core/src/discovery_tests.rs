//! Cache behaviour against a tiny loopback HTTP server whose answers the test controls.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

struct Server {
    base: String,
    metadata_hits: Arc<AtomicUsize>,
    jwks_hits: Arc<AtomicUsize>,
    jwks: Arc<Mutex<Value>>,
}

fn jwk(kid: &str) -> Value {
    let mut k: Value = serde_json::from_str(include_str!("../testdata/rsa1.jwk.json")).unwrap();
    k["kid"] = json!(kid);
    k
}

/// Serves discovery and JWKS; every response waits `delay` so concurrent callers overlap.
async fn serve(issuer_override: Option<&str>, delay: Duration) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let metadata_hits = Arc::new(AtomicUsize::new(0));
    let jwks_hits = Arc::new(AtomicUsize::new(0));
    let jwks = Arc::new(Mutex::new(json!({"keys": [jwk("k1")]})));
    let issuer = issuer_override.map_or_else(|| base.clone(), str::to_owned);
    let (m, j, doc, b) = (
        metadata_hits.clone(),
        jwks_hits.clone(),
        jwks.clone(),
        base.clone(),
    );
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (m, j, doc, b, issuer) = (m.clone(), j.clone(), doc.clone(), b.clone(), issuer.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let body = if req.starts_with("GET /.well-known/openid-configuration") {
                    m.fetch_add(1, Ordering::SeqCst);
                    json!({"issuer": issuer, "authorization_endpoint": format!("{b}/authorize"), "token_endpoint": format!("{b}/token"), "jwks_uri": format!("{b}/jwks")}).to_string()
                } else {
                    j.fetch_add(1, Ordering::SeqCst);
                    doc.lock().unwrap().to_string()
                };
                tokio::time::sleep(delay).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    Server {
        base,
        metadata_hits,
        jwks_hits,
        jwks,
    }
}

fn http() -> reqwest::Client {
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
        .jwks_after_unknown_kid(&first)
        .await
        .unwrap()
        .expect("refetched");
    assert_eq!(fresh.find(Some("k2")).len(), 1);
    assert_eq!(s.jwks_hits.load(Ordering::SeqCst), 2);
    // A caller still holding the old set gets the new one without another fetch.
    let again = d.jwks_after_unknown_kid(&first).await.unwrap().expect("shared");
    assert!(Arc::ptr_eq(&again, &fresh));
    // Another unknown kid right away: cooldown, no fetch.
    assert!(d.jwks_after_unknown_kid(&fresh).await.unwrap().is_none());
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
