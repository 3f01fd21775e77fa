//! [`RequireAuth`]: a tower layer that lets only logged-in users through.
//!
//! Without a session, a browser navigation (`Accept: text/html`) is redirected (`302`) to the
//! login route with `returnTo` set to the original path and query (and the layer's
//! [`login_param`](RequireAuth::login_param)s); any other request gets `401` (JSON with
//! `WWW-Authenticate`). With a session that fails the layer's [`AuthorizePolicy`] (for
//! example a missing permission claim, or a role the app's database does not grant), the
//! answer is `403` (JSON, or an HTML page for a browser). The app can replace both answers
//! with [`AuthOptions::responses`](crate::AuthOptions::responses).
//!
//! The layer needs [`crate::AuthState::layer`] applied outside it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use auth_core::UserClaims;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use tower::{Layer, Service};

use crate::cookies::AxumCookieJar;
use crate::error::wants_html;
use crate::extract::load;
use crate::rejection::{SessionRejection, redirect};
use crate::request::original_uri;
use crate::responses::{forbidden, unauthenticated};
use crate::state::AuthState;

/// Decides whether a logged-in user may pass; users it refuses get `403`.
///
/// `authorize` may wait (a database or a policy service) and sees the request's head
/// (method, URI, headers, extensions — e.g. what an outer middleware put there). A policy
/// that can always answer without waiting also implements
/// [`authorize_now`](AuthorizePolicy::authorize_now), which spares a boxed future per request
/// ([`RequireAuth::with_predicate`] does).
///
/// A role check against the app's database:
///
/// ```
/// use std::future::Future;
/// use std::sync::Arc;
///
/// use auth_axum::RequireAuth;
/// use auth_axum::require_auth::AuthorizePolicy;
/// use auth_core::UserClaims;
/// use axum::{Router, routing::get};
/// use http::request::Parts;
///
/// /// The app's user store (a database pool in a real app).
/// struct Db;
/// impl Db {
///     async fn has_role(&self, sub: &str, role: &str) -> bool {
///         sub == "auth0|alice" && role == "admin"
///     }
/// }
///
/// #[derive(Clone)]
/// struct HasRole {
///     db: Arc<Db>,
///     role: &'static str,
/// }
///
/// impl AuthorizePolicy for HasRole {
///     fn authorize(&self, user: &UserClaims, _parts: &Parts) -> impl Future<Output = bool> + Send {
///         let (db, role) = (self.db.clone(), self.role);
///         let sub = user.get("sub").and_then(|s| s.as_str()).map(str::to_owned);
///         async move {
///             match sub {
///                 Some(sub) => db.has_role(&sub, role).await,
///                 None => false,
///             }
///         }
///     }
/// }
///
/// let admin = Router::<()>::new()
///     .route("/admin", get(|| async { "admin area" }))
///     .route_layer(RequireAuth::new().with_policy(HasRole { db: Arc::new(Db), role: "admin" }));
/// # let _ = admin;
/// ```
pub trait AuthorizePolicy: Clone + Send + Sync + 'static {
    /// `true` to let the request through, `false` for `403`.
    fn authorize(&self, user: &UserClaims, parts: &Parts) -> impl Future<Output = bool> + Send;

    /// The answer when the policy has it without waiting (default `None`: [`authorize`] is
    /// awaited). When `Some`, `authorize` is not called.
    ///
    /// [`authorize`]: AuthorizePolicy::authorize
    fn authorize_now(&self, user: &UserClaims, parts: &Parts) -> Option<bool> {
        let _ = (user, parts);
        None
    }
}

/// The default policy: every logged-in user passes.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyUser;

impl AuthorizePolicy for AnyUser {
    fn authorize(&self, _: &UserClaims, _: &Parts) -> impl Future<Output = bool> + Send {
        std::future::ready(true)
    }

    fn authorize_now(&self, _: &UserClaims, _: &Parts) -> Option<bool> {
        Some(true)
    }
}

/// A policy from a closure over the user's claims (see [`RequireAuth::with_predicate`]).
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
    fn authorize(&self, user: &UserClaims, _: &Parts) -> impl Future<Output = bool> + Send {
        std::future::ready((self.0)(user))
    }

    fn authorize_now(&self, user: &UserClaims, _: &Parts) -> Option<bool> {
        Some((self.0)(user))
    }
}

/// How unauthenticated requests are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Redirect browsers, 401 for others.
    Negotiate,
    /// Always 401.
    Api,
    /// Always redirect to login.
    Login,
}

