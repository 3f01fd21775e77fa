//! Arbitrary requests to the account-changing routes (`/auth/link`, `/auth/unlink`,
//! `/auth/connect`) of a logged-in browser: any `Sec-Fetch-Site` header lines, GET with any
//! query or POST with any form body, through the whole Axum stack.
//!
//! Input: the first byte picks the route and the method; the rest is split on `\n`: the first
//! line is the query string (GET) or the form body (POST), every further line one
//! `Sec-Fetch-Site` header value (lines that are not valid header values are dropped, as the
//! HTTP parser would).
//!
//! Invariants: no panic; never a 5xx; a request whose `Sec-Fetch-Site` lines are not all
//! `same-origin`/`none` gets `403` with no cookie written and no redirect, whatever its
//! parameters; a request that is answered at once otherwise writes no transaction cookie unless
//! it redirects. (A request the policy admits with valid parameters goes on to fetch the
//! provider's metadata; that is where the target stops following it.)
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::sync::LazyLock;
use std::task::{Context, Poll, Waker};

use auth_axum::{AuthOptions, AuthState};
use auth_core::cookies::{CookieAttributes, MemoryCookieJar};
use auth_core::internal::{CookieStateStore, SessionData, StateStore, WriteOptions};
use auth_core::{ClientAuth, ServerClient};
use axum::Router;
use axum::body::Body;
use http::{HeaderValue, Method, Request, Response};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt as _;

const SECRET: &str = "fuzz-account-secret-0123456789abcdef";
const SESSION_COOKIE: &str = "_a0_session";
const ROUTES: [&str; 3] = ["/auth/link", "/auth/unlink", "/auth/connect"];

static APP: LazyLock<Router> = LazyLock::new(|| {
    let client = ServerClient::builder()
        .issuer("http://127.0.0.1:9/")
        .client_id("fuzz-client")
        .client_auth(ClientAuth::none())
        .secret(SECRET)
        .app_base_url("http://127.0.0.1:3000")
        .build()
        .expect("client builds");
    let auth = AuthState::new(client, AuthOptions::new()).expect("auth state");
    auth.router().layer(auth.layer())
});

/// A sealed session cookie header for a logged-in user.
static SESSION: LazyLock<HeaderValue> = LazyLock::new(|| {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let session: SessionData = serde_json::from_value(serde_json::json!({
        "user": {"sub": "auth0|fuzz"},
        "id_token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhdXRoMHxmdXp6In0.c2ln",
        "refresh_token": "fuzz-refresh-token",
        "token_sets": [],
        "connection_token_sets": [],
        "internal": {"sid": "fuzz-sid", "created_at": now, "last_active": now}
    }))
    .expect("session document");
    let store = CookieStateStore::new(&[SECRET], SESSION_COOKIE, CookieAttributes::default());
    let mut jar = MemoryCookieJar::default();
    now_or_never(store.set(&session, WriteOptions::new(now + 86_400, true), &mut jar))
        .expect("sealing does not wait")
        .expect("sealed");
    HeaderValue::from_str(&jar.next_request().to_cookie_header()).expect("cookie header")
});

/// Polls once: `None` when the request waits (on the provider).
fn now_or_never<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

fn allowed(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|v| {
        let v = v.trim();
        v.eq_ignore_ascii_case("same-origin") || v.eq_ignore_ascii_case("none")
    })
}

fn check(resp: &Response<axum::body::Body>, refused: bool) {
    let status = resp.status();
    assert!(!status.is_server_error(), "{status}");
    let set_cookies: Vec<&str> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ASCII Set-Cookie"))
        .collect();
    if refused {
        assert_eq!(status, 403, "a cross-site request must be refused");
        assert!(set_cookies.is_empty(), "{set_cookies:?}");
        assert!(resp.headers().get("location").is_none());
    } else if !status.is_redirection() {
        assert!(
            set_cookies.iter().all(|c| !c.starts_with("_a0_tx_")),
            "{set_cookies:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let route = ROUTES[usize::from(selector % 3)];
    let post = selector & 4 != 0;
    let mut lines = rest.split(|b| *b == b'\n');
    let params = lines.next().unwrap_or_default();
    let sites: Vec<HeaderValue> = lines.filter_map(|l| HeaderValue::from_bytes(l).ok()).collect();
    let refused = !sites.iter().all(allowed);

    let mut builder = Request::builder()
        .header("host", "127.0.0.1:3000")
        .header("accept", "application/json")
        .header("cookie", SESSION.clone());
    let body = if post {
        builder = builder
            .method(Method::POST)
            .uri(route)
            .header("content-type", "application/x-www-form-urlencoded");
        Body::from(params.to_vec())
    } else {
        let Ok(query) = std::str::from_utf8(params) else {
            return;
        };
        if query.chars().any(|c| c.is_control() || c == ' ' || c == '#') {
            return;
        }
        builder = builder.method(Method::GET).uri(format!("{route}?{query}"));
        Body::empty()
    };
    let Ok(mut req) = builder.body(body) else {
        return;
    };
    for site in sites {
        req.headers_mut().append("sec-fetch-site", site);
    }
    match now_or_never(APP.clone().oneshot(req)) {
        Some(resp) => check(&resp.expect("infallible"), refused),
        // Waiting on the provider: only a request the policy admitted gets that far.
        None => assert!(!refused, "a cross-site request reached the provider"),
    }
});
