//! [`RequireAuth`]: a tower layer that lets only logged-in users through.
//!
//! Without a session, a browser navigation (`Accept: text/html`) is redirected (`302`) to the
//! login route with `returnTo` set to the original path and query; any other request gets
//! `401` JSON with `WWW-Authenticate`. With a session that fails the layer's
//! [`AuthorizePolicy`] (for example a missing permission claim), the answer is `403`.
//!
//! The layer needs [`crate::AuthState::layer`] applied outside it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use auth_core::UserClaims;
use axum::extract::{OriginalUri, Request};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CACHE_CONTROL, HeaderValue};
use serde_json::json;
use tower::{Layer, Service};

use crate::cookies::AxumCookieJar;
use crate::error::wants_html;
use crate::extract::{load, login_location};
use crate::rejection::{SessionRejection, redirect, unauthorized};
use crate::state::AuthState;

/// Decides whether a logged-in user may pass.
pub trait AuthorizePolicy: Clone + Send + Sync + 'static {
    /// `true` to let the request through, `false` for `403`.
    fn authorize(&self, user: &UserClaims) -> bool;
}

/// The default policy: every logged-in user passes.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyUser;

impl AuthorizePolicy for AnyUser {
    fn authorize(&self, _: &UserClaims) -> bool {
        true
    }
}

/// A policy from a closure over the user's claims.
#[derive(Clone)]
pub struct ClaimPredicate<F>(F);

impl<F> std::fmt::Debug for ClaimPredicate<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClaimPredicate(..)")
    }
}

impl<F> AuthorizePolicy for ClaimPredicate<F>
where
    F: Fn(&UserClaims) -> bool + Clone + Send + Sync + 'static,
{
    fn authorize(&self, user: &UserClaims) -> bool {
        (self.0)(user)
    }
}

/// How unauthenticated requests are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Redirect browsers, 401 for others.
    Negotiate,
    /// Always 401 JSON.
    Api,
    /// Always redirect to login.
    Login,
}

/// The layer; see the [module docs](self).
///
/// ```
/// use auth_axum::RequireAuth;
/// use axum::{Router, routing::get};
///
/// let admin = Router::<()>::new()
///     .route("/admin", get(|| async { "secret" }))
///     .route_layer(RequireAuth::new().with_predicate(|user| {
///         user.get("permissions").and_then(|p| p.as_array()).is_some_and(|p| p.iter().any(|v| v == "admin"))
///     }));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RequireAuth<P = AnyUser> {
    mode: Mode,
    policy: P,
}

impl RequireAuth {
    /// Redirect browser navigations to login; `401` for other requests.
    pub fn new() -> Self {
        Self {
            mode: Mode::Negotiate,
            policy: AnyUser,
        }
    }

    /// Always `401` JSON (APIs).
    pub fn api() -> Self {
        Self {
            mode: Mode::Api,
            policy: AnyUser,
        }
    }

    /// Always redirect to login (pages).
    pub fn login() -> Self {
        Self {
            mode: Mode::Login,
            policy: AnyUser,
        }
    }
}

impl Default for RequireAuth {
    fn default() -> Self {
        Self::new()
    }
}

impl<P> RequireAuth<P> {
    /// Also require `predicate(claims)`; users failing it get `403`.
    pub fn with_predicate<F>(self, predicate: F) -> RequireAuth<ClaimPredicate<F>>
    where
        F: Fn(&UserClaims) -> bool + Clone + Send + Sync + 'static,
    {
        RequireAuth {
            mode: self.mode,
            policy: ClaimPredicate(predicate),
        }
    }

    /// Also require `policy`; users failing it get `403`.
    pub fn with_policy<Q: AuthorizePolicy>(self, policy: Q) -> RequireAuth<Q> {
        RequireAuth {
            mode: self.mode,
            policy,
        }
    }
}

impl<S, P: Clone> Layer<S> for RequireAuth<P> {
    type Service = RequireAuthService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireAuthService {
            inner,
            mode: self.mode,
            policy: self.policy.clone(),
        }
    }
}

