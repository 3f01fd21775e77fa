//! `RedisBackend` against a real Redis, what only Redis has: the data layout, index TTLs,
//! credentials, failures (unreachable, hung, killed and restarted servers) and the in-process
//! copy of the logout list. The `SessionBackend` contract is tested for every backend in
//! `backend_suite.rs`.
//!
//! Uses the server named by `REDIS_URL` (each test under its own key prefix), or a
//! `redis-server` per test; the failure tests always spawn servers of their own.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use auth_core::StoreError;
use auth_core::store::{LogoutKey, SessionBackend, SessionKeys};
use auth_redis::RedisBackend;
use auth_tests::redis::layout::{check_consistent, keys_with_prefix, pttl, raw};
use auth_tests::{TestRedis, unique_prefix};

const HOUR: Duration = Duration::from_secs(3600);

fn keys(sid: &str, sub: &str) -> SessionKeys {
    SessionKeys {
        sid: sid.to_owned(),
        sub: sub.to_owned(),
    }
}

fn sid(s: &str) -> LogoutKey {
    LogoutKey::Sid(s.to_owned())
}

fn sub(s: &str) -> LogoutKey {
    LogoutKey::Sub(s.to_owned())
}

async fn backend(redis: &TestRedis) -> RedisBackend {
    RedisBackend::builder(redis.url())
        .key_prefix(unique_prefix())
        .connect()
        .await
        .expect("connect to the test Redis")
}

