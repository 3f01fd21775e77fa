//! [`AuthResponses`]: the `401` and `403` answers of [`crate::RequireAuth`] and of the
//! [`crate::Session`] extractor, which the app may replace.
//!
//! By default both negotiate on the request's `Accept` header like the other errors: an HTML
//! page for a browser navigation (`Accept: text/html`), else the JSON body
//! `{"error": "unauthorized" | "forbidden", "error_description": …}`; both carry
//! `Cache-Control: no-store`, and the `401` a `WWW-Authenticate` header.

use std::sync::Arc;

use axum::response::Response;
use http::StatusCode;
use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::request::Parts;

use crate::error::{html_page as page, json_error, wants_html};
use crate::rejection::UNAUTHENTICATED_TEXT;
use crate::state::{AuthOptions, CustomResponses};

/// The `error_description` of the default `403`.
const FORBIDDEN_TEXT: &str = "You do not have access to this resource.";

/// The answers to a request without a session (`401`) and to a user a
/// [`RequireAuth`](crate::RequireAuth) policy refuses (`403`). Set with
/// [`AuthOptions::responses`](crate::AuthOptions::responses); each method defaults to
/// [`DefaultResponses`], so implement only the one to change. Both get the request's head
/// (method, URI, headers, extensions) and run on the request path: keep them quick (render a
/// template, no I/O).
///
/// `unauthenticated` answers wherever the library would answer `401`: [`crate::Session`]
/// extraction without a session (with the default
/// [`Unauthenticated::Json`](crate::Unauthenticated::Json)) and `RequireAuth` for a request it
/// does not redirect to login ([`RequireAuth::api`](crate::RequireAuth::api), or a non-browser
/// request to [`RequireAuth::new`](crate::RequireAuth::new)). The login redirects themselves
/// are not replaced (see [`RequireAuth::login_url`](crate::RequireAuth::login_url)).
///
/// ```
/// use auth_axum::{AuthOptions, AuthResponses, DefaultResponses};
/// use axum::response::{Html, IntoResponse, Response};
/// use http::{StatusCode, request::Parts};
///
/// /// The app's own 403 page for browsers; JSON clients keep the library's answer.
/// struct AppPages;
///
/// impl AuthResponses for AppPages {
///     fn forbidden(&self, parts: &Parts) -> Response {
///         let html = parts.headers.get("accept")
///             .and_then(|v| v.to_str().ok())
///             .is_some_and(|a| a.contains("text/html"));
///         if !html {
///             return DefaultResponses.forbidden(parts);
///         }
///         (StatusCode::FORBIDDEN, Html("<h1>Admins only</h1><a href=\"/\">Back</a>")).into_response()
///     }
/// }
///
/// let options = AuthOptions::new().responses(AppPages);
/// # let _ = options;
/// ```
pub trait AuthResponses: Send + Sync + 'static {
    /// The answer to a request that needs a session and has none (default: `401`, negotiated;
    /// see [`DefaultResponses`]).
    fn unauthenticated(&self, parts: &Parts) -> Response {
        DefaultResponses.unauthenticated(parts)
    }

    /// The answer to a logged-in user the route's policy refuses (default: `403`, negotiated;
    /// see [`DefaultResponses`]).
    fn forbidden(&self, parts: &Parts) -> Response {
        DefaultResponses.forbidden(parts)
    }
}

/// The library's own answers, for an [`AuthResponses`] implementation to fall back on.
///
/// - `unauthenticated`: `401` with `WWW-Authenticate: Cookie realm="app"` and
///   `{"error": "unauthorized", "error_description": "Log in to access this resource."}`, or,
///   for a request that prefers HTML, a page saying so with a link to the login route that
///   returns to the requested path;
/// - `forbidden`: `403` with
///   `{"error": "forbidden", "error_description": "You do not have access to this resource."}`,
///   or an HTML page saying so.
///
/// ```
/// use auth_axum::{AuthResponses, DefaultResponses};
///
/// let (parts, ()) = http::Request::get("/admin").header("accept", "text/html").body(()).unwrap().into_parts();
/// let page = DefaultResponses.forbidden(&parts);
/// assert_eq!(page.status(), 403);
/// assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultResponses;