/// The service made by [`RequireAuth`].
#[derive(Debug, Clone)]
pub struct RequireAuthService<S, P> {
    inner: S,
    mode: Mode,
    policy: P,
}

impl<S, P> Service<Request> for RequireAuthService<S, P>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    P: AuthorizePolicy,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RequireAuthFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        // Most session reads finish without waiting (an opened-session cache hit, the logout
        // list in memory): poll the read once in place, so the service that was polled ready
        // is called right away. A read that has to wait is dropped and done again in a boxed
        // future (reads, and the writes a read may make, are idempotent).
        let first = {
            let read = std::pin::pin!(load(&mut parts.extensions));
            match read.poll(&mut Context::from_waker(std::task::Waker::noop())) {
                Poll::Ready(loaded) => Some(loaded),
                Poll::Pending => None,
            }
        };
        if let Some(loaded) = first {
            return match admit(self.mode, &self.policy, loaded, &parts) {
                None => RequireAuthFuture::inner(self.inner.call(Request::from_parts(parts, body))),
                Some(answer) => RequireAuthFuture::ready(answer),
            };
        }
        // The clone that was polled ready is the one we call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (mode, policy) = (self.mode, self.policy.clone());
        RequireAuthFuture::boxed(Box::pin(async move {
            let loaded = load(&mut parts.extensions).await;
            if let Some(answer) = admit(mode, &policy, loaded, &parts) {
                return Ok(answer);
            }
            inner.call(Request::from_parts(parts, body)).await
        }))
    }
}

/// The answer to a request that may not pass, given its session read; `None` lets it pass.
fn admit<P: AuthorizePolicy>(
    mode: Mode,
    policy: &P,
    loaded: Result<(AuthState, AxumCookieJar, Option<auth_core::Session>), SessionRejection>,
    parts: &http::request::Parts,
) -> Option<Response> {
    let (state, _, session) = match loaded {
        Ok(loaded) => loaded,
        Err(rejection) => return Some(rejection.into_response()),
    };
    let Some(session) = session else {
        let browser = match mode {
            Mode::Api => false,
            Mode::Login => true,
            Mode::Negotiate => wants_html(&parts.headers),
        };
        if browser {
            let uri = parts
                .extensions
                .get::<OriginalUri>()
                .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
            return Some(redirect(&login_location(&state, &uri)));
        }
        return Some(unauthorized());
    };
    if !policy.authorize(session.user()) {
        return Some(forbidden());
    }
    None
}

pin_project_lite::pin_project! {
    /// The response future of [`RequireAuthService`]: the inner service's future when the
    /// session was at hand, a ready answer, or the boxed session read otherwise.
    pub struct RequireAuthFuture<F> {
        #[pin]
        state: FutureState<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = FutureStateProj]
    enum FutureState<F> {
        Inner { #[pin] future: F },
        Ready { response: Option<Response> },
        Boxed { future: Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>> },
    }
}

impl<F> RequireAuthFuture<F> {
    fn inner(future: F) -> Self {
        Self {
            state: FutureState::Inner { future },
        }
    }

    fn ready(response: Response) -> Self {
        Self {
            state: FutureState::Ready {
                response: Some(response),
            },
        }
    }

    fn boxed(future: Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>) -> Self {
        Self {
            state: FutureState::Boxed { future },
        }
    }
}

impl<F> std::fmt::Debug for RequireAuthFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequireAuthFuture")
    }
}

impl<F> Future for RequireAuthFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            FutureStateProj::Inner { future } => future.poll(cx),
            FutureStateProj::Ready { response } => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                // Polled again after completing: a contract violation by the caller.
                None => Poll::Ready(Ok(StatusCode::INTERNAL_SERVER_ERROR.into_response())),
            },
            FutureStateProj::Boxed { future } => future.as_mut().poll(cx),
        }
    }
}

fn forbidden() -> Response {
    let mut r = axum::Json(
        json!({"error": "forbidden", "error_description": "You do not have access to this resource."}),
    )
    .into_response();
    *r.status_mut() = StatusCode::FORBIDDEN;
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
