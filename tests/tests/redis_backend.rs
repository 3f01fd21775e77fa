//! `RedisBackend` against a real Redis: the `SessionBackend` contract, the data layout,
//! concurrency, and failures (unreachable, hung, killed and restarted servers).
//!
//! Uses the server named by `REDIS_URL` (each test under its own key prefix), or a
//! `redis-server` per test; the failure tests always spawn servers of their own.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::StoreError;
use auth_core::store::{LogoutKey, SessionBackend, SessionKeys};
use auth_redis::RedisBackend;
use auth_tests::{TestRedis, unique_prefix};
use redis::aio::MultiplexedConnection;

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

async fn raw(redis: &TestRedis) -> MultiplexedConnection {
    redis::Client::open(redis.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

async fn keys_with_prefix(conn: &mut MultiplexedConnection, pattern: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut cursor = 0_u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .expect("SCAN");
        out.extend(batch);
        if next == 0 {
            return out;
        }
        cursor = next;
    }
}

async fn pttl(conn: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(conn).await.expect("PTTL")
}

async fn smembers(conn: &mut MultiplexedConnection, key: &str) -> BTreeSet<String> {
    redis::cmd("SMEMBERS")
        .arg(key)
        .query_async(conn)
        .await
        .expect("SMEMBERS")
}

/// Checks the layout's invariants under `prefix`: every session hash has `v`, `sid`, `sub`
/// and a TTL, is a member of both its indexes, and those indexes live at least as long.
/// With `strict`, every index member is also a live session indexed under that key (no stale
/// members, which only expiry may leave). Returns the number of sessions.
async fn check_consistent(conn: &mut MultiplexedConnection, prefix: &str, strict: bool) -> usize {
    let sessions = keys_with_prefix(conn, &format!("{prefix}s:*")).await;
    let mut owners: BTreeMap<String, (String, String)> = BTreeMap::new();
    for key in &sessions {
        let id = key
            .strip_prefix(&format!("{prefix}s:"))
            .expect("session key")
            .to_owned();
        let fields: BTreeMap<String, Vec<u8>> = redis::cmd("HGETALL")
            .arg(key)
            .query_async(conn)
            .await
            .expect("HGETALL");
        let field = |name: &str| {
            String::from_utf8(
                fields
                    .get(name)
                    .unwrap_or_else(|| panic!("{key} lacks {name}"))
                    .clone(),
            )
            .expect("utf-8 field")
        };
        assert!(fields.contains_key("v"), "{key} lacks v");
        let (s, u) = (field("sid"), field("sub"));
        let ttl = pttl(conn, key).await;
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
        for index in [format!("{prefix}sid:{s}"), format!("{prefix}sub:{u}")] {
            assert!(
                smembers(conn, &index).await.contains(&id),
                "{id} missing from {index}"
            );
            let index_ttl = pttl(conn, &index).await;
            assert!(
                index_ttl + 50 >= ttl,
                "{index} expires before {key}: {index_ttl} < {ttl}"
            );
        }
        owners.insert(id, (s, u));
    }
    if strict {
        for index in keys_with_prefix(conn, &format!("{prefix}s[iu][db]:*")).await {
            let (field, value) = if let Some(v) = index.strip_prefix(&format!("{prefix}sid:")) {
                (0, v.to_owned())
            } else {
                (
                    1,
                    index
                        .strip_prefix(&format!("{prefix}sub:"))
                        .expect("index key")
                        .to_owned(),
                )
            };
            for id in smembers(conn, &index).await {
                let owner = owners
                    .get(&id)
                    .unwrap_or_else(|| panic!("stale member {id} in {index}"));
                let indexed = if field == 0 { &owner.0 } else { &owner.1 };
                assert_eq!(indexed, &value, "{id} is in {index} but indexed under {indexed}");
            }
        }
    }
    sessions.len()
}

#[tokio::test]
async fn set_get_round_trip_and_ttl_expiry() {
    let redis = TestRedis::start().await;
    let b = backend(&redis).await;
    let mut conn = raw(&redis).await;

    assert_eq!(b.get("nope").await.unwrap(), None);
    b.set("a", b"hello", &keys("s1", "u1"), HOUR).await.unwrap();
    assert_eq!(b.get("a").await.unwrap().as_deref(), Some(&b"hello"[..]));
    // Overwrite keeps one value.
    b.set("a", b"world", &keys("s1", "u1"), HOUR).await.unwrap();
    assert_eq!(b.get("a").await.unwrap().as_deref(), Some(&b"world"[..]));
    // Empty values are values.
    b.set("empty", b"", &keys("s1", "u1"), HOUR).await.unwrap();
    assert_eq!(b.get("empty").await.unwrap(), Some(Vec::new()));

    b.set("short", b"bye", &keys("s2", "u2"), Duration::from_millis(300))
        .await
        .unwrap();
    let ttl = pttl(&mut conn, &format!("{}s:short", b.key_prefix())).await;
    assert!((1..=300).contains(&ttl), "PX ttl {ttl}");
    assert_eq!(b.get("short").await.unwrap().as_deref(), Some(&b"bye"[..]));
    assert_eq!(check_consistent(&mut conn, b.key_prefix(), true).await, 3);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        b.get("short").await.unwrap(),
        None,
        "expired session still readable"
    );
    assert_eq!(b.get("a").await.unwrap().as_deref(), Some(&b"world"[..]));
    // The expired session's indexes expired with it (they never outlive the longest session).
    assert!(
        smembers(&mut conn, &format!("{}sid:s2", b.key_prefix()))
            .await
            .is_empty()
    );
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

    let all = keys_with_prefix(&mut conn, &format!("{p}*")).await;
    let expected: BTreeSet<String> = [
        "s:id1",
        "sid:sid-1",
        "sub:user|1",
        "lo:sid:sid-9",
        "lo:sub:user|9",
        "lo:all",
        "lo:ver",
        "once:jti-1",
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
    assert_eq!(kind(format!("{p}s:id1")).await, "hash");
    assert_eq!(kind(format!("{p}sid:sid-1")).await, "set");
    assert_eq!(kind(format!("{p}lo:sid:sid-9")).await, "string");
    let fields: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{p}s:id1"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(fields["v"], "sealed");
    assert_eq!(fields["sid"], "sid-1");
    assert_eq!(fields["sub"], "user|1");
    let at: String = redis::cmd("GET")
        .arg(format!("{p}lo:sub:user|9"))
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

    assert_eq!(redis.flush_prefix(&p).await, 8);
    assert_eq!(redis.flush_prefix(other.key_prefix()).await, 1);
}

#[tokio::test]
async fn delete_removes_value_and_index_entries() {
    let redis = TestRedis::start().await;
    let b = backend(&redis).await;
    let mut conn = raw(&redis).await;

    b.delete("absent").await.unwrap();
    b.set("a", b"1", &keys("s", "u"), HOUR).await.unwrap();
    b.set("b", b"2", &keys("s", "u"), HOUR).await.unwrap();
    b.delete("a").await.unwrap();
    assert_eq!(b.get("a").await.unwrap(), None);
    assert_eq!(b.get("b").await.unwrap().as_deref(), Some(&b"2"[..]));
    b.delete("a").await.unwrap();
    assert_eq!(check_consistent(&mut conn, b.key_prefix(), true).await, 1);
    assert_eq!(b.delete_by(&sub("u")).await.unwrap(), 1);
}

#[tokio::test]
async fn delete_by_sid_and_sub_counts_and_spares_others() {
    let redis = TestRedis::start().await;
    let b = backend(&redis).await;
    let mut conn = raw(&redis).await;

    b.set("a1", b"x", &keys("s1", "alice"), HOUR).await.unwrap();
    b.set("a2", b"x", &keys("s2", "alice"), HOUR).await.unwrap();
    b.set("a3", b"x", &keys("s2", "alice"), HOUR).await.unwrap();
    b.set("b1", b"x", &keys("s3", "bob"), HOUR).await.unwrap();
    b.set("b2", b"x", &keys("s4", "bob"), HOUR).await.unwrap();

    assert_eq!(b.delete_by(&sid("s2")).await.unwrap(), 2);
    assert_eq!(b.get("a2").await.unwrap(), None);
    assert_eq!(b.get("a3").await.unwrap(), None);
    assert!(b.get("a1").await.unwrap().is_some());
    assert!(b.get("b1").await.unwrap().is_some());
    assert_eq!(check_consistent(&mut conn, b.key_prefix(), true).await, 3);

    assert_eq!(b.delete_by(&sub("alice")).await.unwrap(), 1);
    assert_eq!(b.get("a1").await.unwrap(), None);
    assert_eq!(b.delete_by(&sub("alice")).await.unwrap(), 0);
    assert_eq!(b.delete_by(&sid("s1")).await.unwrap(), 0);
    assert_eq!(b.delete_by(&sid("never")).await.unwrap(), 0);
    assert!(b.get("b1").await.unwrap().is_some());
    assert!(b.get("b2").await.unwrap().is_some());
    assert_eq!(check_consistent(&mut conn, b.key_prefix(), true).await, 2);

    assert_eq!(b.delete_by(&sub("bob")).await.unwrap(), 2);
    let left = keys_with_prefix(&mut conn, &format!("{}*", b.key_prefix())).await;
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test]
async fn delete_by_ignores_expired_and_moved_sessions() {
    let redis = TestRedis::start().await;
    let b = backend(&redis).await;
    let mut conn = raw(&redis).await;

    // Expired sessions leave members in a longer-lived index; they are not counted.
    b.set("long", b"x", &keys("s-long", "carol"), HOUR).await.unwrap();
    b.set(
        "short",
        b"x",
        &keys("s-short", "carol"),
        Duration::from_millis(200),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    check_consistent(&mut conn, b.key_prefix(), false).await;
    assert_eq!(b.delete_by(&sub("carol")).await.unwrap(), 1);

    // Writing an id again under other keys moves it between indexes.
    b.set("m", b"v1", &keys("old-sid", "dave"), HOUR).await.unwrap();
    b.set("m", b"v2", &keys("new-sid", "erin"), HOUR).await.unwrap();
    assert_eq!(check_consistent(&mut conn, b.key_prefix(), true).await, 1);
    assert_eq!(b.delete_by(&sid("old-sid")).await.unwrap(), 0);
    assert_eq!(b.delete_by(&sub("dave")).await.unwrap(), 0);
    assert_eq!(b.get("m").await.unwrap().as_deref(), Some(&b"v2"[..]));
    assert_eq!(b.delete_by(&sid("new-sid")).await.unwrap(), 1);
    // Deleting by sid also took the id out of its sub index.
    assert!(
        smembers(&mut conn, &format!("{}sub:erin", b.key_prefix()))
            .await
            .is_empty()
    );
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
async fn logout_times_keep_the_latest_and_expire() {
    let redis = TestRedis::start().await;
    let b = backend(&redis).await;

    assert_eq!(b.logout_time(&[]).await.unwrap(), None);
    assert_eq!(b.logout_time(&[sid("s"), sub("u")]).await.unwrap(), None);

    b.record_logout(&sid("s"), 100, HOUR).await.unwrap();
    assert_eq!(b.logout_time(&[sid("s")]).await.unwrap(), Some(100));
    b.record_logout(&sub("u"), 200, HOUR).await.unwrap();
    assert_eq!(b.logout_time(&[sid("s"), sub("u")]).await.unwrap(), Some(200));
    assert_eq!(b.logout_time(&[sid("other"), sid("s")]).await.unwrap(), Some(100));
    // The same name as sid and as sub are different keys.
    assert_eq!(b.logout_time(&[sub("s")]).await.unwrap(), None);

    // Recording an earlier time keeps the later one; a later one replaces it.
    b.record_logout(&sid("s"), 50, HOUR).await.unwrap();
    assert_eq!(b.logout_time(&[sid("s")]).await.unwrap(), Some(100));
    b.record_logout(&sid("s"), 300, HOUR).await.unwrap();
    assert_eq!(b.logout_time(&[sid("s"), sub("u")]).await.unwrap(), Some(300));
    // Exact comparison across digit counts and at the top of the range.
    b.record_logout(&sub("big"), 999, HOUR).await.unwrap();
    b.record_logout(&sub("big"), 1000, HOUR).await.unwrap();
    b.record_logout(&sub("big"), 998, HOUR).await.unwrap();
    assert_eq!(b.logout_time(&[sub("big")]).await.unwrap(), Some(1000));
    b.record_logout(&sub("big"), u64::MAX, HOUR).await.unwrap();
    b.record_logout(&sub("big"), u64::MAX - 1, HOUR).await.unwrap();
    assert_eq!(b.logout_time(&[sub("big")]).await.unwrap(), Some(u64::MAX));

    b.record_logout(&sid("brief"), 5000, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(
        b.logout_time(&[sid("brief"), sid("s")]).await.unwrap(),
        Some(5000)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.logout_time(&[sid("brief")]).await.unwrap(), None);
    assert_eq!(b.logout_time(&[sid("brief"), sid("s")]).await.unwrap(), Some(300));
}

#[tokio::test]
async fn remember_once_is_true_once_then_expires() {
    let redis = TestRedis::start().await;
    let b = backend(&redis).await;

    assert!(b.remember_once("jti-a", HOUR).await.unwrap());
    assert!(!b.remember_once("jti-a", HOUR).await.unwrap());
    assert!(!b.remember_once("jti-a", HOUR).await.unwrap());
    assert!(b.remember_once("jti-b", HOUR).await.unwrap());

    assert!(
        b.remember_once("brief", Duration::from_millis(200))
            .await
            .unwrap()
    );
    assert!(
        !b.remember_once("brief", Duration::from_millis(200))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(b.remember_once("brief", HOUR).await.unwrap());

    // Concurrent callers: exactly one wins.
    let b = Arc::new(b);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move { b.remember_once("race", HOUR).await.unwrap() })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn large_binary_values_round_trip() {
    let redis = TestRedis::start().await;
    let b = backend(&redis).await;

    let value: Vec<u8> = (0..200 * 1024)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(std::str::from_utf8(&value).is_err(), "want non-UTF-8 bytes");
    b.set("big", &value, &keys("s", "u"), HOUR).await.unwrap();
    assert_eq!(b.get("big").await.unwrap().as_deref(), Some(&value[..]));
    let mut bigger = value.clone();
    bigger.extend_from_slice(&value);
    b.set("big", &bigger, &keys("s", "u"), HOUR).await.unwrap();
    assert_eq!(b.get("big").await.unwrap().map(|v| v.len()), Some(bigger.len()));
    assert_eq!(b.delete_by(&sid("s")).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sets_from_fifty_tasks() {
    let redis = TestRedis::start().await;
    let b = Arc::new(backend(&redis).await);
    let mut conn = raw(&redis).await;

    // 50 sessions of one user, written at once.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let b = b.clone();
            tokio::spawn(async move {
                let value = format!("session {i}").repeat(100);
                b.set(
                    &format!("id{i}"),
                    value.as_bytes(),
                    &keys(&format!("sid{}", i % 5), "grace"),
                    HOUR,
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for i in 0..50 {
        let v = b.get(&format!("id{i}")).await.unwrap().expect("written");
        assert_eq!(v, format!("session {i}").repeat(100).into_bytes());
    }
    assert_eq!(
        smembers(&mut conn, &format!("{}sub:grace", b.key_prefix()))
            .await
            .len(),
        50
    );
    assert_eq!(check_consistent(&mut conn, b.key_prefix(), true).await, 50);

    // 50 writers of one id under different keys: one wins, and the indexes agree with it.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let b = b.clone();
            tokio::spawn(async move {
                b.set(
                    "contended",
                    format!("{i}").as_bytes(),
                    &keys(&format!("c{i}"), &format!("cu{i}")),
                    HOUR,
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(check_consistent(&mut conn, b.key_prefix(), true).await, 51);
    let winner: String = String::from_utf8(b.get("contended").await.unwrap().unwrap()).unwrap();
    assert_eq!(b.delete_by(&sid(&format!("c{winner}"))).await.unwrap(), 1);

    // Writers racing with delete_by of the same user: whatever interleaving, the indexes stay
    // consistent and every session is either deleted or still indexed.
    let writers: Vec<_> = (0..50)
        .map(|i| {
            let b = b.clone();
            tokio::spawn(async move { b.set(&format!("r{i}"), b"x", &keys("rs", "racer"), HOUR).await })
        })
        .collect();
    let deleters: Vec<_> = (0..5)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move { b.delete_by(&sub("racer")).await })
        })
        .collect();
    let mut deleted = 0;
    for t in writers {
        t.await.unwrap().unwrap();
    }
    for t in deleters {
        deleted += t.await.unwrap().unwrap();
    }
    let mut remaining = 0;
    for i in 0..50 {
        remaining += usize::from(b.get(&format!("r{i}")).await.unwrap().is_some());
    }
    assert_eq!(
        deleted + remaining,
        50,
        "deleted {deleted}, remaining {remaining}"
    );
    check_consistent(&mut conn, b.key_prefix(), true).await;
    assert_eq!(b.delete_by(&sid("rs")).await.unwrap(), remaining);
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

/// Issue 10 item 4: `update` writes only while the session exists, atomically; a deleted,
/// logged-out or expired session is reported gone and not recreated.
#[tokio::test]
async fn update_never_recreates_a_deleted_session() {
    let redis = TestRedis::start().await;
    let b = backend(&redis).await;
    let p = b.key_prefix().to_owned();
    let mut conn = raw(&redis).await;

    assert!(!b.update("nope", b"v", &keys("s", "u"), HOUR).await.unwrap());
    assert_eq!(b.get("nope").await.unwrap(), None);
    assert!(
        keys_with_prefix(&mut conn, &format!("{p}*")).await.is_empty(),
        "nothing written"
    );

    b.set("id1", b"one", &keys("s1", "u1"), HOUR).await.unwrap();
    assert!(b.update("id1", b"two", &keys("s2", "u1"), HOUR).await.unwrap());
    assert_eq!(b.get("id1").await.unwrap().as_deref(), Some(&b"two"[..]));
    // Moved between indexes like `set`.
    assert_eq!(b.delete_by(&sid("s1")).await.unwrap(), 0);
    assert_eq!(check_consistent(&mut conn, &p, true).await, 1);

    b.delete("id1").await.unwrap();
    assert!(!b.update("id1", b"three", &keys("s2", "u1"), HOUR).await.unwrap());
    assert_eq!(b.get("id1").await.unwrap(), None);

    b.set("id2", b"one", &keys("s3", "u3"), HOUR).await.unwrap();
    assert_eq!(b.delete_by(&sub("u3")).await.unwrap(), 1);
    assert!(!b.update("id2", b"two", &keys("s3", "u3"), HOUR).await.unwrap());
    assert_eq!(b.get("id2").await.unwrap(), None);

    b.set("id3", b"one", &keys("s4", "u4"), Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(!b.update("id3", b"two", &keys("s4", "u4"), HOUR).await.unwrap());
    assert_eq!(b.get("id3").await.unwrap(), None);
    assert_eq!(check_consistent(&mut conn, &p, false).await, 0);
    redis.flush_prefix(&p).await;
}

/// Issue 10 item 6: a remembered key can be forgotten, so a failed back-channel logout can be
/// delivered again.
#[tokio::test]
async fn forget_once_releases_a_remembered_key() {
    let redis = TestRedis::start().await;
    let b = backend(&redis).await;
    assert!(b.remember_once("jti-f", HOUR).await.unwrap());
    assert!(!b.remember_once("jti-f", HOUR).await.unwrap());
    b.forget_once("jti-f").await.unwrap();
    assert!(b.remember_once("jti-f", HOUR).await.unwrap());
    b.forget_once("never-seen").await.unwrap();
    redis.flush_prefix(b.key_prefix()).await;
}

/// Issue 10 item 7: with `logout_list_refresh`, the logout list is checked in memory: own
/// logouts at once, other instances' within the refresh interval; without it there is no
/// in-process answer (every check asks Redis).
#[tokio::test]
async fn logout_list_copy_is_local_and_picks_up_other_instances() {
    let redis = TestRedis::start().await;
    let prefix = unique_prefix();
    let refresh = Duration::from_millis(300);
    let with_copy = |prefix: String| {
        RedisBackend::builder(redis.url())
            .key_prefix(prefix)
            .logout_list_refresh(refresh)
            .connect()
    };
    let a = with_copy(prefix.clone()).await.unwrap();
    let b = with_copy(prefix.clone()).await.unwrap();
    let plain = RedisBackend::builder(redis.url())
        .key_prefix(prefix.clone())
        .connect()
        .await
        .unwrap();

    // Not loaded yet: no answer at hand; the first read loads the (empty) list.
    assert_eq!(a.logout_time_at_hand("s1", Some("u1")), None);
    assert_eq!(a.logout_time(&[sid("s1")]).await.unwrap(), None);
    assert_eq!(a.logout_time_at_hand("s1", Some("u1")), Some(None));
    assert_eq!(b.logout_time(&[sid("s1")]).await.unwrap(), None);
    assert_eq!(plain.logout_time_at_hand("s1", None), None, "off by default");

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
