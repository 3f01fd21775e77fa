//! [`AuthLayer`]: makes the [`AuthState`] and one tower-cookies jar available to every
//! request (installing tower-cookies' `CookieManager` unless the app already has), and marks
//! `Cookie`/`Set-Cookie` sensitive.

use std::task::{Context, Poll};

use axum::extract::Request;
use http::HeaderMap;
use http::header::{COOKIE, SET_COOKIE};
use tower::{Layer, Service};
use tower_cookies::{CookieManager, Cookies};

use crate::app_data::{WriteBack, WriteBackFuture};
use crate::request::RequestAuth;
use crate::state::AuthState;

impl AuthState {
    /// The layer that every route using `Session` or `RequireAuth` must sit under: it makes
    /// this state available, gives the request tower-cookies' [`Cookies`] jar (reusing the one
    /// of a `CookieManagerLayer` the app installed outside it; otherwise it runs tower-cookies'
    /// `CookieManager` itself, which puts cookie changes on the response), and marks
    /// `Cookie`/`Set-Cookie` headers sensitive so traces never print them.
    #[must_use]
    pub fn layer(&self) -> AuthLayer {
        AuthLayer { state: self.clone() }
    }
}

/// See [`AuthState::layer`].
#[derive(Clone, Debug)]
pub struct AuthLayer {
    state: AuthState,
}

impl<S: Clone> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        // The write-back sits inside the cookie manager (ours or the app's): the session it
        // writes is in the jar before the jar's changes become `Set-Cookie` headers.
        AuthService {
            managed: CookieManager::new(WriteBack::new(inner)).max_cookie_parts(MAX_COOKIE_PARTS),
            state: self.state.clone(),
        }
    }
}

/// The service made by [`AuthLayer`]: the app's service, called directly when the request
/// already has a [`Cookies`] jar, or under tower-cookies' [`CookieManager`] when it has none.
///
/// App data changed with [`crate::Session::set`] / [`crate::Session::remove`] is written back
/// once, after the app's service produced the response and before the cookie manager turns
/// the jar's changes into `Set-Cookie` headers. A failed write-back (store down, session too
/// large by then) is logged at `error` (without values) and the response goes out as it is.
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    /// The app's service under the write-back, under tower-cookies' manager; a request that
    /// already has a jar calls the write-back directly (`get_mut`): one copy of the app's
    /// service, so cloning this one (axum does per request) clones it once.
    managed: CookieManager<WriteBack<S>>,
    state: AuthState,
}

/// `;`-separated parts of a request's `Cookie` header(s) that the cookie jar reads when this
/// layer installs it (tower-cookies' `CookieManager::max_cookie_parts`); the rest is never
/// parsed. Browsers send at most about 180 cookies per site; the cap bounds the work (and the
/// memory) a hostile header can cause however long it is.
pub(crate) const MAX_COOKIE_PARTS: usize = 256;

impl<S, B> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = axum::response::Response>,
{
    type Response = axum::response::Response;
    type Error = S::Error;
    type Future = future::SensitiveResponse<WriteBackFuture<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The manager's readiness is the app service's.
        self.managed.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        mark_sensitive(req.headers_mut(), &COOKIE);
        req.extensions_mut().insert(RequestAuth::new(self.state.clone()));
        if req.extensions().get::<Cookies>().is_some() {
            // The app's CookieManagerLayer, outside this one: share its jar. It writes the
            // response's Set-Cookie headers itself, after this layer: marking them sensitive
            // is then up to the app (see the crate docs).
            return future::SensitiveResponse::shared(self.managed.get_mut().call(req));
        }
        future::SensitiveResponse::managed(self.managed.call(req))
    }
}

fn mark_sensitive(headers: &mut HeaderMap, name: &http::HeaderName) {
    // One walk over the handful of headers a request or response has: no hashing, and every
    // value of `name` is found (several `Cookie` headers over HTTP/2), without `entry`, which
    // may grow the map.
    for (n, v) in headers.iter_mut() {
        if n == name {
            v.set_sensitive(true);
        }
    }
}