#[tokio::test]
async fn data_layout_is_as_documented() {
    let redis = TestRedis::start().await;
    let b = backend(&redis).await;
    let p = b.key_prefix().to_owned();
    let mut conn = raw(&redis).await;

    b.set("id1", b"sealed", &keys("sid-1", "user|1"), HOUR)
        .await
        .unwrap();
    b.record_logout(&sid("sid-9"), 1_700_000_000, HOUR).await.unwrap();
    b.record_logout(&sub("user|9"), 1_700_000_001, HOUR)
        .await
        .unwrap();
    assert!(b.remember_once("jti-1", HOUR).await.unwrap());
    assert!(
        b.acquire_refresh_lease("id1", "k1", HOUR)
            .await
            .unwrap()
            .is_some()
    );

    // Hash tags: a session's record, leases and lease counter share the id's slot; the logout
    // list's keys share one slot of their own.
    let all = keys_with_prefix(&mut conn, &format!("{p}*")).await;
    let lo = format!("{{{p}lo}}:");
    let expected: BTreeSet<String> = [
        "s:{id1}".to_owned(),
        "sid:sid-1".to_owned(),
        "sub:user|1".to_owned(),
        "lease:{id1}:k1".to_owned(),
        "lease-seq:{id1}".to_owned(),
        format!("{lo}sid:sid-9"),
        format!("{lo}sub:user|9"),
        format!("{lo}all"),
        format!("{lo}ver"),
        "once:jti-1".to_owned(),
    ]
    .iter()
    .map(|k| format!("{p}{k}"))
    .collect();
    assert_eq!(all, expected);

    let kind = |k: String| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("TYPE")
                .arg(k)
                .query_async::<String>(&mut conn)
                .await
                .unwrap()
        }
    };
    assert_eq!(kind(format!("{p}s:{{id1}}")).await, "hash");
    assert_eq!(kind(format!("{p}sid:sid-1")).await, "set");
    assert_eq!(kind(format!("{p}{lo}sid:sid-9")).await, "string");
    let fields: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{p}s:{{id1}}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(fields["v"], "sealed");
    assert_eq!(fields["sid"], "sid-1");
    assert_eq!(fields["sub"], "user|1");
    let at: String = redis::cmd("GET")
        .arg(format!("{p}{lo}sub:user|9"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(at, "1700000001");
    for key in &expected {
        let ttl = pttl(&mut conn, key).await;
        assert!(ttl > 3_500_000 && ttl <= 3_600_000, "{key} ttl {ttl}");
    }

    // Another prefix on the same server sees none of it.
    let other = backend(&redis).await;
    assert_eq!(other.get("id1").await.unwrap(), None);
    assert_eq!(other.delete_by(&sub("user|1")).await.unwrap(), 0);
    assert_eq!(other.logout_time(&[sid("sid-9")]).await.unwrap(), None);
    assert!(other.remember_once("jti-1", HOUR).await.unwrap());
    assert_eq!(b.get("id1").await.unwrap().as_deref(), Some(&b"sealed"[..]));

    assert_eq!(redis.flush_prefix(&p).await, 10);
    assert_eq!(redis.flush_prefix(other.key_prefix()).await, 1);
}

#[tokio::test]
async fn index_ttl_covers_the_longest_session() {
    let redis = TestRedis::start().await;
    let b = backend(&redis).await;
    let mut conn = raw(&redis).await;
    let index = format!("{}sub:frank", b.key_prefix());

    b.set("a", b"x", &keys("s1", "frank"), Duration::from_secs(100))
        .await
        .unwrap();
    let first = pttl(&mut conn, &index).await;
    assert!(first > 99_000, "{first}");
    b.set("b", b"x", &keys("s2", "frank"), Duration::from_secs(10))
        .await
        .unwrap();
    let after_shorter = pttl(&mut conn, &index).await;
    assert!(
        after_shorter > 99_000,
        "a shorter session shortened the index: {after_shorter}"
    );
    b.set("c", b"x", &keys("s3", "frank"), Duration::from_secs(1000))
        .await
        .unwrap();
    assert!(pttl(&mut conn, &index).await > 999_000);
    assert_eq!(check_consistent(&mut conn, b.key_prefix(), true).await, 3);
}

#[tokio::test]
async fn debug_shows_no_credentials() {
    let mut redis = TestRedis::spawn().await;
    let mut conn = raw(&redis).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("s3cret-pass")
        .query_async(&mut conn)
        .await
        .unwrap();
    let port = redis.port().unwrap();
    let b = RedisBackend::connect(&format!("redis://:s3cret-pass@127.0.0.1:{port}/2"))
        .await
        .unwrap();
    let shown = format!("{b:?}");
    assert!(shown.contains(&format!("127.0.0.1:{port}/2")), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
    b.set("x", b"y", &keys("s", "u"), HOUR).await.unwrap();

    // A wrong password is a typed error that names no password either.
    let err = RedisBackend::connect(&format!("redis://:wrong-pass@127.0.0.1:{port}"))
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("wrong-pass"), "{text}");
    redis.kill();
}

/// A loopback port bound (so no one else takes it) but not listening: connections to it are
/// refused while the socket lives.
fn closed_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

fn describe(err: &StoreError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[tokio::test]
async fn unreachable_redis_fails_fast() {
    let (_reserved, port) = closed_port();
    let started = Instant::now();
    let err = RedisBackend::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    eprintln!("connect to closed port: {took:?}: {}", describe(&err));
    assert!(took < Duration::from_secs(5), "took {took:?}");

    let err = RedisBackend::connect("not-a-url").await.unwrap_err();
    assert!(describe(&err).contains("invalid Redis URL"), "{}", describe(&err));
}

#[tokio::test]
async fn hung_redis_times_out() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let err = RedisBackend::builder(format!("redis://127.0.0.1:{port}"))
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap_err();
    let took = started.elapsed();
    eprintln!("connect to hung server: {took:?}: {}", describe(&err));
    assert!(took < Duration::from_secs(3), "took {took:?}");
    holder.abort();

    // A server that stops answering after the connection is up: each command is bounded.
    let redis = TestRedis::spawn().await;
    let b = RedisBackend::builder(redis.url())
        .command_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    b.set("a", b"1", &keys("s", "u"), HOUR).await.unwrap();
    let mut conn = raw(&redis).await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("ALL")
        .query_async(&mut conn)
        .await
        .unwrap();
    let started = Instant::now();
    let err = b.get("a").await.unwrap_err();
    let took = started.elapsed();
    eprintln!("get on paused server: {took:?}: {}", describe(&err));
    assert!(took < Duration::from_millis(1000), "took {took:?}");
    assert!(
        describe(&err).contains("no answer within 300 ms"),
        "{}",
        describe(&err)
    );
    // Once the pause ends, the same backend works again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match b.get("a").await {
            Ok(v) => {
                assert_eq!(v.as_deref(), Some(&b"1"[..]));
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "no recovery: {}", describe(&e)),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn killed_redis_errors_then_recovers_on_restart() {
    let mut redis = TestRedis::spawn().await;
    let b = RedisBackend::builder(redis.url())
        .key_prefix(unique_prefix())
        .command_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    b.set("a", b"1", &keys("s", "u"), HOUR).await.unwrap();
    assert!(b.get("a").await.unwrap().is_some());

    redis.kill();
    // The local cache may still answer a read for up to its 80 ms freshness bound after Redis
    // died (nothing can change the record meanwhile); past it, every operation goes to Redis.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut slowest = Duration::ZERO;
    for round in 0..3 {
        let started = Instant::now();
        let results = [
            b.get("a").await.err(),
            b.set("b", b"2", &keys("s", "u"), HOUR).await.err(),
            b.delete_by(&sub("u")).await.err(),
            b.logout_time(&[sid("s")]).await.err(),
            b.remember_once("k", HOUR).await.err(),
        ];
        for (i, err) in results.iter().enumerate() {
            let err = err
                .as_ref()
                .unwrap_or_else(|| panic!("op {i} succeeded on a dead server (round {round})"));
            if round == 0 && i == 0 {
                eprintln!("first op after kill: {}", describe(err));
            }
        }
        let took = started.elapsed();
        eprintln!("round {round}: 5 ops on a dead server failed in {took:?}");
        slowest = slowest.max(took);
    }
    assert!(slowest < Duration::from_secs(6), "5 ops took {slowest:?}");

    redis.restart().await;
    let started = Instant::now();
    loop {
        match b.ping().await {
            Ok(()) => break,
            Err(e) => {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "no reconnect: {}",
                    describe(&e)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    eprintln!("reconnected {:?} after restart", started.elapsed());
    // Nothing persisted; the backend works again.
    assert_eq!(b.get("a").await.unwrap(), None);
    b.set("c", b"3", &keys("s", "u"), HOUR).await.unwrap();
    assert_eq!(b.get("c").await.unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(b.delete_by(&sub("u")).await.unwrap(), 1);
}

/// Issue 10 item 7: with the local cache off and `logout_list_refresh`, the logout list is
/// checked in memory: own logouts at once, other instances' within the refresh interval;
/// without either there is no in-process answer (every check asks Redis). (With the local
/// cache, on by default, the copy follows Redis's pushes: `redis_invalidation.rs`.)
#[tokio::test]
async fn logout_list_copy_is_local_and_picks_up_other_instances() {
    let redis = TestRedis::start().await;
    let prefix = unique_prefix();
    let refresh = Duration::from_millis(300);
    let with_copy = |prefix: String| {
        RedisBackend::builder(redis.url())
            .key_prefix(prefix)
            .local_cache(false)
            .logout_list_refresh(refresh)
            .connect()
    };
    let a = with_copy(prefix.clone()).await.unwrap();
    let b = with_copy(prefix.clone()).await.unwrap();
    let plain = RedisBackend::builder(redis.url())
        .key_prefix(prefix.clone())
        .local_cache(false)
        .connect()
        .await
        .unwrap();

    // Not loaded yet: no answer at hand; the first read loads the (empty) list.
    assert_eq!(a.logout_time_at_hand("s1", Some("u1")), None);
    assert_eq!(a.logout_time(&[sid("s1")]).await.unwrap(), None);
    assert_eq!(a.logout_time_at_hand("s1", Some("u1")), Some(None));
    assert_eq!(b.logout_time(&[sid("s1")]).await.unwrap(), None);
    assert_eq!(plain.logout_time_at_hand("s1", None), None, "no copy");

    // Own logouts are at hand at once, by sid and by sub, keeping the latest time.
    a.record_logout(&sid("s1"), 1_000, HOUR).await.unwrap();
    a.record_logout(&sub("u1"), 2_000, HOUR).await.unwrap();
    a.record_logout(&sid("s1"), 500, HOUR).await.unwrap();
    assert_eq!(a.logout_time_at_hand("s1", None), Some(Some(1_000)));
    assert_eq!(a.logout_time_at_hand("s1", Some("u1")), Some(Some(2_000)));
    assert_eq!(a.logout_time_at_hand("s2", Some("u2")), Some(None));
    assert_eq!(
        plain.logout_time(&[sid("s1"), sub("u1")]).await.unwrap(),
        Some(2_000)
    );

    // Another instance: unchanged within the refresh interval, then reloaded by a read.
    assert_eq!(b.logout_time_at_hand("s1", None), Some(None));
    tokio::time::sleep(refresh + Duration::from_millis(50)).await;
    assert_eq!(b.logout_time_at_hand("s1", None), None, "stale: ask");
    assert_eq!(b.logout_time(&[sid("s1"), sub("u1")]).await.unwrap(), Some(2_000));
    assert_eq!(b.logout_time_at_hand("s1", Some("u1")), Some(Some(2_000)));

    // A logout recorded by an instance without the copy is seen too (same layout).
    plain.record_logout(&sid("s9"), 9_000, HOUR).await.unwrap();
    tokio::time::sleep(refresh + Duration::from_millis(50)).await;
    assert_eq!(b.logout_time(&[sid("s9")]).await.unwrap(), Some(9_000));
    assert_eq!(b.logout_time_at_hand("s9", None), Some(Some(9_000)));

    // Entries expire from the copy with their TTL.
    assert_eq!(
        a.logout_time(&[sid("s9")]).await.unwrap(),
        Some(9_000),
        "a reloads too"
    );
    a.record_logout(&sid("brief"), 7, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(a.logout_time_at_hand("brief", None), Some(Some(7)));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(a.logout_time(&[sid("brief")]).await.unwrap(), None);
    assert_eq!(a.logout_time_at_hand("brief", None), Some(None));
    redis.flush_prefix(&prefix).await;
}
