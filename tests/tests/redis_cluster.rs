//! Issue 14 item 3: `RedisBackend` on a real Redis Cluster (three primaries started by the
//! harness, [`TestRedis::spawn_cluster`]) and its behaviour on an outage. The
//! `SessionBackend` contract suite runs against the cluster too: `backend_suite`'s
//! `redis_cluster::` tests. Here: what only a cluster shows (each session's keys in one slot,
//! sessions spread over the primaries, a login, refresh and back-channel logout through a real
//! app on the cluster), cluster connection errors, and a Redis outage seen through an app
//! (a typed 503, the session kept, and recovery without restarting the app).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use auth_core::store::{LogoutKey, SessionBackend, SessionKeys};
use auth_redis::{RedisBackend, RedisBackendBuilder};
use auth_tests::app::{AppConfig, TestApp, json_get};
use auth_tests::idp::{CONF_BASIC_ID, IdpOptions};
use auth_tests::redis::layout::cluster_keys;
use auth_tests::{TestRedis, TestRedisCluster, unique_prefix};
use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;

const HOUR: Duration = Duration::from_secs(3600);

fn keys(sid: &str, sub: &str) -> SessionKeys {
    SessionKeys {
        sid: sid.to_owned(),
        sub: sub.to_owned(),
    }
}

async fn cluster_backend(cluster: &TestRedisCluster) -> RedisBackend {
    RedisBackendBuilder::cluster(cluster.urls())
        .key_prefix(unique_prefix())
        .connect()
        .await
        .expect("connect to the test Redis Cluster")
}

/// `CLUSTER KEYSLOT key`, asked of node 0 (any node answers for any key).
async fn slot(cluster: &TestRedisCluster, key: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut cluster.node(0).await)
        .await
        .expect("CLUSTER KEYSLOT")
}

/// Every key a session writes (record, refresh lease, lease counter) is in the session id's
/// slot, and the logout list's keys share one slot; so every script runs in one slot. On the
/// old layout (`s:<id>`, `lease:<key>`, `lease:seq`, `lo:…` without hash tags) the fenced write
/// and the lease scripts failed with `CROSSSLOT`, and the keys were spread over the primaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sessions_keys_and_scripts_stay_in_one_slot() {
    let cluster = TestRedis::spawn_cluster().await;
    let b = cluster_backend(&cluster).await;
    let p = b.key_prefix().to_owned();
    let k = keys("sid-1", "user-1");

    b.set("sess-1", b"v0", &k, HOUR).await.unwrap();
    let token = b
        .acquire_refresh_lease("sess-1", "lease-1", HOUR)
        .await
        .unwrap()
        .expect("a free lease");
    assert!(
        b.update_fenced("sess-1", b"v1", &k, HOUR, "lease-1", token)
            .await
            .unwrap(),
        "the fenced write (record + lease in one script) runs"
    );
    assert_eq!(b.get("sess-1").await.unwrap().as_deref(), Some(&b"v1"[..]));
    b.record_logout(&LogoutKey::Sid("sid-9".into()), 1_000, HOUR)
        .await
        .unwrap();
    b.record_logout(&LogoutKey::Sub("user-9".into()), 2_000, HOUR)
        .await
        .unwrap();
    assert_eq!(
        b.logout_time(&[LogoutKey::Sid("sid-9".into()), LogoutKey::Sub("user-9".into())])
            .await
            .unwrap(),
        Some(2_000),
        "one MGET over the logout list's keys"
    );

    // The keys actually written, node by node.
    let written = cluster_keys(&cluster, &format!("{p}*")).await;
    let by_key: BTreeMap<&str, usize> = written.iter().map(|(n, k)| (k.as_str(), *n)).collect();
    let session: BTreeSet<&str> = by_key
        .keys()
        .copied()
        .filter(|k| k.contains("{sess-1}"))
        .collect();
    assert_eq!(
        session,
        BTreeSet::from([
            format!("{p}s:{{sess-1}}").as_str(),
            format!("{p}lease:{{sess-1}}:lease-1").as_str(),
            format!("{p}lease-seq:{{sess-1}}").as_str(),
        ]),
        "{written:?}"
    );
    let logout: BTreeSet<&str> = by_key
        .keys()
        .copied()
        .filter(|k| k.contains(&format!("{{{p}lo}}")))
        .collect();
    assert_eq!(logout.len(), 4, "sid, sub, all, ver: {written:?}");
    for group in [&session, &logout] {
        let mut slots = BTreeSet::new();
        let mut nodes = BTreeSet::new();
        for key in group.iter() {
            slots.insert(slot(&cluster, key).await);
            nodes.insert(by_key[key]);
        }
        assert_eq!(slots.len(), 1, "one slot for {group:?}: {slots:?}");
        assert_eq!(nodes.len(), 1, "one node for {group:?}");
    }
    // The indexes are keys of their own (their own slots), written in separate steps.
    assert!(by_key.contains_key(format!("{p}sid:sid-1").as_str()));
    assert!(by_key.contains_key(format!("{p}sub:user-1").as_str()));

    assert_eq!(b.delete_by(&LogoutKey::Sub("user-1".into())).await.unwrap(), 1);
    assert_eq!(b.get("sess-1").await.unwrap(), None);
}