/// Where a [`RequireAuth`] sends users to log in, when not the login route as it is.
#[derive(Debug, Clone, Default)]
struct LoginRedirect {
    /// A relative path replacing `{base}/login`.
    url: Option<String>,
    /// Query parameters added after `returnTo`.
    params: Vec<(String, String)>,
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
    login: Option<Arc<LoginRedirect>>,
}

impl RequireAuth {
    /// Redirect browser navigations to login; `401` for other requests.
    pub fn new() -> Self {
        Self::with_mode(Mode::Negotiate)
    }

    /// Never redirect: `401` for every request without a session (JSON, or an HTML page for a
    /// browser; see [`AuthOptions::responses`](crate::AuthOptions::responses)). For APIs.
    pub fn api() -> Self {
        Self::with_mode(Mode::Api)
    }

    /// Always redirect to login (pages).
    pub fn login() -> Self {
        Self::with_mode(Mode::Login)
    }

    fn with_mode(mode: Mode) -> Self {
        Self {
            mode,
            policy: AnyUser,
            login: None,
        }
    }
}

impl Default for RequireAuth {
    fn default() -> Self {
        Self::new()
    }
}

impl<P> RequireAuth<P> {
    /// Also require `predicate(claims)`; users failing it get `403`. For checks that need
    /// the request or have to wait, see [`with_policy`](Self::with_policy).
    pub fn with_predicate<F>(self, predicate: F) -> RequireAuth<ClaimPredicate<F>>
    where
        F: Fn(&UserClaims) -> bool + Clone + Send + Sync + 'static,
    {
        self.with_policy(ClaimPredicate(predicate))
    }

    /// Also require `policy` (which may wait, e.g. on a database, and sees the request's
    /// head); users failing it get `403`. See [`AuthorizePolicy`].
    pub fn with_policy<Q: AuthorizePolicy>(self, policy: Q) -> RequireAuth<Q> {
        RequireAuth {
            mode: self.mode,
            policy,
            login: self.login,
        }
    }

    /// Send users without a session to this login URL instead of the login route (e.g. the
    /// app's own sign-in page, which then links to `{base}/login`). `returnTo` and the
    /// [`login_param`](Self::login_param)s are added to its query.
    ///
    /// ```
    /// use auth_axum::RequireAuth;
    ///
    /// let layer = RequireAuth::login().login_url("/signin");
    /// # let _ = layer;
    /// ```
    ///
    /// # Panics
    /// When `path` is not a relative path on this site (`/…`; no scheme, host, `//` or
    /// backslash): a configuration mistake found when the router is built.
    pub fn login_url(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        let checked = crate::return_to::sanitize(&path)
            .filter(|p| path.starts_with('/') && !p.contains('#'))
            .unwrap_or_else(|| {
                panic!("RequireAuth::login_url: `{path}` is not a relative path such as `/signin`")
            });
        Arc::make_mut(self.login.get_or_insert_default()).url = Some(checked);
        self
    }

    /// Add `name=value` to the login redirect's query, after `returnTo` — for example
    /// `screen_hint=signup` for a sign-up page, or `acr_values` for a step-up login. On the way
    /// to the provider these pass through the login route like any query parameter: only names
    /// on [`AuthOptions::login_params`](crate::AuthOptions::login_params) are forwarded (add
    /// the opt-in ones you use, e.g. `acr_values`), and a name the client pins never is.
    ///
    /// ```
    /// use auth_axum::{AuthOptions, LOGIN_HINTS, RequireAuth};
    ///
    /// let signup = RequireAuth::login().login_param("screen_hint", "signup");
    /// let step_up = RequireAuth::login().login_param("acr_values", "http://schemas.openid.net/pape/policies/2007/06/multi-factor");
    /// // `acr_values` is opt-in on the login route:
    /// let options = AuthOptions::new().login_params(LOGIN_HINTS.iter().copied().chain(["acr_values"]));
    /// # let _ = (signup, step_up, options);
    /// ```
    pub fn login_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        Arc::make_mut(self.login.get_or_insert_default())
            .params
            .push((name.into(), value.into()));
        self
    }
}

impl<S, P: Clone> Layer<S> for RequireAuth<P> {
    type Service = RequireAuthService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireAuthService {
            inner,
            mode: self.mode,
            policy: self.policy.clone(),
            login: self.login.clone(),
        }
    }
}

/// The service made by [`RequireAuth`].
#[derive(Debug, Clone)]
pub struct RequireAuthService<S, P> {
    inner: S,
    mode: Mode,
    policy: P,
    login: Option<Arc<LoginRedirect>>,
}

