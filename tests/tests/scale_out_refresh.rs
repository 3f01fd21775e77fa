//! Issue 14 item 1: one refresh per session across instances. Two app instances (two
//! `ServerClient`s built with the same config) on one real Redis and the real test IdP, which
//! rotates refresh tokens: after the access token expires, 100 concurrent `/token` requests
//! split over both instances cause exactly one refresh at the provider, and all get the same
//! new token. Before the lease, each instance refreshed on its own and the loser's rotated
//! refresh token was refused (`invalid_grant`): logged out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use auth_axum::{AuthOptions, AuthState};
use auth_core::StoreError;
use auth_core::store::{LogoutKey, SessionBackend, SessionKeys};
use auth_core::{AuthorizationParams, ClientAuth, ServerClient};
use auth_tests::TestRedis;
use auth_tests::app::{APP_SECRET, AppConfig, TestApp, session_cookie_header};
use auth_tests::idp::{CONF_BASIC_ID, CONF_BASIC_SECRET, IdpOptions};
use reqwest::header::COOKIE;

/// Access-token lifetime at the IdP (seconds).
const TOKEN_TTL: u64 = 3;

/// A backend that delegates to `inner`, optionally hiding its lease methods (so the trait's
/// non-coordinating defaults apply: the old behaviour), or planting a lease for a holder that
/// "dies" on the first acquire.
#[derive(Debug)]
struct Wrapped {
    inner: Arc<dyn SessionBackend>,
    no_lease: bool,
    dead_holder: Option<Duration>,
    /// Shared by both instances: the dead holder takes the lease once.
    /// (Every acquire waits for the plant, so nobody takes the lease before the dead holder.)
    planted: Arc<tokio::sync::Mutex<bool>>,
    /// Before each fenced write, the writer's lease expires and another holder takes it.
    lose_lease_before_write: bool,
    /// Set when a fenced write was refused and left the record as it was.
    stale_write_refused: Arc<AtomicBool>,
}

impl Wrapped {
    fn new(inner: Arc<dyn SessionBackend>) -> Self {
        Self {
            inner,
            no_lease: false,
            dead_holder: None,
            planted: Arc::default(),
            lose_lease_before_write: false,
            stale_write_refused: Arc::default(),
        }
    }
}

#[async_trait]
impl SessionBackend for Wrapped {
    async fn get(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(id).await
    }
    async fn set(&self, id: &str, value: &[u8], keys: &SessionKeys, ttl: Duration) -> Result<(), StoreError> {
        self.inner.set(id, value, keys, ttl).await
    }
    async fn update(
        &self,
        id: &str,
        value: &[u8],
        keys: &SessionKeys,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.inner.update(id, value, keys, ttl).await
    }
    async fn acquire_refresh_lease(
        &self,
        session_id: &str,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        if self.no_lease {
            return Ok(Some(0));
        }
        if let Some(dead) = self.dead_holder {
            let mut planted = self.planted.lock().await;
            if !*planted {
                *planted = true;
                // A holder takes the lease and dies: never refreshes, never releases.
                assert!(
                    self.inner
                        .acquire_refresh_lease(session_id, key, dead)
                        .await?
                        .is_some()
                );
            }
        }
        self.inner.acquire_refresh_lease(session_id, key, ttl).await
    }
    async fn release_refresh_lease(&self, session_id: &str, key: &str, token: u64) -> Result<(), StoreError> {
        if self.no_lease {
            return Ok(());
        }
        self.inner.release_refresh_lease(session_id, key, token).await
    }
    async fn update_fenced(
        &self,
        id: &str,
        value: &[u8],
        keys: &SessionKeys,
        ttl: Duration,
        lease_key: &str,
        token: u64,
    ) -> Result<bool, StoreError> {
        if self.no_lease {
            // The refreshed token set lands a moment later, so that the other instance's
            // requests of the storm read the old one, as with a slower provider (without
            // this the comparison depends on scheduling).
            tokio::time::sleep(Duration::from_millis(300)).await;
            return self.inner.update(id, value, keys, ttl).await;
        }
        if self.lose_lease_before_write {
            // As if the lease expired and another request took it over.
            self.inner.release_refresh_lease(id, lease_key, token).await?;
            let next = self
                .inner
                .acquire_refresh_lease(id, lease_key, Duration::from_secs(60))
                .await?;
            assert!(next.is_some_and(|n| n > token));
            let before = self.inner.get(id).await?;
            let written = self
                .inner
                .update_fenced(id, value, keys, ttl, lease_key, token)
                .await?;
            if !written && self.inner.get(id).await? == before {
                self.stale_write_refused.store(true, Ordering::SeqCst);
            }
            return Ok(written);
        }
        self.inner
            .update_fenced(id, value, keys, ttl, lease_key, token)
            .await
    }
    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }
    async fn delete_by(&self, key: &LogoutKey) -> Result<usize, StoreError> {
        self.inner.delete_by(key).await
    }
    async fn record_logout(&self, key: &LogoutKey, at: u64, ttl: Duration) -> Result<(), StoreError> {
        self.inner.record_logout(key, at, ttl).await
    }
    async fn logout_time(&self, keys: &[LogoutKey]) -> Result<Option<u64>, StoreError> {
        self.inner.logout_time(keys).await
    }
    async fn remember_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.inner.remember_once(key, ttl).await
    }
    async fn forget_once(&self, key: &str) -> Result<(), StoreError> {
        self.inner.forget_once(key).await
    }
}

