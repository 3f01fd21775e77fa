//! The per-request read through the opened-session cache (`store/cache.rs`): a hit is only
//! ever the session an open would return, and the client's policy (logout list, touch,
//! expiry) applies to hits as to misses.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::client::now_ms;
use crate::cookies::{CookieJar, MemoryCookieJar};
use crate::session::SessionData;
use crate::store::{LogoutKey, MemoryBackend, SessionBackend};
use crate::time::now;
use crate::{ClientAuth, ServerClient};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn client(backend: Arc<MemoryBackend>) -> ServerClient {
    ServerClient::builder()
        .issuer("https://idp.example.invalid/")
        .client_id("client")
        .client_auth(ClientAuth::none())
        .secret("at-hand-tests-secret-0123456789abcdef")
        .app_base_url("http://127.0.0.1:3000")
        .session_backend_arc(backend)
        .session_inactivity_duration(DAY)
        .build()
        .unwrap()
}

fn session(sid: &str, created_at: u64, last_active: u64) -> SessionData {
    serde_json::from_value(json!({
        "user": {"sub": "user-1", "blob": "x".repeat(5000)},
        "token_sets": [], "connection_token_sets": [],
        "internal": {"sid": sid, "created_at": created_at, "last_active": last_active}
    }))
    .unwrap()
}

/// The cookies a browser sends back after `s` was written.
async fn written(c: &ServerClient, s: &SessionData) -> MemoryCookieJar {
    let mut jar = MemoryCookieJar::new();
    c.write_session(s, true, &mut jar).await.unwrap();
    let next = jar.next_request();
    assert!(next.names().len() >= 2, "the session should span several chunks");
    next
}

/// The session when the read was served by the opened-session cache (a hit), else `None`.
async fn cached(c: &ServerClient, jar: &MemoryCookieJar) -> Option<crate::SessionSnapshot> {
    let before = c.inner.sessions.stats().0;
    let s = c.get_session(&mut jar.next_request()).await.unwrap()?;
    (c.inner.sessions.stats().0 > before).then_some(s)
}

#[tokio::test]
async fn cached_once_opened_and_never_for_a_changed_cookie() {
    let c = client(Arc::new(MemoryBackend::new()));
    let t = now();
    let jar = written(&c, &session("sid-1", t, t)).await;

    // Never opened: a miss; once opened, a hit.
    assert!(cached(&c, &jar).await.is_none());
    let opened = c.get_session(&mut jar.next_request()).await.unwrap().unwrap();
    let hit = cached(&c, &jar).await.expect("a hit after the first read");
    assert_eq!(hit.sub(), Some("user-1"));
    assert_eq!(hit.sub(), opened.sub());

    // One byte changed in any chunk, a chunk dropped, or chunks swapped: no hit, and not
    // a session either.
    let names = jar.names();
    for name in &names {
        let value = jar.get(name).unwrap();
        for pos in [0, value.len() / 2, value.len() - 1] {
            let mut bytes = value.clone().into_bytes();
            bytes[pos] = if bytes[pos] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            let cookies = names.iter().map(|n| {
                (
                    n.clone(),
                    if n == name {
                        tampered.clone()
                    } else {
                        jar.get(n).unwrap()
                    },
                )
            });
            let jar2 = MemoryCookieJar::from_request_cookies(cookies);
            assert!(cached(&c, &jar2).await.is_none(), "{name}@{pos}");
            assert!(c.get_session(&mut jar2.next_request()).await.unwrap().is_none());
        }
    }
    let first_only = MemoryCookieJar::from_request_cookies([(names[0].clone(), jar.get(&names[0]).unwrap())]);
    assert!(cached(&c, &first_only).await.is_none());
    let swapped = MemoryCookieJar::from_request_cookies([
        (names[0].clone(), jar.get(&names[1]).unwrap()),
        (names[1].clone(), jar.get(&names[0]).unwrap()),
    ]);
    assert!(cached(&c, &swapped).await.is_none());
}

