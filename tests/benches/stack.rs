//! CPU cost of one request through the whole Axum stack, without sockets: the three apps of
//! the load test (`auth_examples::load`) called the way `axum::serve` calls them (the routes
//! built once, as `axum::serve` does per connection with `Router::with_state(())`; a clone of
//! the router per request, `oneshot`), with the same realistic session cookie.
//!
//! ```sh
//! cargo bench -p auth-tests --bench stack -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! - `stack/bare`: the handler alone, no Cookie header;
//! - `stack/bare_cookie`: the handler reading the Cookie header's length, header sent;
//! - `stack/protected`: `auth.layer()` + `RequireAuth` + `Session`, header sent (a cache hit
//!   after the first request, as for a browser that sends the same cookie again);
//! - `stack/protected_no_session`: the protected app answering 401 (no cookie);
//! - `stack/protected_hostile_cookie`: the protected app with the session's cookies followed by
//!   a hostile ~60 KB Cookie header ([`hostile_cookie`]): hundreds of `_a0_tx_*` cookies
//!   holding sealed values that do not open, and thousands of junk and duplicate pairs;
//! - `stack/login` and `stack/login_hostile_cookie`: `GET /auth/login` (a transaction sealed
//!   into a cookie, older transactions looked at and pruned) with the realistic session header
//!   and with the hostile one. The provider metadata comes from a loopback server, fetched
//!   once before measuring; these two rows run in a current-thread runtime (`block_on`).
//!
//! The hostile rows should cost at most a few times their normal row: the Cookie header is
//! parsed once with a cap on the pairs looked at, and at most a handful of transaction
//! cookies are opened whatever the header holds.
//!
//! Building each request (the same headers a browser sends) happens outside the measurement.
//! Nothing here waits on I/O, so each call is polled once with a no-op waker.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use auth_axum::{AuthOptions, AuthState};
use auth_core::internal::Sealer;
use auth_core::{ClientAuth, ServerClient};
use auth_examples::load::{bare_app, cookie_app, protected_app, realistic_session, session_cookie, unix_now};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tower::ServiceExt;

/// `_a0_tx_*` cookies in the hostile header.
const HOSTILE_TRANSACTIONS: usize = 200;
/// Junk pairs in the hostile header (half of them repeating one name).
const HOSTILE_JUNK: usize = 3000;

/// Polls a future that never waits to completion.
fn ready<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the request waited on something"),
    }
}

/// The request wrk sends, with the session cookie when given.
fn request(cookie: Option<&HeaderValue>) -> Request<Body> {
    let mut req = Request::builder()
        .uri("/")
        .header("host", "127.0.0.1:18082")
        .header("accept", "application/json")
        .body(Body::empty())
        .unwrap();
    if let Some(c) = cookie {
        req.headers_mut().insert("cookie", c.clone());
    }
    req
}

/// `session` (a Cookie header) followed by a hostile tail of about 60 KB: hundreds of
/// transaction cookies with well-formed sealed values that do not open (sealed with another
/// secret, so each one opened would cost a key derivation and a MAC), then thousands of junk
/// pairs, half of them one repeated name.
fn hostile_cookie(session: &str) -> HeaderValue {
    let other = Sealer::new(&["another-secret-0123456789abcdef0123456789"], &[]);
    let mut h = String::from(session);
    for i in 0..HOSTILE_TRANSACTIONS {
        let state = format!("hostile{i:04}StateAbcdefghij");
        let value = other.seal(&format!("_a0_tx:{state}"), br#"{"state":"x"}"#);
        h.push_str(&format!("; _a0_tx_{state}={value}"));
    }
    for i in 0..HOSTILE_JUNK {
        if i % 2 == 0 {
            h.push_str(&format!("; junk{i}=1"));
        } else {
            h.push_str("; dup=1");
        }
    }
    HeaderValue::from_str(&h).unwrap()
}

/// Serves the discovery document on loopback (fetched once, before measuring).
async fn discovery_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let doc = serde_json::json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "end_session_endpoint": format!("{base}/oidc/logout"),
    })
    .to_string();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let doc = doc.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{doc}",
                    doc.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    base
}

