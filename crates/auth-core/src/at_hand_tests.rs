//! `ServerClient::session_at_hand`: only ever the session `get_session` would return, and only
//! when nothing (logout list, touch, expiry) needs an await.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::cookies::{CookieJar, MemoryCookieJar};
use crate::store::{LogoutKey, MemoryBackend, SessionBackend};
use crate::time::now;
use crate::{ClientAuth, ServerClient, SessionData};

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

#[tokio::test]
async fn at_hand_once_opened_and_never_for_a_changed_cookie() {
    let c = client(Arc::new(MemoryBackend::new()));
    let t = now();
    let jar = written(&c, &session("sid-1", t, t)).await;

    // Never opened: not at hand; get_session opens it, and then it is.
    assert!(c.session_at_hand(&jar).is_none());
    let opened = c.get_session(&mut jar.next_request()).await.unwrap().unwrap();
    let at_hand = c.session_at_hand(&jar).expect("at hand after the first read");
    assert_eq!(at_hand.sub(), Some("user-1"));
    assert_eq!(at_hand.sub(), opened.sub());

    // One byte changed in any chunk, a chunk dropped, or chunks swapped: not at hand, and not
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
            assert!(c.session_at_hand(&jar2).is_none(), "{name}@{pos}");
            assert!(c.get_session(&mut jar2.next_request()).await.unwrap().is_none());
        }
    }
    let first_only = MemoryCookieJar::from_request_cookies([(names[0].clone(), jar.get(&names[0]).unwrap())]);
    assert!(c.session_at_hand(&first_only).is_none());
    let swapped = MemoryCookieJar::from_request_cookies([
        (names[0].clone(), jar.get(&names[1]).unwrap()),
        (names[1].clone(), jar.get(&names[0]).unwrap()),
    ]);
    assert!(c.session_at_hand(&swapped).is_none());
}

#[tokio::test]
async fn not_at_hand_once_a_logout_list_exists() {
    let backend = Arc::new(MemoryBackend::new());
    let c = client(Arc::clone(&backend));
    let t = now();
    let jar = written(&c, &session("sid-1", t, t)).await;
    c.get_session(&mut jar.next_request()).await.unwrap().unwrap();
    assert!(c.session_at_hand(&jar).is_some());

    // Another session's logout: this one still reads, but only through get_session.
    backend
        .record_logout(&LogoutKey::Sid("sid-other".into()), t, DAY)
        .await
        .unwrap();
    assert!(c.session_at_hand(&jar).is_none());
    assert!(c.get_session(&mut jar.next_request()).await.unwrap().is_some());

    // Its own logout: no session at all.
    backend
        .record_logout(&LogoutKey::Sid("sid-1".into()), t, DAY)
        .await
        .unwrap();
    assert!(c.session_at_hand(&jar).is_none());
    assert!(c.get_session(&mut jar.next_request()).await.unwrap().is_none());
}

#[tokio::test]
async fn not_at_hand_when_a_touch_is_due_or_the_session_expired() {
    let c = client(Arc::new(MemoryBackend::new()));
    let t = now();

    // Last active a tenth of the window ago: the rolling touch is due, which writes a cookie.
    let stale = written(&c, &session("sid-2", t - 3600, t - DAY.as_secs() / 10)).await;
    c.get_session(&mut stale.next_request()).await.unwrap().unwrap();
    assert!(c.session_at_hand(&stale).is_none());
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
    assert!(c.session_at_hand(&expired).is_none());
    assert!(
        c.get_session(&mut expired.next_request())
            .await
            .unwrap()
            .is_none()
    );
    assert!(c.session_at_hand(&expired).is_none());
}