impl AuthResponses for DefaultResponses {
    fn unauthenticated(&self, parts: &Parts) -> Response {
        let mut r = if wants_html(&parts.headers) {
            let login = parts
                .extensions
                .get::<crate::request::RequestAuth>()
                .map(|auth| auth.state.login_location(&crate::request::original_uri(parts)));
            let link = login
                .map(|href| format!("<p><a href=\"{}\">Log in</a></p>", escape(&href)))
                .unwrap_or_default();
            page(
                StatusCode::UNAUTHORIZED,
                "Log in required",
                UNAUTHENTICATED_TEXT,
                "unauthorized",
                &link,
            )
        } else {
            json_error(StatusCode::UNAUTHORIZED, "unauthorized", UNAUTHENTICATED_TEXT)
        };
        r.headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Cookie realm=\"app\""));
        r
    }

    fn forbidden(&self, parts: &Parts) -> Response {
        if wants_html(&parts.headers) {
            page(
                StatusCode::FORBIDDEN,
                "Access denied",
                FORBIDDEN_TEXT,
                "forbidden",
                "",
            )
        } else {
            json_error(StatusCode::FORBIDDEN, "forbidden", FORBIDDEN_TEXT)
        }
    }
}

impl AuthOptions {
    /// Replaces the `401` and `403` answers of [`RequireAuth`](crate::RequireAuth) and of the
    /// [`Session`](crate::Session) extractor (default [`DefaultResponses`](crate::DefaultResponses):
    /// JSON, or an HTML page for browsers). See [`AuthResponses`](crate::AuthResponses).
    pub fn responses(mut self, responses: impl AuthResponses) -> Self {
        let responses = Arc::new(responses);
        let forbidden = responses.clone();
        self.responses = Some(CustomResponses {
            unauthenticated: Arc::new(move |parts| responses.unauthenticated(parts)),
            forbidden: Arc::new(move |parts| forbidden.forbidden(parts)),
        });
        self
    }
}

/// The answer to a request without a session: the app's, or the default.
pub(crate) fn unauthenticated(state: &crate::AuthState, parts: &Parts) -> Response {
    match &state.options().responses {
        Some(r) => (r.unauthenticated)(parts),
        None => DefaultResponses.unauthenticated(parts),
    }
}

/// The answer to a user the policy refuses: the app's, or the default.
pub(crate) fn forbidden(state: &crate::AuthState, parts: &Parts) -> Response {
    match &state.options().responses {
        Some(r) => (r.forbidden)(parts),
        None => DefaultResponses.forbidden(parts),
    }
}

/// `value` safe inside a double-quoted HTML attribute.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::CACHE_CONTROL;

    fn parts(accept: Option<&str>) -> Parts {
        let mut b = http::Request::get("/admin?x=1");
        if let Some(a) = accept {
            b = b.header("accept", a);
        }
        b.body(()).unwrap().into_parts().0
    }

    async fn body(r: Response) -> String {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn defaults_negotiate_html_and_keep_todays_json() {
        let r = DefaultResponses.unauthenticated(&parts(Some("application/json")));
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()[WWW_AUTHENTICATE], "Cookie realm=\"app\"");
        assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(
            body(r).await,
            r#"{"error":"unauthorized","error_description":"Log in to access this resource."}"#
        );
        let r = DefaultResponses.forbidden(&parts(None));
        assert_eq!(r.status(), 403);
        assert_eq!(
            body(r).await,
            r#"{"error":"forbidden","error_description":"You do not have access to this resource."}"#
        );

        let html = Some("text/html,application/xhtml+xml");
        let r = DefaultResponses.unauthenticated(&parts(html));
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key(WWW_AUTHENTICATE));
        assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
        let page = body(r).await;
        assert!(page.contains("Log in to access this resource.") && page.contains("unauthorized"));
        let r = DefaultResponses.forbidden(&parts(html));
        assert_eq!(r.status(), 403);
        assert!(body(r).await.contains("<code>forbidden</code>"));
    }

    #[test]
    fn attribute_values_are_escaped() {
        assert_eq!(escape("/a?b=1&c=\"<x>'"), "/a?b=1&amp;c=&quot;&lt;x&gt;&#39;");
    }
}