/// What the layer does with a request once its session is read.
enum Admission {
    /// Let it through.
    Pass,
    /// Answer it.
    Answer(Response),
    /// Await the policy on this session.
    AskPolicy(AuthState, auth_core::SessionSnapshot),
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
        // future (reads, and the writes a read may make, are idempotent); so is a policy that
        // has to wait.
        let first = {
            let read = std::pin::pin!(load(&mut parts.extensions));
            match read.poll(&mut Context::from_waker(std::task::Waker::noop())) {
                Poll::Ready(loaded) => Some(loaded),
                Poll::Pending => None,
            }
        };
        let asked = match first.map(|loaded| self.admit(loaded, &parts)) {
            Some(Admission::Pass) => {
                return RequireAuthFuture::inner(self.inner.call(Request::from_parts(parts, body)));
            }
            Some(Admission::Answer(answer)) => return RequireAuthFuture::ready(answer),
            Some(Admission::AskPolicy(state, session)) => Some((state, session)),
            None => None,
        };
        // The clone that was polled ready is the one we call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let this = RequireAuthService {
            inner: (),
            mode: self.mode,
            policy: self.policy.clone(),
            login: self.login.clone(),
        };
        RequireAuthFuture::boxed(Box::pin(async move {
            let (state, session) = match asked {
                Some(asked) => asked,
                None => match this.admit(load(&mut parts.extensions).await, &parts) {
                    Admission::Pass => return inner.call(Request::from_parts(parts, body)).await,
                    Admission::Answer(answer) => return Ok(answer),
                    Admission::AskPolicy(state, session) => (state, session),
                },
            };
            if this.policy.authorize(session.user(), &parts).await {
                drop(session);
                inner.call(Request::from_parts(parts, body)).await
            } else {
                Ok(forbidden(&state, &parts))
            }
        }))
    }
}

impl<S, P: AuthorizePolicy> RequireAuthService<S, P> {
    /// What to do with a request, given its session read.
    fn admit(
        &self,
        loaded: Result<(AuthState, AxumCookieJar, Option<auth_core::SessionSnapshot>), SessionRejection>,
        parts: &Parts,
    ) -> Admission {
        let (state, _, session) = match loaded {
            Ok(loaded) => loaded,
            Err(rejection) => return Admission::Answer(rejection.into_response()),
        };
        let Some(session) = session else {
            let browser = match self.mode {
                Mode::Api => false,
                Mode::Login => true,
                Mode::Negotiate => wants_html(&parts.headers),
            };
            return Admission::Answer(if browser {
                redirect(&self.login_location(&state, parts))
            } else {
                unauthenticated(&state, parts)
            });
        };
        match self.policy.authorize_now(session.user(), parts) {
            Some(true) => Admission::Pass,
            Some(false) => Admission::Answer(forbidden(&state, parts)),
            None => Admission::AskPolicy(state, session),
        }
    }

    /// The login URL (the route, or [`RequireAuth::login_url`]) with `returnTo` set to the
    /// requested path and query, then the layer's login parameters.
    fn login_location(&self, state: &AuthState, parts: &Parts) -> String {
        let uri = original_uri(parts);
        let Some(login) = &self.login else {
            return state.login_location(&uri);
        };
        let back = uri.path_and_query().map_or("/", http::uri::PathAndQuery::as_str);
        let back = crate::return_to::sanitize(back).unwrap_or_else(|| "/".into());
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("returnTo", &back);
        for (name, value) in &login.params {
            query.append_pair(name, value);
        }
        let path = login.url.clone().unwrap_or_else(|| state.path("login"));
        let separator = if path.contains('?') { '&' } else { '?' };
        format!("{path}{separator}{}", query.finish())
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RequireAuthService`]: the inner service's future when the
    /// session was at hand, a ready answer, or the boxed session read (or policy) otherwise.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_url_takes_relative_paths_only() {
        let layer = RequireAuth::login()
            .login_url("/signin?from=guard")
            .login_param("screen_hint", "signup");
        let login = layer.login.as_deref().unwrap();
        assert_eq!(login.url.as_deref(), Some("/signin?from=guard"));
        assert_eq!(login.params, [("screen_hint".to_owned(), "signup".to_owned())]);
        // Clones share the redirect; a later change does not leak into earlier clones.
        let more = layer.clone().login_param("acr_values", "x");
        assert_eq!(layer.login.as_deref().unwrap().params.len(), 1);
        assert_eq!(more.login.as_deref().unwrap().params.len(), 2);
        for bad in [
            "https://evil.example/signin",
            "//evil.example",
            "signin",
            "/\\evil",
            "javascript:x",
            "",
        ] {
            let result = std::panic::catch_unwind(|| RequireAuth::login().login_url(bad));
            assert!(result.is_err(), "{bad}");
        }
    }
}
