//! The application's hooks on the `/auth/*` routes and on session saves, configured in
//! [`AuthOptions`](crate::AuthOptions):
//!
//! | hook | runs | may |
//! |---|---|---|
//! | [`before_session_saved`](crate::AuthOptions::before_session_saved) | before a login, refresh, link or unlink writes the session | edit claims and app data; abort the save |
//! | [`on_callback`](crate::AuthOptions::on_callback) | after `{base}/callback` completed (or failed) | answer with its own response |
//! | [`on_logout`](crate::AuthOptions::on_logout) | after `{base}/logout` ended a session | purge app data (errors are logged) |
//! | [`on_backchannel_logout`](crate::AuthOptions::on_backchannel_logout) | after `{base}/backchannel-logout` ended sessions | purge app data (errors are logged) |
//!
//! Every hook is an async closure that sees the request head ([`RequestHead`]: method, URI,
//! headers, extensions). Hooks get no app state argument: capture what they need, typically an
//! `Arc<AppState>` (cloned into each call's future).
//!
//! ```
//! use std::sync::Arc;
//! use auth_axum::{AuthOptions, CallbackEvent};
//! use auth_core::HookError;
//! use axum::response::{Html, IntoResponse, Redirect};
//!
//! struct AppState { audit: std::sync::Mutex<Vec<String>> }
//!
//! let app = Arc::new(AppState { audit: Default::default() });
//! let on_logout = app.clone();
//! let options = AuthOptions::new()
//!     .on_callback(|event: CallbackEvent| async move {
//!         match event.error() {
//!             // The app's own error page; `error.inner().code()` says what failed.
//!             Some(error) => Html(format!("<h1>Sign-in failed</h1><p>{}</p>", error.inner().code()))
//!                 .into_response(),
//!             None if event.app_state().and_then(|s| s.get("signup")).is_some() => {
//!                 Redirect::to("/welcome").into_response()
//!             }
//!             None => event.default_response(),
//!         }
//!     })
//!     .on_logout(move |event| {
//!         let app = on_logout.clone();
//!         async move {
//!             app.audit.lock().map_err(|_| HookError::new("audit log poisoned"))?
//!                 .push(format!("logout {}", event.sub().unwrap_or("?")));
//!             Ok(())
//!         }
//!     });
//! # let _ = options;
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use auth_core::{BackchannelLogout, CallbackOutcome, HookError, ServerClient, SessionSave, SessionSnapshot};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{Extensions, HeaderMap, Method, Uri};
use serde_json::Value;

use crate::error::AuthError;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type SaveHookFn =
    Arc<dyn Fn(SessionSave, RequestHead) -> BoxFuture<Result<SessionSave, HookError>> + Send + Sync>;
type CallbackHookFn = Arc<dyn Fn(CallbackEvent) -> BoxFuture<Response> + Send + Sync>;
type LogoutHookFn = Arc<dyn Fn(LogoutEvent) -> BoxFuture<Result<(), HookError>> + Send + Sync>;
type BackchannelHookFn =
    Arc<dyn Fn(BackchannelLogoutEvent) -> BoxFuture<Result<(), HookError>> + Send + Sync>;

/// The hooks configured in [`AuthOptions`](crate::AuthOptions) (each optional).
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) before_session_saved: Option<SaveHookFn>,
    pub(crate) on_callback: Option<CallbackHookFn>,
    pub(crate) on_logout: Option<LogoutHookFn>,
    pub(crate) on_backchannel_logout: Option<BackchannelHookFn>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("before_session_saved", &self.before_session_saved.is_some())
            .field("on_callback", &self.on_callback.is_some())
            .field("on_logout", &self.on_logout.is_some())
            .field("on_backchannel_logout", &self.on_backchannel_logout.is_some())
            .finish()
    }
}

/// The head of the request a hook runs for: method, URI, headers and extensions (a copy,
/// cheap to clone).
///
/// `Debug` shows the method and path only (headers hold cookies, the query may hold a code).
#[derive(Clone)]
pub struct RequestHead(Arc<Parts>);

