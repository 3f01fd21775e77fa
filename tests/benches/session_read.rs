//! Session read cost by store: the stateless cookie store (open + parse the sealed chunks)
//! vs server-side sessions in memory vs on a real Redis (`REDIS_URL`, or a `redis-server`
//! spawned on a free port).
//!
//! `cargo bench -p auth-tests --bench session_read`

use std::sync::Arc;

use auth_core::cookies::{CookieAttributes, MemoryCookieJar};
use auth_core::internal::{CookieStateStore, ServerSideStateStore, SessionData, StateStore, WriteOptions};
use auth_core::store::MemoryBackend;
use auth_redis::RedisBackend;
use auth_tests::{TestRedis, unique_prefix};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

const SECRET: &str = "bench-secret-0123456789abcdef0123456789";

/// A realistic session: ~1 KB ID token, ~900 B access token, refresh token, profile claims —
/// about 3 KB of JSON, two cookie chunks once sealed.
fn session() -> SessionData {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    serde_json::from_value(json!({
        "user": {"sub": "auth0|5f7c8ec7c33c6c004bbafe82", "name": "Jane Josephine Doe", "nickname": "jane",
                 "email": "jane.doe@example.com", "email_verified": true,
                 "picture": "https://s.gravatar.com/avatar/1b2c3d4e5f60718293a4b5c6d7e8f901?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2Fjd.png",
                 "updated_at": "2026-11-20T10:00:00.000Z", "sid": "Kx7mN2pQ9rS4tU6vW8xY0zA1bC3dE5fG"},
        "id_token": format!("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjEyMyJ9.{}.{}", "e".repeat(700), "s".repeat(342)),
        "refresh_token": "v1.MRrK0Zs8-y6x5w4v3u2t1s0r9q8p7o6n5m4l3k2j1i0h9g8f7e6d5c4b3a2Z1Y0X9W8V7U6T5S4R3Q2P1O0N9M8L7K6J5",
        "token_sets": [{"audience": "https://api.example.com/", "access_token": format!("eyJhbGciOiJSUzI1NiJ9.{}.{}", "a".repeat(500), "s".repeat(342)),
                        "scope": "openid profile email offline_access read:data", "expires_at": now + 86_400}],
        "connection_token_sets": [],
        "internal": {"sid": "Kx7mN2pQ9rS4tU6vW8xY0zA1bC3dE5fG", "created_at": now}
    }))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let redis = rt.block_on(TestRedis::start());
    let redis_backend = rt
        .block_on(
            RedisBackend::builder(redis.url())
                .key_prefix(unique_prefix())
                .connect(),
        )
        .unwrap();

    let stores: Vec<(&str, Arc<dyn StateStore>)> = vec![
        (
            "cookie",
            Arc::new(CookieStateStore::new(
                &[SECRET],
                "_a0_session",
                CookieAttributes::default(),
            )),
        ),
        (
            "memory",
            Arc::new(ServerSideStateStore::new(
                Arc::new(MemoryBackend::new()),
                &[SECRET],
                "_a0_session",
                CookieAttributes::default(),
            )),
        ),
        (
            "redis",
            Arc::new(ServerSideStateStore::new(
                Arc::new(redis_backend),
                &[SECRET],
                "_a0_session",
                CookieAttributes::default(),
            )),
        ),
    ];
    let s = session();
    let json_len = serde_json::to_vec(&s).unwrap().len();
    let mut group = c.benchmark_group("session_read");
    for (name, store) in &stores {
        let mut jar = MemoryCookieJar::default();
        let expires = s.sid().len() as u64 + 4_000_000_000;
        rt.block_on(store.set(&s, WriteOptions::new(expires, true), &mut jar))
            .unwrap();
        let jar = jar.next_request();
        let cookies = auth_core::cookies::CookieJar::names(&jar).len();
        eprintln!(
            "{name}: session JSON {json_len} B, {cookies} cookie(s), header {} B",
            jar.to_cookie_header().len()
        );
        group.bench_function(*name, |b| {
            b.iter(|| {
                let mut j = jar.clone();
                let got = rt.block_on(store.get(&mut j)).unwrap();
                assert!(got.is_some());
            });
        });
    }
    group.finish();
    drop(redis);
}

criterion_group!(benches, bench);
criterion_main!(benches);
