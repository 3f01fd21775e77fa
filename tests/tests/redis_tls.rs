//! `RedisBackend` over TLS (`rediss://`) against a TLS-only `redis-server` spawned per test
//! ([`TestRedis::spawn_tls`]), whose certificate is signed by the test CA
//! [`EMU_TLS_CA_PEM`]: sessions and the backend's basic operations over TLS with the CA
//! trusted through `RedisBackendBuilder::tls_root_certificates` (no process-wide
//! `SSL_CERT_FILE` in tests: environment variables are shared by the test threads), and typed,
//! bounded failures when the CA is not trusted, the PEM is not a certificate, or the URL is
//! plain `redis://` against the TLS port.

use std::time::{Duration, Instant};

use auth_core::StoreError;
use auth_core::store::{LogoutKey, SessionBackend, SessionKeys};
use auth_redis::RedisBackend;
use auth_tests::auth0::EMU_TLS_CA_PEM;
use auth_tests::{TestRedis, unique_prefix};

const HOUR: Duration = Duration::from_secs(3600);
/// Connect timeout of the failing connections: they must fail within it, not hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

fn keys(sid: &str, sub: &str) -> SessionKeys {
    SessionKeys {
        sid: sid.to_owned(),
        sub: sub.to_owned(),
    }
}