impl RequestHead {
    pub(crate) fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }

    /// A copy of `parts`.
    pub(crate) fn of(parts: &Parts) -> Self {
        Self::new(parts.clone())
    }

    /// The request method.
    #[must_use]
    pub fn method(&self) -> &Method {
        &self.0.method
    }

    /// The request URI (as routed; `axum::extract::OriginalUri` in the extensions holds the
    /// URI before nesting).
    #[must_use]
    pub fn uri(&self) -> &Uri {
        &self.0.uri
    }

    /// The request headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.0.headers
    }

    /// The request extensions (what the app's layers put there, e.g. a request id or a
    /// database handle).
    #[must_use]
    pub fn extensions(&self) -> &Extensions {
        &self.0.extensions
    }
}

impl Default for RequestHead {
    /// An empty head (`GET /`, no headers): what a hook sees for a flow called with a jar made
    /// outside a request.
    fn default() -> Self {
        Self::new(http::Request::new(()).into_parts().0)
    }
}

impl fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", self.method())
            .field("path", &self.uri().path())
            .finish_non_exhaustive()
    }
}

/// What [`AuthOptions::on_callback`](crate::AuthOptions::on_callback) gets: the callback's outcome (or typed error), the
/// request, and where the default answer would redirect.
pub struct CallbackEvent {
    request: RequestHead,
    result: Result<CallbackOutcome, AuthError>,
    return_to: String,
}

impl fmt::Debug for CallbackEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackEvent")
            .field("request", &self.request)
            .field("ok", &self.result.is_ok())
            .field("error", &self.result.as_ref().err().map(|e| e.inner().code()))
            .field("return_to", &self.return_to)
            .finish()
    }
}

impl CallbackEvent {
    pub(crate) fn new(
        request: RequestHead,
        result: Result<CallbackOutcome, AuthError>,
        return_to: String,
    ) -> Self {
        Self {
            request,
            result,
            return_to,
        }
    }

    /// The callback request.
    #[must_use]
    pub fn request(&self) -> &RequestHead {
        &self.request
    }

    /// What the callback completed (a login, link, unlink or connect), or why it failed.
    ///
    /// # Errors
    /// The typed error of a failed callback: [`AuthError::inner`] is the core error
    /// (`invalid_state`, `authorization_error` for a provider error, `hook_refused`, …).
    pub fn result(&self) -> Result<&CallbackOutcome, &AuthError> {
        self.result.as_ref()
    }

    /// The error, when the callback failed (the session is unchanged then).
    #[must_use]
    pub fn error(&self) -> Option<&AuthError> {
        self.result.as_ref().err()
    }

    /// The `app_state` the flow was started with (the routes put `{"returnTo": "/…"}` there).
    #[must_use]
    pub fn app_state(&self) -> Option<&Value> {
        self.result.as_ref().ok()?.app_state()
    }

    /// RAR `authorization_details` granted with a login, when the token response had them.
    #[must_use]
    pub fn authorization_details(&self) -> Option<&Value> {
        match self.result.as_ref().ok()? {
            CallbackOutcome::Login(r) => r.authorization_details.as_ref(),
            _ => None,
        }
    }

    /// Where the default answer redirects after a success: the sanitized `returnTo`, else
    /// [`AuthOptions::default_return_to`](crate::AuthOptions::default_return_to).
    #[must_use]
    pub fn return_to(&self) -> &str {
        &self.return_to
    }

    /// The outcome, by value.
    ///
    /// # Errors
    /// As [`CallbackEvent::result`].
    pub fn into_result(self) -> Result<CallbackOutcome, AuthError> {
        self.result
    }

    /// The answer the callback gives without a hook: a redirect to [`return_to`](Self::return_to)
    /// on success, else the error page or JSON (negotiated on `Accept`).
    #[must_use]
    pub fn default_response(self) -> Response {
        match self.result {
            Ok(_) => crate::rejection::redirect(&self.return_to),
            Err(e) => e.into_response(),
        }
    }
}

/// What [`AuthOptions::on_logout`](crate::AuthOptions::on_logout) gets: the session that `{base}/logout` just ended.
#[derive(Debug, Clone)]
pub struct LogoutEvent {
    request: RequestHead,
    session: SessionSnapshot,
}

impl LogoutEvent {
    /// The logout request.
    #[must_use]
    pub fn request(&self) -> &RequestHead {
        &self.request
    }

    /// The ended session as it was (claims, app data, `sid`).
    #[must_use]
    pub fn session(&self) -> &SessionSnapshot {
        &self.session
    }

    /// The user's `sub`.
    #[must_use]
    pub fn sub(&self) -> Option<&str> {
        self.session.sub()
    }