/// An app with the `/auth/*` routes whose provider is `issuer`.
fn login_app(issuer: String) -> Router {
    let client = ServerClient::builder()
        .issuer(issuer)
        .client_id("kbyuFDidLLm280LIwVFiazOqjO3ty8KH")
        .client_auth(ClientAuth::none())
        .secret("load-target-secret-0123456789abcdef0123456789")
        .app_base_url("http://127.0.0.1:18082")
        .build()
        .unwrap();
    let auth = AuthState::new(client, AuthOptions::new()).unwrap();
    Router::new().merge(auth.router()).layer(auth.layer())
}

/// `GET /auth/login` as a browser sends it.
fn login_request(cookie: &HeaderValue) -> Request<Body> {
    let mut req = Request::builder()
        .uri("/auth/login?returnTo=%2F")
        .header("host", "127.0.0.1:18082")
        .header("accept", "text/html")
        .body(Body::empty())
        .unwrap();
    req.headers_mut().insert("cookie", cookie.clone());
    req
}

/// `app` as `axum::serve` serves it on a connection: its routes built (`Router::with_state`).
fn serving(app: Router) -> Router {
    app.with_state(())
}

fn status(app: &Router, cookie: Option<&HeaderValue>) -> StatusCode {
    ready(app.clone().oneshot(request(cookie))).unwrap().status()
}

fn stack(c: &mut Criterion) {
    let now = unix_now();
    let session = realistic_session(now).unwrap();
    let sealed = ready(session_cookie(&session, now)).unwrap();
    let cookie = HeaderValue::from_str(&sealed.header).unwrap();
    // `axum::serve` turns every route into its service once per connection (`with_state`),
    // not once per request: so do these, or each request would also pay for building its
    // route and applying the layers to it.
    let protected = serving(ready(protected_app("http://127.0.0.1:18082")).unwrap());
    let (bare, with_cookie) = (serving(bare_app()), serving(cookie_app()));

    // The variants answer as the load test expects, or the numbers mean nothing.
    assert_eq!(status(&bare, None), StatusCode::OK);
    assert_eq!(status(&with_cookie, Some(&cookie)), StatusCode::OK);
    assert_eq!(status(&protected, Some(&cookie)), StatusCode::OK);
    assert_eq!(status(&protected, None), StatusCode::UNAUTHORIZED);
    let hostile = hostile_cookie(&sealed.header);
    eprintln!("hostile Cookie header: {} B", hostile.len());
    assert_eq!(status(&protected, Some(&hostile)), StatusCode::OK);

    let mut g = c.benchmark_group("stack");
    let mut run = |name: &str, app: &Router, cookie: Option<&HeaderValue>, expect: StatusCode| {
        g.bench_function(name, |b| {
            b.iter_batched(
                || request(cookie),
                |req| {
                    let resp = ready(app.clone().oneshot(req)).unwrap();
                    assert_eq!(resp.status(), expect);
                    resp
                },
                BatchSize::SmallInput,
            );
        });
    };
    run("bare", &bare, None, StatusCode::OK);
    run("bare_cookie", &with_cookie, Some(&cookie), StatusCode::OK);
    run("protected", &protected, Some(&cookie), StatusCode::OK);
    run("protected_no_session", &protected, None, StatusCode::UNAUTHORIZED);
    run(
        "protected_hostile_cookie",
        &protected,
        Some(&hostile),
        StatusCode::OK,
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let login = serving(login_app(rt.block_on(discovery_server())));
    // The first login fetches the metadata; every measured one finds it cached.
    let first = rt
        .block_on(login.clone().oneshot(login_request(&cookie)))
        .unwrap();
    assert!(first.status().is_redirection(), "{}", first.status());
    let hostile_login = rt
        .block_on(login.clone().oneshot(login_request(&hostile)))
        .unwrap();
    assert!(
        hostile_login.status().is_redirection(),
        "{}",
        hostile_login.status()
    );
    eprintln!(
        "login with the hostile header: {} Set-Cookie headers",
        hostile_login.headers().get_all("set-cookie").iter().count()
    );
    for (name, header) in [("login", &cookie), ("login_hostile_cookie", &hostile)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || login_request(header),
                |req| {
                    let resp = rt.block_on(login.clone().oneshot(req)).unwrap();
                    assert!(resp.status().is_redirection());
                    resp
                },
                BatchSize::SmallInput,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, stack);
criterion_main!(benches);
