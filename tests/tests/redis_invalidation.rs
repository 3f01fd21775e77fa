//! Issue 14 item 2: reads at cookie speed, invalidation at once. Each `RedisBackend` keeps a
//! per-instance cache of session records (and of the logout list), kept true by Redis's
//! `CLIENT TRACKING` pushes. Two backends (or two app instances) on one real `redis-server`:
//! - a cached record is read without a Redis round trip (counted with `INFO commandstats`);
//! - an update, a delete, a back-channel `delete_by` and a recorded logout on one instance
//!   reach the other within 100 ms (in practice the push's own latency);
//! - when the invalidation channel is lost (the tracking connection killed, or Redis
//!   restarted empty), a revoked or lost session is never served, and the cache comes back;
//! - through real apps and the real IdP: a logout and an IdP back-channel logout on one
//!   instance are refused by the other at once.
//!
//! Without the tracking, a cached copy would be served until it aged out: each of the
//! "reaches the other" tests fails when `cache.rs` ignores `invalidate` pushes, and the loss
//! tests fail when a lost connection does not flush it.

use std::time::{Duration, Instant};

use auth_core::store::{LogoutKey, SessionBackend, SessionKeys};
use auth_redis::RedisBackend;
use auth_tests::TestRedis;
use auth_tests::app::{AppConfig, TestApp, session_cookie_header};
use auth_tests::idp::CONF_BASIC_ID;
use reqwest::header::{ACCEPT, COOKIE};

/// The bound the issue sets for another instance to refuse or re-read a changed session.
const BOUND: Duration = Duration::from_millis(100);
const TTL: Duration = Duration::from_secs(600);

async fn backend(redis: &TestRedis, prefix: &str) -> RedisBackend {
    RedisBackend::builder(redis.url())
        .key_prefix(prefix)
        .connect()
        .await
        .expect("connect to the test Redis")
}

fn keys(sid: &str) -> SessionKeys {
    SessionKeys {
        sid: sid.to_owned(),
        sub: format!("user-{sid}"),
    }
}