/// Issue 10 item 7: the fast path survives logouts of other sessions (the logout list is an
/// in-memory lookup), and a session on the list is neither at hand nor opened, from the
/// opened-session cache included. (Before, any recorded logout turned the fast path off for
/// every session.)
#[tokio::test]
async fn cached_after_unrelated_logouts_but_never_after_its_own() {
    let backend = Arc::new(MemoryBackend::new());
    let c = client(Arc::clone(&backend));
    let t = now();
    let jar = written(&c, &session("sid-1", t, t)).await;
    c.get_session(&mut jar.next_request()).await.unwrap().unwrap();
    assert!(cached(&c, &jar).await.is_some());

    // Other sessions' logouts (by sid and by another user's sub): still at hand.
    backend
        .record_logout(&LogoutKey::Sid("sid-other".into()), now_ms(), DAY)
        .await
        .unwrap();
    backend
        .record_logout(&LogoutKey::Sub("user-2".into()), now_ms(), DAY)
        .await
        .unwrap();
    assert!(
        cached(&c, &jar).await.is_some(),
        "an unrelated logout must not turn the fast path off"
    );
    assert!(c.get_session(&mut jar.next_request()).await.unwrap().is_some());

    // Its own logout: neither at hand nor opened (the cookie store's cache still holds it).
    backend
        .record_logout(&LogoutKey::Sid("sid-1".into()), now_ms(), DAY)
        .await
        .unwrap();
    assert!(cached(&c, &jar).await.is_none());
    let mut read = jar.next_request();
    assert!(c.get_session(&mut read).await.unwrap().is_none());
    assert!(
        read.response_cookies().iter().all(|k| k.removed),
        "the logged-out cookie is deleted"
    );
    assert!(cached(&c, &jar).await.is_none());

    // By the user's sub as well.
    let jar2 = written(&c, &session("sid-2", t, t)).await;
    c.get_session(&mut jar2.next_request()).await.unwrap().unwrap();
    assert!(cached(&c, &jar2).await.is_some());
    backend
        .record_logout(&LogoutKey::Sub("user-1".into()), now_ms(), DAY)
        .await
        .unwrap();
    assert!(cached(&c, &jar2).await.is_none());
    assert!(c.get_session(&mut jar2.next_request()).await.unwrap().is_none());
}

/// Issue 10 item 6: logout times have millisecond precision, so a session created after a
/// logout within the same second survives it; one created before it does not. Logout times
/// recorded in seconds (older versions) keep their old meaning.
#[tokio::test]
async fn a_session_created_after_a_logout_in_the_same_second_survives() {
    let backend = Arc::new(MemoryBackend::new());
    let c = client(Arc::clone(&backend));
    // Start early in a second so the logout and the new login share it.
    while now_ms() % 1000 > 700 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = now();
    let before = written(&c, &session("sid-same", t, t)).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    backend
        .record_logout(&LogoutKey::Sid("sid-same".into()), now_ms(), DAY)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let after = written(&c, &session("sid-same", t, t)).await;
    assert_eq!(now(), t, "the test ran within one second");
    assert!(
        c.get_session(&mut before.next_request()).await.unwrap().is_none(),
        "created before the logout: ended"
    );
    assert!(
        c.get_session(&mut after.next_request()).await.unwrap().is_some(),
        "created after the logout, in the same second: survives"
    );
    assert!(cached(&c, &after).await.is_some());

    // A logout time in seconds (recorded by an older version) still ends every session
    // created in or before that second.
    backend
        .record_logout(&LogoutKey::Sid("sid-legacy".into()), t, DAY)
        .await
        .unwrap();
    let legacy = written(&c, &session("sid-legacy", t, t)).await;
    assert!(c.get_session(&mut legacy.next_request()).await.unwrap().is_none());
}

#[tokio::test]
async fn not_cached_when_a_touch_is_due_or_the_session_expired() {
    let c = client(Arc::new(MemoryBackend::new()));
    let t = now();

    // Last active a tenth of the window ago: the rolling touch is due, which writes a cookie.
    let stale = written(&c, &session("sid-2", t - 3600, t - DAY.as_secs() / 10)).await;
    c.get_session(&mut stale.next_request()).await.unwrap().unwrap();
    let mut touched = stale.next_request();
    assert!(c.get_session(&mut touched).await.unwrap().is_some());
    assert!(
        !touched.response_cookies().is_empty(),
        "get_session re-issues the cookie"
    );

    // Past the inactivity window: expired, never at hand, no session.
    let expired = written(
        &c,
        &session("sid-3", t - 2 * DAY.as_secs(), t - DAY.as_secs() - 60),
    )
    .await;
    assert!(cached(&c, &expired).await.is_none());
    assert!(
        c.get_session(&mut expired.next_request())
            .await
            .unwrap()
            .is_none()
    );
    assert!(cached(&c, &expired).await.is_none());
}