/// The error and its sources, one line.
fn describe(err: &StoreError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

async fn trusted(redis: &TestRedis) -> RedisBackend {
    RedisBackend::builder(redis.url())
        .key_prefix(unique_prefix())
        .tls_root_certificates(EMU_TLS_CA_PEM)
        .connect()
        .await
        .expect("connect over TLS with the test CA trusted")
}

#[tokio::test]
async fn sessions_round_trip_over_tls() {
    let redis = TestRedis::spawn_tls().await;
    assert!(redis.url().starts_with("rediss://127.0.0.1:"), "{}", redis.url());
    let b = trusted(&redis).await;
    let shown = format!("{b:?}");
    assert!(shown.contains("tls 127.0.0.1:"), "{shown}");
    b.ping().await.unwrap();

    // A session written and read back.
    b.set("id1", b"sealed-session", &keys("sid-1", "user|1"), HOUR)
        .await
        .unwrap();
    assert_eq!(
        b.get("id1").await.unwrap().as_deref(),
        Some(&b"sealed-session"[..])
    );

    // The backend's basic operations, a few of each.
    assert!(
        b.update("id1", b"v2", &keys("sid-1", "user|1"), HOUR)
            .await
            .unwrap()
    );
    assert_eq!(b.get("id1").await.unwrap().as_deref(), Some(&b"v2"[..]));
    assert!(!b.update("nope", b"x", &keys("s", "u"), HOUR).await.unwrap());
    b.delete("id1").await.unwrap();
    assert_eq!(b.get("id1").await.unwrap(), None);
    assert!(
        !b.update("id1", b"v3", &keys("sid-1", "user|1"), HOUR)
            .await
            .unwrap()
    );

    b.set("a", b"1", &keys("sid-2", "user|2"), HOUR).await.unwrap();
    b.set("b", b"2", &keys("sid-3", "user|2"), HOUR).await.unwrap();
    let by_user = LogoutKey::Sub("user|2".to_owned());
    assert_eq!(b.delete_by(&by_user).await.unwrap(), 2);
    assert_eq!(b.get("a").await.unwrap(), None);

    b.record_logout(&by_user, 1_700_000_000_000, HOUR).await.unwrap();
    assert_eq!(b.logout_time(&[by_user]).await.unwrap(), Some(1_700_000_000_000));
    assert!(b.remember_once("jti-1", HOUR).await.unwrap());
    assert!(!b.remember_once("jti-1", HOUR).await.unwrap());

    // A second backend (another instance) sees the first one's writes over its own TLS
    // connection.
    let other = RedisBackend::builder(redis.url())
        .key_prefix(b.key_prefix())
        .tls_root_certificates(EMU_TLS_CA_PEM.as_bytes().to_vec())
        .connect()
        .await
        .unwrap();
    b.set("shared", b"s", &keys("sid-4", "user|4"), HOUR)
        .await
        .unwrap();
    assert_eq!(other.get("shared").await.unwrap().as_deref(), Some(&b"s"[..]));
}

#[tokio::test]
async fn untrusted_ca_fails_with_a_typed_error() {
    let redis = TestRedis::spawn_tls().await;
    // The system roots (no SSL_CERT_FILE is set for the tests) do not include the test CA.
    let started = Instant::now();
    let err = RedisBackend::builder(redis.url())
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .unwrap_err();
    let took = started.elapsed();
    let text = describe(&err);
    eprintln!("untrusted CA: {took:?}: {text}");
    assert!(took < CONNECT_TIMEOUT + Duration::from_secs(1), "took {took:?}");
    assert!(text.contains("tls 127.0.0.1:"), "{text}");
    assert!(
        text.contains("trusted CA") && text.contains("SSL_CERT_FILE"),
        "{text}"
    );

    // Another CA given explicitly (the server certificate is not one): rejected the same way.
    let not_the_ca = include_str!("../src/auth0/tls.rs")
        .split("pub(crate) const SERVER_CERT_PEM: &str = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the server certificate in tls.rs");
    let err = RedisBackend::builder(redis.url())
        .connect_timeout(CONNECT_TIMEOUT)
        .tls_root_certificates(not_the_ca)
        .connect()
        .await
        .unwrap_err();
    assert!(describe(&err).contains("trusted CA"), "{}", describe(&err));
}

#[tokio::test]
async fn wrong_host_name_fails_with_a_typed_error() {
    let redis = TestRedis::spawn_tls().await;
    // The certificate names 127.0.0.1 and localhost. The IPv4-mapped IPv6 address reaches the
    // same server but is another address to the verifier: the name does not match.
    let port = redis.url().rsplit(':').next().unwrap().to_owned();
    let url = format!("rediss://[::ffff:127.0.0.1]:{port}");
    let started = Instant::now();
    let result = RedisBackend::builder(&url)
        .connect_timeout(CONNECT_TIMEOUT)
        .tls_root_certificates(EMU_TLS_CA_PEM)
        .connect()
        .await;
    let err = result.expect_err("a certificate that does not name the host must be refused");
    let took = started.elapsed();
    eprintln!("wrong host: {took:?}: {}", describe(&err));
    assert!(took < CONNECT_TIMEOUT + Duration::from_secs(1), "took {took:?}");
    assert!(
        describe(&err).contains("names the URL's host"),
        "{}",
        describe(&err)
    );
}

#[tokio::test]
async fn plain_redis_url_against_the_tls_port_fails_cleanly() {
    let redis = TestRedis::spawn_tls().await;
    let plain = redis.url().replacen("rediss://", "redis://", 1);
    let started = Instant::now();
    let err = RedisBackend::builder(&plain)
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .unwrap_err();
    let took = started.elapsed();
    let text = describe(&err);
    eprintln!("plain URL on TLS port: {took:?}: {text}");
    assert!(took < CONNECT_TIMEOUT + Duration::from_secs(1), "took {took:?}");
    assert!(text.contains("rediss://"), "{text}");
}

#[tokio::test]
async fn tls_roots_need_a_rediss_url_and_a_certificate() {
    let err = RedisBackend::builder("redis://127.0.0.1:1")
        .tls_root_certificates(EMU_TLS_CA_PEM)
        .connect()
        .await
        .unwrap_err();
    assert!(
        describe(&err).contains("needs a rediss:// URL"),
        "{}",
        describe(&err)
    );

    let err = RedisBackend::builder("rediss://127.0.0.1:1")
        .tls_root_certificates("not a certificate")
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .unwrap_err();
    let text = describe(&err);
    eprintln!("bad PEM: {text}");
    assert!(text.contains("invalid tls_root_certificates"), "{text}");

    // The builder's Debug shows that roots are set, not their bytes.
    let shown = format!(
        "{:?}",
        RedisBackend::builder("rediss://127.0.0.1:1").tls_root_certificates(EMU_TLS_CA_PEM)
    );
    assert!(
        shown.contains("bytes of PEM") && !shown.contains("BEGIN"),
        "{shown}"
    );
}