/// 100 sessions land on more than one primary, and one back-channel logout of their user
/// reaches all of them, wherever they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_spread_over_the_primaries_and_delete_by_reaches_them_all() {
    let cluster = TestRedis::spawn_cluster().await;
    let b = cluster_backend(&cluster).await;
    let p = b.key_prefix().to_owned();
    for i in 0..100 {
        b.set(
            &format!("id-{i}"),
            b"x",
            &keys(&format!("sid-{}", i % 10), "zoe"),
            HOUR,
        )
        .await
        .unwrap();
    }
    let records = cluster_keys(&cluster, &format!("{p}s:*")).await;
    assert_eq!(records.len(), 100);
    let nodes: BTreeSet<usize> = records.iter().map(|(n, _)| *n).collect();
    assert!(nodes.len() >= 2, "all 100 sessions on one node: {nodes:?}");

    assert_eq!(b.delete_by(&LogoutKey::Sid("sid-3".into())).await.unwrap(), 10);
    assert_eq!(b.delete_by(&LogoutKey::Sub("zoe".into())).await.unwrap(), 90);
    assert!(cluster_keys(&cluster, &format!("{p}s:*")).await.is_empty());
    for i in 0..100 {
        assert_eq!(b.get(&format!("id-{i}")).await.unwrap(), None);
    }
    assert_eq!(
        cluster.flush_prefix(&p).await,
        0,
        "delete_by left no index behind"
    );
}