mod future {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tower_cookies::service::future::ResponseFuture;

    pin_project_lite::pin_project! {
        /// The app's response (through tower-cookies' `CookieManager` when this layer installed
        /// it), with every `Set-Cookie` header marked sensitive.
        pub struct SensitiveResponse<F> {
            #[pin]
            inner: Inner<F>,
        }
    }

    pin_project_lite::pin_project! {
        #[project = InnerProj]
        enum Inner<F> {
            Shared { #[pin] future: F },
            Managed { #[pin] future: ResponseFuture<F> },
        }
    }

    impl<F> SensitiveResponse<F> {
        pub(super) fn shared(future: F) -> Self {
            Self {
                inner: Inner::Shared { future },
            }
        }

        pub(super) fn managed(future: ResponseFuture<F>) -> Self {
            Self {
                inner: Inner::Managed { future },
            }
        }
    }

    impl<F> std::fmt::Debug for SensitiveResponse<F> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("SensitiveResponse")
        }
    }

    impl<F, E> Future for SensitiveResponse<F>
    where
        F: Future<Output = Result<axum::response::Response, E>>,
    {
        type Output = F::Output;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let mut out = std::task::ready!(match self.project().inner.project() {
                InnerProj::Shared { future } => future.poll(cx),
                InnerProj::Managed { future } => future.poll(cx),
            });
            if let Ok(resp) = &mut out {
                super::mark_sensitive(resp.headers_mut(), &super::SET_COOKIE);
            }
            Poll::Ready(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http::{HeaderValue, Request};
    use tower::ServiceExt as _;

    use super::*;
    use crate::state::test_state as state;

    #[tokio::test]
    async fn cookie_headers_are_marked_sensitive() {
        let auth = state(false);
        let app: Router = Router::new()
            .route(
                "/",
                get(|req: Request<Body>| async move {
                    let sensitive = req.headers().get(COOKIE).is_some_and(HeaderValue::is_sensitive);
                    let (parts, _) = req.into_parts();
                    let mut jar =
                        <crate::AxumCookieJar as axum::extract::FromRequestParts<()>>::from_request_parts(
                            &mut { parts },
                            &(),
                        )
                        .await
                        .unwrap();
                    auth_core::cookies::CookieJar::set(&mut jar, "x", "1", &Default::default());
                    sensitive.to_string()
                }),
            )
            .layer(auth.layer());
        let resp = app
            .oneshot(
                Request::get("/")
                    .header(COOKIE, "a=b")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let set_cookie = resp.headers().get(SET_COOKIE).unwrap();
        assert!(set_cookie.is_sensitive());
        let body = axum::body::to_bytes(resp.into_body(), 64).await.unwrap();
        assert_eq!(
            &body[..],
            b"true",
            "the request's Cookie header was marked sensitive"
        );
    }

    #[test]
    fn every_value_of_the_header_is_marked_sensitive_and_no_other() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1"));
        h.append(http::header::ACCEPT, HeaderValue::from_static("*/*"));
        h.append(COOKIE, HeaderValue::from_static("b=2"));
        mark_sensitive(&mut h, &COOKIE);
        assert!(h.get_all(COOKIE).iter().all(HeaderValue::is_sensitive));
        assert_eq!(h.get_all(COOKIE).iter().count(), 2);
        assert!(!h[http::header::ACCEPT].is_sensitive());
    }

    /// The Set-Cookie values of `resp`, as text.
    fn set_cookies(resp: &axum::response::Response) -> Vec<String> {
        resp.headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    async fn body(resp: axum::response::Response) -> String {
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// A handler that writes through both the app's `Cookies` and the library's jar, and
    /// reads each write back through the other.
    async fn both(cookies: tower_cookies::Cookies, mut jar: crate::AxumCookieJar) -> String {
        use auth_core::cookies::CookieJar as _;
        cookies.add(tower_cookies::Cookie::new("app", "1"));
        jar.set("lib", "2", &Default::default());
        jar.remove("gone", &Default::default());
        jar.set("twice", "a", &Default::default());
        jar.set("twice", "b", &Default::default());
        let mut names = jar.names();
        names.sort();
        format!(
            "{:?} {:?} {:?} {:?} {:?}",
            jar.get("app"),
            cookies.get("lib").map(|c| c.value().to_owned()),
            jar.get("gone"),
            jar.get("req"),
            names
        )
    }

    #[tokio::test]
    async fn the_app_and_the_library_share_one_jar() {
        let auth = state(false);
        // The layer installs tower-cookies itself, or reuses the app's CookieManagerLayer
        // installed outside it: the same answers either way, each write sent once.
        let own: Router = Router::new().route("/", get(both)).layer(auth.layer());
        let reused: Router = Router::new()
            .route("/", get(both))
            .layer(auth.layer())
            .layer(tower_cookies::CookieManagerLayer::new());
        for (app, installs) in [(own, true), (reused, false)] {
            let resp = app
                .oneshot(
                    Request::get("/")
                        .header(COOKIE, "req=0; gone=x")
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let mut set = set_cookies(&resp);
            set.sort();
            // Set-Cookie headers written by an outer CookieManagerLayer are added after this
            // layer's response passed: only those it sees can be marked.
            let sensitive = resp
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .all(HeaderValue::is_sensitive);
            assert_eq!(sensitive, installs);
            assert_eq!(set.len(), 4, "{set:?}");
            assert!(set[0].starts_with("app=1"), "{set:?}");
            assert!(
                set[1].starts_with("gone=;") && set[1].contains("Max-Age=0"),
                "{set:?}"
            );
            assert!(set[2].starts_with("lib=2;"), "{set:?}");
            assert!(set[3].starts_with("twice=b;"), "the latest write: {set:?}");
            assert_eq!(
                body(resp).await,
                r#"Some("1") Some("2") None Some("0") ["app", "lib", "req", "twice"]"#
            );
        }
    }

    /// A removal is sent for a cookie the request carried; a cookie added and removed within
    /// the request is never sent. Either way the jar stops showing it at once.
    #[tokio::test]
    async fn removals_are_sent_for_carried_cookies_and_read_at_once() {
        let app: Router = Router::new()
            .route(
                "/",
                get(|mut jar: crate::AxumCookieJar| async move {
                    use auth_core::cookies::CookieJar as _;
                    jar.set("x", "1", &Default::default());
                    jar.remove("x", &Default::default());
                    jar.remove("carried", &Default::default());
                    format!("{:?} {:?} {:?}", jar.get("x"), jar.get("carried"), jar.names())
                }),
            )
            .layer(state(false).layer());
        let resp = app
            .oneshot(
                Request::get("/")
                    .header(COOKIE, "carried=1; kept=2")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let set = set_cookies(&resp);
        assert_eq!(set.len(), 1, "{set:?}");
        assert!(
            set[0].starts_with("carried=;") && set[0].contains("Max-Age=0"),
            "{set:?}"
        );
        assert_eq!(body(resp).await, r#"None None ["kept"]"#);
    }

    /// The names the library's jar sees for a request with these Cookie header values.
    async fn names_seen(values: &[&str]) -> Vec<String> {
        let app: Router = Router::new()
            .route(
                "/",
                get(|jar: crate::AxumCookieJar| async move {
                    use auth_core::cookies::CookieJar as _;
                    jar.names().join(",")
                }),
            )
            .layer(state(false).layer());
        let mut req = Request::get("/");
        for v in values {
            req = req.header(COOKIE, *v);
        }
        let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let mut names: Vec<String> = body(resp)
            .await
            .split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }

    /// tower-cookies' `get` and `list` before any write answer from the headers without
    /// building the jar (vendor/tower-cookies/PATCHED.md): the same answers as the built jar.
    #[tokio::test]
    async fn a_read_before_any_write_sees_what_the_built_jar_sees() {
        const NAMES: [&str; 10] = ["a", "b", "ab", "c", "pct", "q", "name", "bad", "", "missing"];
        let app: Router = Router::new()
            .route(
                "/",
                get(|cookies: tower_cookies::Cookies| async move {
                    let show = |c: Option<tower_cookies::Cookie<'_>>| {
                        c.map(|c| format!("{}={}", c.name(), c.value()))
                    };
                    let lazy: Vec<_> = NAMES.iter().map(|n| show(cookies.get(n))).collect();
                    let lazy_list = listed(&cookies);
                    // A write builds the jar; reads answer from it from then on.
                    cookies.add(tower_cookies::Cookie::new("forced", "1"));
                    let parsed: Vec<_> = NAMES.iter().map(|n| show(cookies.get(n))).collect();
                    assert_eq!(lazy, parsed);
                    assert_eq!(lazy_list, listed(&cookies));
                    format!("{lazy:?} {lazy_list:?}")
                }),
            )
            .layer(state(false).layer());
        let req = Request::get("/")
            .header(COOKIE, " a=1;ab=2; b = 3 ;a=4; junk; =x; pct=%41%42")
            .header(COOKIE, "c=\"quoted\"; q=; n%61me=v ; =; x")
            .header(
                COOKIE,
                HeaderValue::from_bytes(b"bad=\xff; name=skipped").unwrap(),
            )
            .body(Body::empty())
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(
            body(resp).await,
            r#"[Some("a=4"), Some("b=3"), Some("ab=2"), Some("c=\"quoted\""), Some("pct=AB"), Some("q="), Some("name=v"), None, None, None] ["a=4", "ab=2", "b=3", "c=\"quoted\"", "name=v", "pct=AB", "q="]"#
        );
    }

    #[tokio::test]
    async fn several_cookie_headers_are_one_list() {
        assert_eq!(names_seen(&["a=1", "b=2; c=3"]).await, ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn hostile_cookie_headers_are_cut_before_the_jar_parses_them() {
        // Junk and repeated names count: whatever the parts hold, at most MAX_COOKIE_PARTS are
        // handed to the jar, in one header or spread over several.
        for filler in ["junk", "dup=1", ""] {
            let header = std::iter::repeat_n(filler, 4 * MAX_COOKIE_PARTS)
                .collect::<Vec<_>>()
                .join(";")
                + ";late=1";
            assert!(
                !names_seen(&[&header]).await.contains(&"late".to_owned()),
                "{filler:?}"
            );
        }
        let just_inside = std::iter::repeat_n("junk", MAX_COOKIE_PARTS - 1)
            .collect::<Vec<_>>()
            .join(";")
            + ";late=1";
        assert!(names_seen(&[&just_inside]).await.contains(&"late".to_owned()));
        let half = "x;".repeat(MAX_COOKIE_PARTS / 2);
        assert!(
            !names_seen(&[&half, &half, "late=1"])
                .await
                .contains(&"late".to_owned())
        );
        let many: String = (0..1000).map(|i| format!("c{i}={i}; ")).collect();
        assert_eq!(names_seen(&[&many]).await.len(), MAX_COOKIE_PARTS);
    }

    /// The jar's cookies as sorted `name=value` lines, without the `forced` cookie the tests
    /// write to make the jar build itself.
    fn listed(cookies: &tower_cookies::Cookies) -> Vec<String> {
        let mut all: Vec<String> = cookies
            .list()
            .iter()
            .filter(|c| c.name() != "forced")
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect();
        all.sort();
        all
    }

    /// What tower-cookies' jar reads from these Cookie header values when it reads at most
    /// `max` parts: the cookies listed before any write (answered from the headers) and after
    /// one (the built jar), which must agree, and the request's headers as the app sees them.
    async fn read_within(values: &[&[u8]], max: usize) -> (Vec<String>, Vec<Vec<u8>>) {
        let app: Router = Router::new()
            .route(
                "/",
                get(|cookies: tower_cookies::Cookies, headers: HeaderMap| async move {
                    let lazy = listed(&cookies);
                    let mut names = cookies.names();
                    names.sort();
                    cookies.add(tower_cookies::Cookie::new("forced", "1"));
                    assert_eq!(lazy, listed(&cookies), "read before and after a write");
                    let seen: Vec<Vec<u8>> = headers
                        .get_all(COOKIE)
                        .iter()
                        .map(|v| v.as_bytes().to_vec())
                        .collect();
                    let names_listed: Vec<String> = lazy
                        .iter()
                        .map(|c| c.split('=').next().unwrap().to_owned())
                        .collect();
                    assert_eq!(names, names_listed);
                    axum::Json((lazy, seen))
                }),
            )
            .layer(tower_cookies::CookieManagerLayer::new().max_cookie_parts(max));
        let mut req = Request::get("/");
        for v in values {
            req = req.header(COOKIE, HeaderValue::from_bytes(v).unwrap());
        }
        let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        serde_json::from_str(&body(resp).await).unwrap()
    }

    /// The jar reads at most `max_cookie_parts` parts in all, whatever the headers hold; the
    /// request's headers reach the app as they came.
    #[tokio::test]
    async fn a_header_within_the_bound_is_read_whole_and_one_beyond_it_is_cut() {
        let headers: [&[u8]; 2] = [b"a=1; b=2", b"c=3"];
        for (max, expect) in [
            (4, &["a=1", "b=2", "c=3"][..]),
            (3, &["a=1", "b=2", "c=3"]),
            (2, &["a=1", "b=2"]),
            (1, &["a=1"]),
            (0, &[]),
        ] {
            let (read, seen) = read_within(&headers, max).await;
            assert_eq!(read, expect, "max {max}");
            assert_eq!(seen, headers, "the headers are left as they are");
        }
        // A header that is not UTF-8 is skipped; its parts count all the same, and only the
        // parts that are read have to be UTF-8.
        let bad: [&[u8]; 2] = [b"a=1;\xff=2;b=3", b"c=4"];
        assert_eq!(read_within(&bad, 5).await.0, ["c=4"]);
        assert_eq!(read_within(&bad, 3).await.0, Vec::<String>::new());
        assert_eq!(read_within(&bad, 1).await.0, ["a=1"]);
        let late: [&[u8]; 1] = [b"a=1; b%20c=2; ;=x;d=4;\xff"];
        assert_eq!(read_within(&late, 5).await.0, ["a=1", "b c=2", "d=4"]);
        assert_eq!(read_within(&late, 6).await.0, Vec::<String>::new());
    }

    /// tower-cookies checks headers for UTF-8 with `simdutf8` (vendor/tower-cookies/PATCHED.md):
    /// a header is read exactly when `std::str::from_utf8` accepts it, before and after a write,
    /// for the byte sequences validators get wrong (overlong forms, surrogates, code points
    /// past U+10FFFF, truncated sequences at either end of a part, a stray continuation byte).
    #[tokio::test]
    async fn a_header_is_read_exactly_when_std_calls_it_utf8() {
        let values: [&[u8]; 16] = [
            "\u{e9}".as_bytes(),
            "\u{20ac}".as_bytes(),
            "\u{1f600}".as_bytes(),
            b"\xf4\x8f\xbf\xbf",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"\xed\xa0\x80",
            b"\xed\x9f\xbf",
            b"\xe2\x82",
            b"\x82\xac",
            b"\xff",
            b"\xfe",
            b"\xc3",
            b"abc\xc3",
            b"\xa9abc",
        ];
        for value in values {
            let mut header = b"a=1; k=".to_vec();
            header.extend_from_slice(value);
            header.extend_from_slice(b"; z=2");
            let expect: Vec<String> = match std::str::from_utf8(value) {
                Ok(text) => vec!["a=1".into(), format!("k={text}"), "z=2".into()],
                Err(_) => Vec::new(),
            };
            assert_eq!(read_within(&[&header], 10).await.0, expect, "{value:x?}");
        }
    }

    /// Many generated Cookie headers (separators, `=`, `%`, spaces, quotes, bytes that are
    /// not UTF-8, multi-byte characters), read through tower-cookies with a part limit: the
    /// answers from the located header text before any write equal the built jar's.
    #[tokio::test]
    async fn generated_headers_read_the_same_before_and_after_a_write() {
        const PIECES: [&[u8]; 14] = [
            b"a",
            b"b",
            b"ab",
            b"=",
            b"==",
            b";",
            b"; ",
            b" ",
            b"%41",
            b"%",
            b"%ff",
            b"\"q\"",
            "\u{e9}".as_bytes(),
            b"\xff",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..400 {
            let mut headers: Vec<Vec<u8>> = Vec::new();
            for _ in 0..=(next() % 3) {
                let len = next() % 16;
                headers.push(
                    (0..len)
                        .flat_map(|_| PIECES[(next() % 14) as usize].to_vec())
                        .collect(),
                );
            }
            let max = (next() % 8) as usize;
            let cookies = std::sync::Arc::new(std::sync::Mutex::new(None));
            let seen = cookies.clone();
            let svc = tower::service_fn(move |req: Request<Body>| {
                let seen = seen.clone();
                async move {
                    *seen.lock().unwrap() = req.extensions().get::<tower_cookies::Cookies>().cloned();
                    Ok::<_, std::convert::Infallible>(axum::response::Response::new(Body::empty()))
                }
            });
            let mut req = Request::get("/");
            for h in &headers {
                if let Ok(v) = HeaderValue::from_bytes(h) {
                    req = req.header(COOKIE, v);
                }
            }
            tower_cookies::CookieManager::new(svc)
                .max_cookie_parts(max)
                .oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap();
            let jar = cookies.lock().unwrap().take().unwrap();
            let answers = |jar: &tower_cookies::Cookies| {
                let list = listed(jar);
                let gets: Vec<Option<String>> = ["a", "b", "ab", "A", "\u{e9}", "\"q\"", "a b"]
                    .iter()
                    .map(|n| {
                        let with = jar.get_with(n, |c| c.value().to_owned());
                        assert_eq!(with, jar.get(n).map(|c| c.value().to_owned()));
                        with
                    })
                    .collect();
                (list, gets)
            };
            let lazy = answers(&jar);
            let mut names = jar.names();
            names.sort();
            let listed: Vec<&str> = lazy.0.iter().map(|c| c.split_once('=').unwrap().0).collect();
            assert_eq!(names, listed, "{headers:?} within {max}");
            jar.add(tower_cookies::Cookie::new("forced", "1"));
            assert_eq!(lazy, answers(&jar), "{headers:?} within {max}");
        }
    }

    /// `Cookies::get_with` answers as `get` does, before and after a write.
    #[tokio::test]
    async fn get_with_borrows_what_get_copies() {
        let app: Router = Router::new()
            .route(
                "/",
                get(|cookies: tower_cookies::Cookies| async move {
                    let names = ["a", "b", "pct", "missing", "new"];
                    let both = |cookies: &tower_cookies::Cookies| {
                        names
                            .iter()
                            .map(|n| {
                                let got = cookies.get(n).map(|c| format!("{}={}", c.name(), c.value()));
                                let with = cookies.get_with(n, |c| format!("{}={}", c.name(), c.value()));
                                assert_eq!(got, with, "{n}");
                                got
                            })
                            .collect::<Vec<_>>()
                    };
                    let before = both(&cookies);
                    cookies.add(tower_cookies::Cookie::new("new", "3"));
                    cookies.remove(tower_cookies::Cookie::new("b", ""));
                    format!("{before:?} {:?}", both(&cookies))
                }),
            )
            .layer(state(false).layer());
        let req = Request::get("/")
            .header(COOKIE, "a=0; a = 1 ; b=2; pct=%41")
            .body(Body::empty())
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(
            body(resp).await,
            r#"[Some("a=1"), Some("b=2"), Some("pct=A"), None, None] [Some("a=1"), None, Some("pct=A"), None, Some("new=3")]"#
        );
    }
}
