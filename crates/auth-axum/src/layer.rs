//! [`AuthLayer`]: makes the [`AuthState`] and the request's cookie writes available to every
//! request, puts those writes on the response, and marks `Cookie`/`Set-Cookie` sensitive.

use std::task::{Context, Poll};

use axum::extract::Request;
use http::HeaderMap;
use http::header::{COOKIE, SET_COOKIE};
use tower::{Layer, Service};

use crate::request::ResponseCookies;
use crate::state::AuthState;

impl AuthState {
    /// The layer that every route using `Session` or `RequireAuth` must sit under: it parses
    /// cookies once, writes cookie changes to the response, makes this state available, and
    /// marks `Cookie`/`Set-Cookie` headers sensitive so traces never print them.
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

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service made by [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    state: AuthState,
}

impl<S, B> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = axum::response::Response>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = future::SensitiveResponse<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        mark_sensitive(req.headers_mut(), &COOKIE);
        let writes = ResponseCookies::default();
        req.extensions_mut().insert(crate::request::RequestAuth::new(
            self.state.clone(),
            writes.clone(),
        ));
        future::SensitiveResponse {
            inner: self.inner.call(req),
            writes,
        }
    }
}

fn mark_sensitive(headers: &mut HeaderMap, name: &http::HeaderName) {
    // One value (HTTP/1.1, where browsers send one Cookie header) is marked without `entry`,
    // which may grow the map.
    let mut values = headers.get_all(name).iter();
    if values.next().is_none() {
        return;
    }
    if values.next().is_none() {
        if let Some(v) = headers.get_mut(name) {
            v.set_sensitive(true);
        }
        return;
    }
    if let http::header::Entry::Occupied(mut e) = headers.entry(name) {
        for v in e.iter_mut() {
            v.set_sensitive(true);
        }
    }
}

mod future {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pin_project_lite::pin_project! {
        /// Puts the request's cookie writes on the response as `Set-Cookie` headers, and
        /// marks every `Set-Cookie` header sensitive.
        pub struct SensitiveResponse<F> {
            #[pin]
            pub(super) inner: F,
            pub(super) writes: crate::request::ResponseCookies,
        }
    }

    impl<F, E> Future for SensitiveResponse<F>
    where
        F: Future<Output = Result<axum::response::Response, E>>,
    {
        type Output = F::Output;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.project();
            let mut out = std::task::ready!(this.inner.poll(cx));
            if let Ok(resp) = &mut out {
                let headers = resp.headers_mut();
                for value in this.writes.take_headers() {
                    headers.append(super::SET_COOKIE, value);
                }
                super::mark_sensitive(headers, &super::SET_COOKIE);
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
}