/// `HGET`s the server has run (session reads that went to Redis).
async fn hgets(redis: &TestRedis) -> u64 {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_hget:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// Reads `id` through `b` until a read goes without a Redis round trip (the cache is up and
/// holds it); panics after 5 s.
async fn until_cached(redis: &TestRedis, b: &RedisBackend, id: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let before = hgets(redis).await;
        let value = b.get(id).await.unwrap().expect("the record");
        if hgets(redis).await == before {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "the record was never served from the cache"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `read` until it gives `want`; returns how long that took. Panics after 2 s.
async fn until<T: PartialEq + std::fmt::Debug, F: Future<Output = T>>(
    want: &T,
    mut read: impl FnMut() -> F,
) -> Duration {
    let started = Instant::now();
    loop {
        if read().await == *want {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(2), "never saw {want:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Ids of the backends' tracking connections.
async fn tracking_clients(redis: &TestRedis) -> Vec<String> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .unwrap();
    list.lines()
        .filter(|l| l.split(' ').any(|f| f == "name=auth-redis-tracking"))
        .filter_map(|l| {
            l.split(' ')
                .find_map(|f| f.strip_prefix("id="))
                .map(str::to_owned)
        })
        .collect()
}

/// Kills both backends' tracking connections (`CLIENT KILL`): invalidations sent meanwhile
/// are lost to them.
async fn kill_tracking(redis: &TestRedis) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let ids = tracking_clients(redis).await;
    assert_eq!(ids.len(), 2, "one tracking connection per backend");
    for id in &ids {
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async::<()>(&mut raw)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_reads_cost_no_round_trip() {
    let redis = TestRedis::spawn().await;
    let prefix = auth_tests::unique_prefix();
    let (a, b) = (backend(&redis, &prefix).await, backend(&redis, &prefix).await);
    a.set("s1", b"v1", &keys("x"), TTL).await.unwrap();
    assert_eq!(until_cached(&redis, &b, "s1").await, b"v1");
    let before = hgets(&redis).await;
    for _ in 0..100 {
        assert_eq!(b.get("s1").await.unwrap().as_deref(), Some(&b"v1"[..]));
    }
    assert_eq!(hgets(&redis).await, before, "100 reads, no HGET");
    // An unknown id is never cached: it always asks Redis.
    assert_eq!(b.get("nope").await.unwrap(), None);
    assert_eq!(b.get("nope").await.unwrap(), None);
    assert_eq!(hgets(&redis).await, before + 2);
    // With the cache off, every read asks.
    let off = RedisBackend::builder(redis.url())
        .key_prefix(&prefix)
        .local_cache(false)
        .connect()
        .await
        .unwrap();
    for _ in 0..3 {
        off.get("s1").await.unwrap();
    }
    assert_eq!(hgets(&redis).await, before + 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_one_instance_reach_the_others_cache_within_the_bound() {
    let redis = TestRedis::spawn().await;
    let prefix = auth_tests::unique_prefix();
    let (a, b) = (backend(&redis, &prefix).await, backend(&redis, &prefix).await);

    // An update (a refresh or a rolling touch on A): B re-reads.
    a.set("s1", b"v1", &keys("x"), TTL).await.unwrap();
    until_cached(&redis, &b, "s1").await;
    assert!(a.update("s1", b"v2", &keys("x"), TTL).await.unwrap());
    let took = until(&Some(b"v2".to_vec()), || async { b.get("s1").await.unwrap() }).await;
    assert!(took < BOUND, "update seen after {took:?}");
    // A writer reads its own write at once.
    assert_eq!(a.get("s1").await.unwrap().as_deref(), Some(&b"v2"[..]));

    // A logout (delete on A): B refuses.
    until_cached(&redis, &b, "s1").await;
    a.delete("s1").await.unwrap();
    let took = until(&None, || async { b.get("s1").await.unwrap() }).await;
    assert!(took < BOUND, "delete seen after {took:?}");

    // A back-channel logout (delete_by on A): B refuses.
    a.set("s2", b"v", &keys("y"), TTL).await.unwrap();
    until_cached(&redis, &b, "s2").await;
    assert_eq!(a.delete_by(&LogoutKey::Sid("y".into())).await.unwrap(), 1);
    let took = until(&None, || async { b.get("s2").await.unwrap() }).await;
    assert!(took < BOUND, "delete_by seen after {took:?}");

    // A write by anything else (here redis-cli's DEL) too.
    a.set("s3", b"v", &keys("z"), TTL).await.unwrap();
    until_cached(&redis, &b, "s3").await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    // The record's key, whatever the layout: the one hash under this prefix.
    let mut record = None;
    for key in redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async::<Vec<String>>(&mut raw)
        .await
        .unwrap()
    {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut raw).await.unwrap();
        if kind == "hash" {
            assert!(record.replace(key).is_none(), "one session record");
        }
    }
    redis::cmd("DEL")
        .arg(record.expect("the session record"))
        .query_async::<()>(&mut raw)
        .await
        .unwrap();
    let took = until(&None, || async { b.get("s3").await.unwrap() }).await;
    assert!(took < BOUND, "external delete seen after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_recorded_on_one_instance_reaches_the_others_list_within_the_bound() {
    let redis = TestRedis::spawn().await;
    let prefix = auth_tests::unique_prefix();
    let (a, b) = (backend(&redis, &prefix).await, backend(&redis, &prefix).await);
    // B loads its copy of the (empty) list, then answers from memory.
    assert_eq!(b.logout_time(&[LogoutKey::Sid("x".into())]).await.unwrap(), None);
    until(&Some(None), || async { b.logout_time_at_hand("x", Some("u")) }).await;

    a.record_logout(&LogoutKey::Sub("u".into()), 1_700_000_000_000, TTL)
        .await
        .unwrap();
    let started = Instant::now();
    // B's copy stops answering "not logged out" at once; asked again, it has the logout.
    loop {
        match b.logout_time_at_hand("x", Some("u")) {
            Some(None) => assert!(started.elapsed() < BOUND, "copy still current after {BOUND:?}"),
            Some(Some(at)) => {
                assert_eq!(at, 1_700_000_000_000);
                break;
            }
            None => {
                let keys = [LogoutKey::Sid("x".into()), LogoutKey::Sub("u".into())];
                assert_eq!(b.logout_time(&keys).await.unwrap(), Some(1_700_000_000_000));
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_invalidation_channel_never_serves_a_revoked_session() {
    let redis = TestRedis::spawn().await;
    let prefix = auth_tests::unique_prefix();
    let (a, b) = (backend(&redis, &prefix).await, backend(&redis, &prefix).await);
    a.set("s1", b"v1", &keys("x"), TTL).await.unwrap();
    until_cached(&redis, &b, "s1").await;

    // Kill the tracking connections, then revoke the session: the invalidation is lost.
    kill_tracking(&redis).await;
    a.delete("s1").await.unwrap();
    tokio::time::sleep(BOUND).await;
    let before = hgets(&redis).await;
    assert_eq!(
        b.get("s1").await.unwrap(),
        None,
        "the revoked session is not served"
    );
    assert_eq!(hgets(&redis).await, before + 1, "the read went to Redis");

    // The tracking comes back by itself and the cache serves again.
    until(&2, || async { tracking_clients(&redis).await.len() }).await;
    a.set("s2", b"v2", &keys("y"), TTL).await.unwrap();
    assert_eq!(until_cached(&redis, &b, "s2").await, b"v2");
    assert_eq!(
        b.get("s1").await.unwrap(),
        None,
        "nothing from before the loss came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_redis_never_serves_sessions_it_lost() {
    let mut redis = TestRedis::spawn().await;
    let prefix = auth_tests::unique_prefix();
    let (a, b) = (backend(&redis, &prefix).await, backend(&redis, &prefix).await);
    a.set("s1", b"v1", &keys("x"), TTL).await.unwrap();
    until_cached(&redis, &b, "s1").await;
    a.record_logout(&LogoutKey::Sid("old".into()), 1, TTL)
        .await
        .unwrap();
    assert_eq!(
        b.logout_time(&[LogoutKey::Sid("old".into())]).await.unwrap(),
        Some(1)
    );

    // Restarted empty: the session and the logout list are gone from Redis.
    redis.restart().await;
    tokio::time::sleep(BOUND).await;
    // The read goes to Redis: the first one on the broken connection may fail (a 503 for the
    // request), the next finds nothing; never the cached record.
    let read = b.get("s1").await;
    assert!(
        !matches!(read, Ok(Some(_))),
        "a lost session is not served from memory: {read:?}"
    );
    until(&true, || async { matches!(b.get("s1").await, Ok(None)) }).await;
    assert_eq!(
        b.logout_time_at_hand("old", None),
        None,
        "the list copy is not trusted after the loss"
    );

    // Recovery without a restart of the app: writes, reads and the cache work again.
    until(&true, || async {
        a.set("s2", b"v2", &keys("y"), TTL).await.is_ok()
    })
    .await;
    assert_eq!(until_cached(&redis, &b, "s2").await, b"v2");
    assert_eq!(
        b.get("s1").await.unwrap(),
        None,
        "nothing from before the loss came back"
    );
}

/// Two instances of the Redis example (server-side sessions) behind one cookie domain, and a
/// login on the first, served by the second: the apps, the browser, and the session's
/// `Cookie` header.
async fn two_server_side_instances(
    redis: &TestRedis,
    backchannel: bool,
) -> (TestApp, auth_tests::app::Instance, reqwest::Client, String) {
    let prefix = auth_tests::unique_prefix();
    let first = backend(redis, &prefix).await;
    let second = backend(redis, &prefix).await;
    let app = TestApp::start_with(AppConfig {
        client: Box::new(move |b| b.session_backend(first).server_side_sessions(true)),
        backchannel,
        ..AppConfig::default()
    })
    .await;
    let other = app
        .another_instance(move |b| b.session_backend(second).server_side_sessions(true))
        .await;
    let http = TestApp::browser();
    let callback = app.login(&http, "", "alice").await;
    let cookie = session_cookie_header(&callback);
    assert!(!cookie.is_empty(), "a session cookie");
    // The other instance serves it (and so holds it in its cache).
    for _ in 0..3 {
        assert_eq!(profile(&other.base, &cookie).await, 200);
    }
    (app, other, http, cookie)
}

/// `GET {base}/profile` with exactly `cookie` (a client that keeps no cookies, so that a
/// logout's cleared cookie does not hide what the server decides): the status.
async fn profile(base: &str, cookie: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/profile"))
        .header(COOKIE, cookie)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls `/profile` on `base` with `cookie` until it is refused; how long that took.
async fn until_refused(base: &str, cookie: &str) -> Duration {
    until(&401, || profile(base, cookie)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_instance_is_refused_by_the_other_at_once() {
    let redis = TestRedis::start().await;
    let (app, other, http, cookie) = two_server_side_instances(&redis, false).await;
    let logout = http.get(app.url("/auth/logout")).send().await.unwrap();
    assert_eq!(logout.status(), 302);
    let took = until_refused(&other.base, &cookie).await;
    assert!(took < BOUND, "refused after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_back_channel_logout_on_one_instance_is_refused_by_the_other_at_once() {
    let redis = TestRedis::start().await;
    let (app, other, http, cookie) = two_server_side_instances(&redis, true).await;
    let end = format!(
        "{}?client_id={CONF_BASIC_ID}&post_logout_redirect_uri={}",
        app.idp.end_session_endpoint(),
        url::form_urlencoded::byte_serialize(app.url("/").as_bytes()).collect::<String>()
    );
    app.idp.end_session(&http, &end).await;
    let took = until_refused(&other.base, &cookie).await;
    assert!(took < BOUND, "refused after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_while_the_invalidation_channel_is_down_is_still_refused_by_the_other() {
    let redis = TestRedis::spawn().await;
    let (app, other, http, cookie) = two_server_side_instances(&redis, false).await;
    // Both instances lose their tracking connections; the logout's invalidation is lost.
    kill_tracking(&redis).await;
    let logout = http.get(app.url("/auth/logout")).send().await.unwrap();
    assert_eq!(logout.status(), 302);
    let took = until_refused(&other.base, &cookie).await;
    assert!(took < BOUND, "refused after {took:?}");
    // And it stays refused once the tracking is back.
    until(&2, || async { tracking_clients(&redis).await.len() }).await;
    assert_eq!(profile(&other.base, &cookie).await, 401);
}
