//! CPU cost of one request through the whole Axum stack, without sockets: the three apps of
//! the load test (`auth_examples::load`) called the way `axum::serve` calls them (a clone of
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
//! - `stack/protected_no_session`: the protected app answering 401 (no cookie).
//!
//! Building each request (the same headers a browser sends) happens outside the measurement.
//! Nothing here waits on I/O, so each call is polled once with a no-op waker.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use auth_examples::load::{bare_app, cookie_app, protected_app, realistic_session, session_cookie, unix_now};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tower::ServiceExt;

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

fn status(app: &Router, cookie: Option<&HeaderValue>) -> StatusCode {
    ready(app.clone().oneshot(request(cookie))).unwrap().status()
}

fn stack(c: &mut Criterion) {
    let now = unix_now();
    let session = realistic_session(now).unwrap();
    let sealed = ready(session_cookie(&session, now)).unwrap();
    let cookie = HeaderValue::from_str(&sealed.header).unwrap();
    let protected = protected_app("http://127.0.0.1:18082").unwrap();
    let (bare, with_cookie) = (bare_app(), cookie_app());

    // The variants answer as the load test expects, or the numbers mean nothing.
    assert_eq!(status(&bare, None), StatusCode::OK);
    assert_eq!(status(&with_cookie, Some(&cookie)), StatusCode::OK);
    assert_eq!(status(&protected, Some(&cookie)), StatusCode::OK);
    assert_eq!(status(&protected, None), StatusCode::UNAUTHORIZED);

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
    g.finish();
}

criterion_group!(benches, stack);
criterion_main!(benches);