    /// The ended session's `sid`.
    #[must_use]
    pub fn sid(&self) -> &str {
        self.session.sid()
    }
}

/// What [`AuthOptions::on_backchannel_logout`](crate::AuthOptions::on_backchannel_logout) gets: what a valid logout token named and what
/// was ended.
#[derive(Debug, Clone)]
pub struct BackchannelLogoutEvent {
    request: RequestHead,
    logout: BackchannelLogout,
}

impl BackchannelLogoutEvent {
    /// The provider's back-channel request.
    #[must_use]
    pub fn request(&self) -> &RequestHead {
        &self.request
    }

    /// The `sid` the logout token named (that session ended), if any.
    #[must_use]
    pub fn sid(&self) -> Option<&str> {
        self.logout.sid.as_deref()
    }

    /// The `sub` the logout token named (without a `sid`: every session of this user ended).
    #[must_use]
    pub fn sub(&self) -> Option<&str> {
        self.logout.sub.as_deref()
    }

    /// What the core library reported (stored sessions deleted, for server-side sessions).
    #[must_use]
    pub fn logout(&self) -> &BackchannelLogout {
        &self.logout
    }
}

/// The client with the options' `before_session_saved` hook installed (the request head
/// reaches it through the jar's hook context).
pub(crate) fn install(client: ServerClient, hooks: &Hooks) -> ServerClient {
    let Some(hook) = hooks.before_session_saved.clone() else {
        return client;
    };
    client.with_before_session_saved(move |save| {
        let head = save.context::<RequestHead>().cloned().unwrap_or_default();
        hook(save, head)
    })
}

/// Runs `on_logout`, if set, for the ended `session`; errors are logged.
pub(crate) async fn on_logout(hooks: &Hooks, request: RequestHead, session: SessionSnapshot) {
    if let Some(hook) = &hooks.on_logout
        && let Err(e) = hook(LogoutEvent { request, session }).await
    {
        log_failure("on_logout", &e);
    }
}

/// Runs `on_backchannel_logout`, if set; errors are logged.
pub(crate) async fn on_backchannel_logout(hooks: &Hooks, request: RequestHead, logout: BackchannelLogout) {
    if let Some(hook) = &hooks.on_backchannel_logout
        && let Err(e) = hook(BackchannelLogoutEvent { request, logout }).await
    {
        log_failure("on_backchannel_logout", &e);
    }
}

fn log_failure(hook: &'static str, e: &HookError) {
    tracing::warn!(
        hook,
        code = e.code(),
        reason = %e,
        "hook failed; the logout completed all the same"
    );
}

#[cfg(test)]
mod tests {
    use crate::AuthOptions;
    use auth_core::cookies::CookieJar as _;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http::Request;
    use tower::ServiceExt as _;

    use super::*;
    use crate::AxumCookieJar;
    use crate::state::test_state_with;

    /// What the jar of a `GET /where?x=1` hands to hooks, under `options`.
    async fn jar_context(options: AuthOptions) -> String {
        let auth = test_state_with(options);
        let app: Router = Router::new()
            .route(
                "/where",
                get(|jar: AxumCookieJar| async move {
                    match jar.hook_context() {
                        None => "none".to_owned(),
                        Some(c) => c
                            .downcast_ref::<RequestHead>()
                            .map_or("other".to_owned(), |h| format!("{} {}", h.method(), h.uri())),
                    }
                }),
            )
            .layer(auth.layer());
        let resp = app
            .oneshot(Request::get("/where?x=1").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_request_head_rides_in_the_jar_only_with_a_save_hook() {
        assert_eq!(jar_context(AuthOptions::new()).await, "none");
        assert_eq!(
            jar_context(AuthOptions::new().on_logout(|_| async { Ok(()) })).await,
            "none",
            "other hooks do not need it"
        );
        let with_hook = AuthOptions::new().before_session_saved(|save, _| async { Ok(save) });
        assert_eq!(jar_context(with_hook).await, "GET /where?x=1");
    }

    #[test]
    fn request_head_debug_shows_no_headers_or_query() {
        let (parts, ()) = Request::get("/auth/callback?code=secret-code")
            .header("cookie", "session=secret-cookie")
            .body(())
            .unwrap()
            .into_parts();
        let shown = format!("{:?}", RequestHead::new(parts));
        assert!(shown.contains("/auth/callback"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
