//! Arbitrary `Cookie` headers through the whole Axum stack: `auth.layer()` (the header bound and
//! tower-cookies' `CookieManager`), the per-request session read (tower-cookies' lookup from the
//! raw header and the chunk reader), the `Session` extractor and the callback route (the
//! built jar and the transaction cookie lookup).
//!
//! The input is split on `\n` into several `Cookie` header lines (as HTTP/2 sends them);
//! lines that are not valid header values are dropped, as the HTTP parser would.
//!
//! Invariants: no panic, never a 5xx; a protected read of a header that holds no valid session
//! answers "no session" and writes no cookie; every `Set-Cookie` written is a removal of a
//! transaction cookie (the callback's clean-up), never a session.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::sync::LazyLock;
use std::task::{Context, Poll, Waker};

use auth_axum::{AuthOptions, AuthState, Session};
use auth_core::{ClientAuth, ServerClient};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderValue, Request};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt as _;

const SECRET: &str = "fuzz-cookie-secret-0123456789abcdef";
/// A valid state: the callback looks its transaction cookie up.
const STATE: &str = "fuzzStateAbcdefghijklmnop0123";

static APP: LazyLock<Router> = LazyLock::new(|| {
    let client = ServerClient::builder()
        .issuer("https://tenant.example.invalid/")
        .client_id("fuzz-client")
        .client_auth(ClientAuth::none())
        .secret(SECRET)
        .app_base_url("http://127.0.0.1:3000")
        .build()
        .expect("client builds");
    let auth = AuthState::new(client, AuthOptions::new()).expect("auth state");
    Router::new()
        .route(
            "/",
            get(|session: Option<Session>| async move { if session.is_some() { "in" } else { "out" } }),
        )
        .merge(auth.router())
        .layer(auth.layer())
});

/// Nothing here waits on I/O (no provider is ever reached): finish on the first poll.
fn now_or_never<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the request waited"),
    }
}

fn request(uri: &str, cookies: &[HeaderValue]) -> Request<Body> {
    let mut req = Request::builder()
        .uri(uri)
        .header("host", "127.0.0.1:3000")
        .header("accept", "application/json")
        .body(Body::empty())
        .expect("request");
    for c in cookies {
        req.headers_mut().append("cookie", c.clone());
    }
    req
}

fuzz_target!(|data: &[u8]| {
    let cookies: Vec<HeaderValue> = data
        .split(|b| *b == b'\n')
        .filter_map(|line| HeaderValue::from_bytes(line).ok())
        .collect();

    // 1. A protected read: no sealed session can be forged, so it is always "no session".
    let resp = now_or_never(APP.clone().oneshot(request("/", &cookies))).expect("infallible");
    assert!(resp.status().is_success(), "{}", resp.status());
    assert!(
        resp.headers().get("set-cookie").is_none(),
        "a read writes no cookie"
    );

    // 2. A callback: its transaction cookie (if the header has one) never opens, so the
    //    answer is a 4xx, and the only cookie written is that transaction's removal.
    let uri = format!("/auth/callback?code=c&state={STATE}");
    let resp = now_or_never(APP.clone().oneshot(request(&uri, &cookies))).expect("infallible");
    assert!(!resp.status().is_server_error(), "{}", resp.status());
    for set in resp.headers().get_all("set-cookie") {
        let set = set.to_str().expect("ASCII Set-Cookie");
        assert!(
            set.starts_with(&format!("_a0_tx_{STATE}=;")) && set.contains("Max-Age=0"),
            "{set}"
        );
    }
});