async fn redis_backend(redis: &TestRedis, prefix: &str) -> Arc<dyn SessionBackend> {
    Arc::new(
        auth_redis::RedisBackend::builder(redis.url())
            .key_prefix(prefix)
            .connect()
            .await
            .expect("connect to the test Redis"),
    )
}

/// Two instances on one Redis (each with its own connection) and one IdP; the session cookie
/// of one login; the second instance's base URL.
struct TwoInstances {
    app: TestApp,
    second: String,
    cookie: String,
    _server: tokio::task::JoinHandle<()>,
}

async fn two_instances(redis: &TestRedis, make: impl Fn(Arc<dyn SessionBackend>) -> Wrapped) -> TwoInstances {
    let prefix = auth_tests::unique_prefix();
    two_instances_on(
        redis_backend(redis, &prefix).await,
        redis_backend(redis, &prefix).await,
        make,
    )
    .await
}

/// Two instances, each on its own handle to one store.
async fn two_instances_on(
    first: Arc<dyn SessionBackend>,
    second_backend: Arc<dyn SessionBackend>,
    make: impl Fn(Arc<dyn SessionBackend>) -> Wrapped,
) -> TwoInstances {
    let first = Arc::new(make(first));
    let app = TestApp::start_with(AppConfig {
        client: Box::new(move |b| {
            b.session_backend_arc(first)
                .server_side_sessions(true)
                .token_refresh_leeway(Duration::ZERO)
        }),
        idp: IdpOptions {
            access_token_ttl: Some(TOKEN_TTL),
            ..IdpOptions::default()
        },
        ..AppConfig::default()
    })
    .await;
    // The second instance: same configuration, own client and Redis connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = format!("http://{}", listener.local_addr().unwrap());
    let client = ServerClient::builder()
        .issuer(app.idp.issuer())
        .client_id(CONF_BASIC_ID)
        .client_auth(ClientAuth::secret(CONF_BASIC_SECRET))
        .secret(APP_SECRET)
        .app_base_url(&app.base)
        .authorization_params(AuthorizationParams::new())
        .session_backend_arc(Arc::new(make(second_backend)))
        .server_side_sessions(true)
        .token_refresh_leeway(Duration::ZERO)
        .build()
        .unwrap();
    let auth = AuthState::new(client, AuthOptions::new()).unwrap();
    let router = auth_examples::quickstart::app(&auth);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let http = TestApp::browser();
    let callback = app.login(&http, "", "alice").await;
    let cookie = session_cookie_header(&callback);
    assert!(!cookie.is_empty(), "a session cookie");
    TwoInstances {
        app,
        second,
        cookie,
        _server: server,
    }
}

/// `/token` on `base` with the session cookie (a fresh client per request, as a browser whose
/// requests a load balancer spreads over the instances): status and token.
async fn token(base: &str, cookie: &str) -> (u16, Option<String>) {
    let r = reqwest::Client::new()
        .get(format!("{base}/token"))
        .header(COOKIE, cookie)
        .send()
        .await
        .expect("GET /token");
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    (status, body["access_token"].as_str().map(str::to_owned))
}