/// A login, a refresh under the cross-instance lease and a back-channel logout, through the
/// quickstart with server-side sessions on the cluster and the real test IdP.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_refresh_and_back_channel_logout_through_an_app_on_the_cluster() {
    let cluster = TestRedis::spawn_cluster().await;
    let backend = std::sync::Arc::new(cluster_backend(&cluster).await);
    let p = backend.key_prefix().to_owned();
    let store = backend.clone();
    let app = TestApp::start_with(AppConfig {
        client: Box::new(move |b| {
            b.session_backend_arc(store)
                .server_side_sessions(true)
                .token_refresh_leeway(Duration::ZERO)
        }),
        idp: IdpOptions {
            access_token_ttl: Some(2),
            ..IdpOptions::default()
        },
        backchannel: true,
        ..AppConfig::default()
    })
    .await;
    let http = TestApp::browser();
    app.login(&http, "", "alice").await;
    let (status, profile) = json_get(&http, &app.url("/profile")).await;
    assert_eq!((status, profile["sub"].as_str()), (StatusCode::OK, Some("alice")));
    let (status, first) = json_get(&http, &app.url("/token")).await;
    assert_eq!(status, StatusCode::OK, "{first}");

    // After expiry: one refresh, under the lease, written with the fenced script.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, second) = json_get(&http, &app.url("/token")).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(app.idp.requests().await.refreshes(), 1);
    let leases = cluster_keys(&cluster, &format!("{p}lease-seq:*")).await;
    assert_eq!(leases.len(), 1, "the lease counter beside the record: {leases:?}");
    let records = cluster_keys(&cluster, &format!("{p}s:*")).await;
    assert_eq!(records.len(), 1);
    assert_eq!(
        slot(&cluster, &leases[0].1).await,
        slot(&cluster, &records[0].1).await
    );

    // The user logs out at the IdP: its back-channel call ends the session on the cluster.
    let end = format!(
        "{}?client_id={CONF_BASIC_ID}&post_logout_redirect_uri={}",
        app.idp.end_session_endpoint(),
        url::form_urlencoded::byte_serialize(app.url("/").as_bytes()).collect::<String>()
    );
    app.idp.end_session(&http, &end).await;
    let (status, body) = json_get(&http, &app.url("/profile")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(cluster_keys(&cluster, &format!("{p}s:*")).await.is_empty());
}