/// 100 concurrent `/token` requests, half to each instance: statuses and tokens.
async fn storm(t: &TwoInstances) -> Vec<(u16, Option<String>)> {
    let mut tasks = Vec::new();
    for i in 0..100 {
        let base = if i % 2 == 0 {
            t.app.base.clone()
        } else {
            t.second.clone()
        };
        let cookie = t.cookie.clone();
        tasks.push(tokio::spawn(async move { token(&base, &cookie).await }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

async fn before_and_after_expiry(t: &TwoInstances) -> String {
    let (status, before) = token(&t.app.base, &t.cookie).await;
    assert_eq!(status, 200);
    let (status, same) = token(&t.second, &t.cookie).await;
    assert_eq!((status, &same), (200, &before), "both instances read one session");
    assert_eq!(t.app.idp.requests().await.refreshes(), 0);
    tokio::time::sleep(Duration::from_secs(TOKEN_TTL + 1)).await;
    before.unwrap()
}

fn assert_one_new_token(results: &[(u16, Option<String>)], old: &str) -> String {
    let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    assert!(statuses.iter().all(|s| *s == 200), "statuses: {statuses:?}");
    let first = results[0].1.clone().unwrap();
    assert_ne!(first, old, "a refreshed token");
    assert!(
        results.iter().all(|r| r.1.as_deref() == Some(first.as_str())),
        "every request got the same new token"
    );
    first
}

/// The refresh storm: exactly one refresh at the provider, every request 200 with one new
/// token, and the session keeps working on both instances afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_storm_over_two_instances_refreshes_once() {
    let redis = TestRedis::start().await;
    let t = two_instances(&redis, Wrapped::new).await;
    let old = before_and_after_expiry(&t).await;
    let results = storm(&t).await;
    let new = assert_one_new_token(&results, &old);
    assert_eq!(
        t.app.idp.requests().await.refreshes(),
        1,
        "one refresh for 100 requests"
    );
    assert_eq!(token(&t.second, &t.cookie).await, (200, Some(new.clone())));
    assert_eq!(token(&t.app.base, &t.cookie).await, (200, Some(new)));
}

/// The same storm with two clients sharing one `MemoryBackend` (its lease is real too).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_storm_over_two_clients_on_one_memory_backend_refreshes_once() {
    let memory: Arc<dyn SessionBackend> = Arc::new(auth_core::store::MemoryBackend::new());
    let t = two_instances_on(memory.clone(), memory, Wrapped::new).await;
    let old = before_and_after_expiry(&t).await;
    let results = storm(&t).await;
    assert_one_new_token(&results, &old);
    assert_eq!(t.app.idp.requests().await.refreshes(), 1);
}

/// A lease holder that dies (takes the lease, never refreshes, never releases) delays the
/// others until its lease expires; then one of them takes it over and refreshes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_lease_holder_delays_but_does_not_break_the_others() {
    let redis = TestRedis::start().await;
    let dead = Duration::from_secs(2);
    let planted = Arc::new(tokio::sync::Mutex::new(false));
    let t = two_instances(&redis, |inner| Wrapped {
        dead_holder: Some(dead),
        planted: planted.clone(),
        ..Wrapped::new(inner)
    })
    .await;
    let old = before_and_after_expiry(&t).await;
    let started = Instant::now();
    let results = storm(&t).await;
    let took = started.elapsed();
    assert_one_new_token(&results, &old);
    assert!(
        took >= dead - Duration::from_millis(100),
        "waited for the lease: {took:?}"
    );
    assert_eq!(t.app.idp.requests().await.refreshes(), 1);
}

/// A holder whose lease expired before its write (taken over meanwhile) writes nothing: the
/// record keeps what the new holder stores; the request itself still gets its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holder_that_lost_its_lease_does_not_overwrite_the_record() {
    let redis = TestRedis::start().await;
    let refused = Arc::new(AtomicBool::new(false));
    let t = two_instances(&redis, |inner| Wrapped {
        lose_lease_before_write: true,
        stale_write_refused: refused.clone(),
        ..Wrapped::new(inner)
    })
    .await;
    let old = before_and_after_expiry(&t).await;
    let (status, new) = token(&t.app.base, &t.cookie).await;
    assert_eq!(status, 200);
    assert_ne!(new.as_deref(), Some(old.as_str()));
    assert!(refused.load(Ordering::SeqCst), "the stale write was refused");
    assert_eq!(t.app.idp.requests().await.refreshes(), 1);
}

/// The old behaviour, for comparison (a backend with the trait's defaults: no lease): the
/// instances refresh independently, and with rotation the second refresh replays a rotated
/// token (more than one refresh, or requests refused). `--nocapture` prints what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_lease_the_storm_refreshes_per_instance() {
    let redis = TestRedis::start().await;
    let t = two_instances(&redis, |inner| Wrapped {
        no_lease: true,
        ..Wrapped::new(inner)
    })
    .await;
    before_and_after_expiry(&t).await;
    let results = storm(&t).await;
    let refreshes = t.app.idp.requests().await.refreshes();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for r in &results {
        *statuses.entry(r.0).or_default() += 1;
    }
    let tokens: std::collections::BTreeSet<_> = results.iter().filter_map(|r| r.1.clone()).collect();
    println!(
        "without the lease: refreshes={refreshes} statuses={statuses:?} distinct tokens={}",
        tokens.len()
    );
    assert!(refreshes > 1 || statuses.keys().any(|s| *s != 200));
}