/// Cluster connection errors are typed and say what to check; credentials never show.
#[tokio::test]
async fn cluster_connect_errors_say_what_to_check() {
    let err = RedisBackendBuilder::cluster(["redis://127.0.0.1:1".to_owned()])
        .key_prefix("app{1}:")
        .connect()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("must not contain '{' or '}'"), "{err}");

    let started = Instant::now();
    let err = RedisBackendBuilder::cluster(["redis://:hunter2@127.0.0.1:1".to_owned()])
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(shown.contains("cluster 127.0.0.1:1"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");

    let builder = RedisBackendBuilder::cluster(["redis://:hunter2@10.0.0.1:7000".to_owned()]);
    let shown = format!("{builder:?}");
    assert!(shown.contains("cluster 10.0.0.1:7000"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

/// The session cookie's name in the quickstart.
const SESSION_COOKIE: &str = "_a0_session";

/// A `GET` that keeps the response headers: status, whether it clears or replaces the session
/// cookie, and the JSON body.
async fn get(http: &reqwest::Client, url: &str) -> (StatusCode, bool, serde_json::Value) {
    let r = http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .expect("GET");
    let status = r.status();
    let touches_session = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with(SESSION_COOKIE));
    (status, touches_session, r.json().await.unwrap_or_default())
}

/// Failover, on one server: while Redis is down, requests that need the store answer a typed
/// 503 (`store_error`, never a 500) and leave the session cookie alone; once Redis is back on
/// the same port with its data, the same session works again, without restarting the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_outage_is_a_503_that_keeps_the_session_which_works_again_after_restart() {
    let mut redis = TestRedis::spawn_persistent().await;
    let backend = RedisBackend::builder(redis.url())
        .key_prefix(unique_prefix())
        .command_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    let app = TestApp::start_with(AppConfig {
        client: Box::new(move |b| b.session_backend(backend).server_side_sessions(true)),
        ..AppConfig::default()
    })
    .await;
    let http = TestApp::browser();
    app.login(&http, "", "alice").await;
    let (status, _, profile) = get(&http, &app.url("/profile")).await;
    assert_eq!((status, profile["sub"].as_str()), (StatusCode::OK, Some("alice")));

    redis.kill();
    // Any per-instance cache of the session is dropped once its invalidation channel is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, touched, body) = get(&http, &app.url("/profile")).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body["error"], "store_error", "{body}");
            assert!(!touched, "the session cookie is kept");
            break;
        }
        assert_eq!(status, StatusCode::OK, "before the outage is noticed: {body}");
        assert!(
            Instant::now() < deadline,
            "still 200 five seconds into the outage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for path in ["/profile", "/token", "/auth/profile"] {
        let (status, touched, body) = get(&http, &app.url(path)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert!(!touched, "{path} kept the session cookie");
    }

    redis.restart().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) = get(&http, &app.url("/profile")).await;
        if status == StatusCode::OK {
            assert_eq!(body["sub"], "alice", "the same session, reloaded by Redis");
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(Instant::now() < deadline, "no recovery 10 s after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, token) = get(&http, &app.url("/token")).await;
    assert_eq!(status, StatusCode::OK, "{token}");
}

/// Failover on the cluster: a primary dies (no replica to take over). Operations on its
/// sessions fail with a `StoreError` within the command timeout, never a hang; once it is
/// back (same port, its data), the same backend serves them again without reconnecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_primary_is_a_store_error_and_the_same_backend_recovers() {
    let mut cluster = TestRedis::spawn_cluster().await;
    let b = RedisBackendBuilder::cluster(cluster.urls())
        .key_prefix(unique_prefix())
        .command_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    let p = b.key_prefix().to_owned();
    for i in 0..30 {
        b.set(&format!("id-{i}"), b"x", &keys(&format!("sid-{i}"), "yan"), HOUR)
            .await
            .unwrap();
    }
    let records = cluster_keys(&cluster, &format!("{p}s:*")).await;
    let (victim_node, victim_key) = records[0].clone();
    let victim = victim_key
        .strip_prefix(&format!("{p}s:{{"))
        .and_then(|k| k.strip_suffix('}'))
        .unwrap()
        .to_owned();

    cluster.kill(victim_node);
    for _ in 0..3 {
        let started = Instant::now();
        let err = b.get(&victim).await.expect_err("its primary is dead");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "took {took:?}: {err}");
        assert!(err.to_string().contains("Redis get on cluster"), "{err}");
    }

    cluster.restart(victim_node).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match b.get(&victim).await {
            Ok(v) => {
                assert_eq!(v.as_deref(), Some(&b"x"[..]), "the session is back");
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "no recovery: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..30 {
        assert!(b.get(&format!("id-{i}")).await.unwrap().is_some(), "id-{i}");
    }
    assert_eq!(b.delete_by(&LogoutKey::Sub("yan".into())).await.unwrap(), 30);
}

/// The logout list and its in-process copy work on the cluster: its keys share one slot, so
/// recording a logout and reloading the list are one script each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logout_list_copy_works_on_the_cluster() {
    let cluster = TestRedis::spawn_cluster().await;
    let prefix = unique_prefix();
    let refresh = Duration::from_millis(200);
    let with_copy = || {
        RedisBackendBuilder::cluster(cluster.urls())
            .key_prefix(prefix.clone())
            .logout_list_refresh(refresh)
            .connect()
    };
    let (a, b) = (with_copy().await.unwrap(), with_copy().await.unwrap());
    // The first reads load the (empty) list.
    assert_eq!(a.logout_time(&[LogoutKey::Sid("s1".into())]).await.unwrap(), None);
    assert_eq!(b.logout_time(&[LogoutKey::Sid("s1".into())]).await.unwrap(), None);
    a.record_logout(&LogoutKey::Sid("s1".into()), 1_000, HOUR)
        .await
        .unwrap();
    a.record_logout(&LogoutKey::Sub("u1".into()), 2_000, HOUR)
        .await
        .unwrap();
    assert_eq!(a.logout_time_at_hand("s1", Some("u1")), Some(Some(2_000)));
    tokio::time::sleep(refresh + Duration::from_millis(50)).await;
    assert_eq!(
        b.logout_time(&[LogoutKey::Sid("s1".into())]).await.unwrap(),
        Some(1_000),
        "reloaded from the cluster"
    );
    assert_eq!(b.logout_time_at_hand("s1", Some("u1")), Some(Some(2_000)));
}
