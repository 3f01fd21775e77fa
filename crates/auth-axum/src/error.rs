//! Errors as HTTP responses: each core error maps to one status and a fixed public message.
//!
//! Bodies carry only the stable error `code` and a message written here — never the
//! provider's response, a token, a stack trace or a network detail. Those go to `tracing`.

use auth_core::{CibaError, Error, ForbiddenReason, TokenExchangeError};
use axum::Json;
use axum::response::{Html, IntoResponse, Response};
use http::header::{CACHE_CONTROL, HeaderValue};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

/// An [`auth_core::Error`] on its way to becoming a response (JSON by default, HTML for
/// browsers when built with [`AuthError::for_request`]).
#[derive(Debug)]
pub struct AuthError {
    error: Error,
    html: bool,
}

impl AuthError {
    /// A JSON error response for `error`.
    #[must_use]
    pub fn new(error: Error) -> Self {
        Self { error, html: false }
    }

    /// A response negotiated on the request's `Accept` header: HTML for browsers, else JSON.
    #[must_use]
    pub fn for_request(error: Error, headers: &HeaderMap) -> Self {
        Self {
            error,
            html: wants_html(headers),
        }
    }

    /// The underlying error.
    #[must_use]
    pub fn inner(&self) -> &Error {
        &self.error
    }

    /// The HTTP status this error maps to.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        status_of(&self.error)
    }
}

impl From<Error> for AuthError {
    fn from(error: Error) -> Self {
        Self::new(error)
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for AuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// An OAuth-style JSON error response: `{"error": error, "error_description": description}`
/// with `status` and `Cache-Control: no-store`, as the `/auth/*` routes and [`AuthError`] answer.
///
/// For an app's own handlers, so that their errors look like the library's:
///
/// ```
/// use auth_axum::json_error;
/// use http::StatusCode;
///
/// let response = json_error(StatusCode::NOT_FOUND, "not_configured", "set UPSTREAM_API_URL");
/// assert_eq!(response.status(), StatusCode::NOT_FOUND);
/// assert_eq!(response.headers()["cache-control"], "no-store");
/// ```
#[must_use]
pub fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    no_store_json(status, error_body(error, description))
}

/// The body of [`json_error`], for a response that adds a field of its own.
fn error_body(error: &str, description: &str) -> Value {
    json!({ "error": error, "error_description": description })
}

/// `body` as a JSON response with `status` and `Cache-Control: no-store`.
fn no_store_json(status: StatusCode, body: Value) -> Response {
    let mut resp = Json(body).into_response();
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Whether the client prefers an HTML page (a browser navigation).
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').any(|p| p.trim().starts_with("text/html")))
}

fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::MissingTransaction
        | Error::InvalidCallback(_)
        | Error::Authorization(_)
        | Error::IdToken(_)
        | Error::InvalidParameter(_) => StatusCode::BAD_REQUEST,
        Error::Endpoint { error, .. } if error.error == "invalid_grant" => StatusCode::BAD_REQUEST,
        Error::NotAuthenticated
        | Error::SessionExpired
        | Error::MissingRefreshToken
        | Error::LoginRequired(_) => StatusCode::UNAUTHORIZED,
        Error::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::IdentityMismatch => StatusCode::FORBIDDEN,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::MfaRequired(_) => StatusCode::FORBIDDEN,
        Error::MyAccount(p) if (400..500).contains(&p.status) => StatusCode::BAD_REQUEST,
        Error::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
        // The app's data did not fit the session (often sized by what the request sent).
        Error::SessionTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        // The app's type and the session's data disagree: a server-side bug.
        Error::SessionValue(_) => StatusCode::INTERNAL_SERVER_ERROR,
        Error::TokenExchange(TokenExchangeError::Refused(o)) if o.status == Some(429) => {
            StatusCode::TOO_MANY_REQUESTS
        }
        Error::TokenExchange(TokenExchangeError::Refused(o)) if o.status.is_some_and(|s| s >= 500) => {
            StatusCode::BAD_GATEWAY
        }
        Error::TokenExchange(_) => StatusCode::BAD_REQUEST,
        Error::Ciba(CibaError::AccessDenied) => StatusCode::FORBIDDEN,
        Error::Ciba(CibaError::ExpiredToken) => StatusCode::REQUEST_TIMEOUT,
        Error::Ciba(CibaError::SubjectMismatch) => StatusCode::BAD_GATEWAY,
        Error::Ciba(_) => StatusCode::BAD_REQUEST,
        Error::Hook(h) if h.is_refusal() => StatusCode::FORBIDDEN,
        Error::Hook(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    }
}

pub(crate) fn public_message(e: &Error) -> &'static str {
    match e {
        Error::MissingTransaction => "The login attempt was not found or has expired. Please log in again.",
        Error::InvalidCallback(_) => "The login response was not valid. Please log in again.",
        Error::Authorization(_) => "The identity provider did not complete the login.",
        Error::IdToken(_) => "The login response could not be verified. Please log in again.",
        Error::InvalidParameter(_) => "The request contained an invalid parameter.",
        Error::Endpoint { error, .. } if error.error == "invalid_grant" => {
            "The login code was already used or has expired. Please log in again."
        }
        Error::NotAuthenticated => "You are not logged in.",
        Error::SessionExpired => "Your session has expired. Please log in again.",
        Error::MissingRefreshToken => "A new access token is needed; please log in again.",
        Error::LoginRequired(l) if l.session_ended => {
            "The identity provider ended this session. Please log in again."
        }
        Error::LoginRequired(_) => {
            "The identity provider needs you to log in again (or consent) before this access can be granted."
        }
        Error::Store(_) => "Session storage is temporarily unavailable.",
        Error::IdentityMismatch => {
            "That sign-in was for another account than the one logged in here; nothing was changed."
        }
        Error::Forbidden(ForbiddenReason::CrossSiteRequest) => {
            "This action can only be started from this site's own pages."
        }
        Error::Forbidden(ForbiddenReason::AudienceNotAllowed) => {
            "This application does not hand out access tokens for the requested audience."
        }
        Error::Forbidden(_) => "This application does not allow the requested connection or scope.",
        Error::MyAccount(_) => "The account service refused the request.",
        Error::MfaRequired(_) => {
            "This resource needs multi-factor authentication: log in again with step-up (acr_values) to continue."
        }
        Error::Config(_) => "The server's login configuration is incomplete.",
        Error::SessionTooLarge { .. } => "This is more data than the session can keep.",
        Error::SessionValue(_) => "The session holds data this page cannot read.",
        Error::TokenExchange(TokenExchangeError::ReservedTokenType(_)) => {
            "subject_token_type is in a namespace Auth0 reserves (urn:ietf, urn:auth0, urn:okta, auth0.com, \
             okta.com); use a token type URI your organisation owns."
        }
        Error::TokenExchange(TokenExchangeError::InvalidRequest(_)) => {
            "The token exchange request is invalid: send subject_token and subject_token_type (an absolute \
             URI) as an application/x-www-form-urlencoded form."
        }
        Error::TokenExchange(TokenExchangeError::NoIdToken) => {
            "The token exchange returned no ID token, so no session could be made; ask for the openid scope."
        }
        Error::TokenExchange(_) => "The identity provider refused the token exchange.",
        Error::Ciba(CibaError::AccessDenied) => "The user denied the request (or it expired).",
        Error::Ciba(CibaError::ExpiredToken) => "The user did not answer in time; the request expired.",
        Error::Ciba(CibaError::SubjectMismatch) => {
            "The identity provider answered for another user than the one asked; nothing was used."
        }
        Error::Ciba(_) => "This backchannel authentication request has ended; start a new one.",
        Error::Hook(h) if h.is_refusal() => {
            "The application did not accept this sign-in; nothing was changed."
        }
        Error::Hook(_) => {
            "The application could not save your session; nothing was changed. Please try again later."
        }
        _ => "The identity provider could not be reached or answered unexpectedly.",
    }
}

/// The provider's `error` code is a protocol value and safe to show once reduced to its
/// registered alphabet; its description is not shown.
fn idp_error_code(e: &Error) -> Option<String> {
    let Error::Authorization(o) = e else { return None };
    let code: String = o
        .error
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect();
    (!code.is_empty()).then_some(code)
}

/// A token exchange answers with the OAuth code: the provider's (reduced to its registered
/// alphabet) when it refused, `invalid_request` for input refused before any request.
fn token_exchange_code(e: &Error) -> Option<String> {
    let Error::TokenExchange(t) = e else { return None };
    let code: String = t
        .error_code()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect();
    Some(if code.is_empty() {
        "invalid_request".to_owned()
    } else {
        code
    })
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        let exchange_code = token_exchange_code(&self.error);
        let code: &str = exchange_code.as_deref().unwrap_or_else(|| self.error.code());
        if status.is_server_error() {
            tracing::error!(code, error = %self.error, source = ?std::error::Error::source(&self.error), "auth request failed");
        } else {
            tracing::info!(code, error = %self.error, "auth request refused");
        }
        let message = public_message(&self.error);
        let idp_error = idp_error_code(&self.error);
        if !self.html {
            let mut body = error_body(code, message);
            if let Some(c) = idp_error {
                body["idp_error"] = json!(c);
            }
            return no_store_json(status, body);
        }
        let detail = idp_error
            .map(|c| format!(" (<code>{c}</code>)"))
            .unwrap_or_default();
        html_page(status, "Login problem", &format!("{message}{detail}"), code, "")
    }
}

/// The library's small HTML error page, with `no-store`: `title`, `message`, the error `code`
/// and a link home. Every argument is fixed text of this crate except `extra` (markup placed
/// after the message), which the caller escapes.
pub(crate) fn html_page(status: StatusCode, title: &str, message: &str, code: &str, extra: &str) -> Response {
    let mut r = Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{message}</p>{extra}<p>Error code: <code>{code}</code></p>\
         <p><a href=\"/\">Home</a></p></body></html>"
    ))
    .into_response();
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::{OAuthError, TransportError};

    #[tokio::test]
    async fn json_errors_have_one_shape() {
        let body = |r: Response| async move {
            let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        };
        let r = json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "logout_token is required",
        );
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(r.headers()[http::header::CONTENT_TYPE], "application/json");
        assert_eq!(
            body(r).await,
            json!({"error": "invalid_request", "error_description": "logout_token is required"})
        );
        let r = AuthError::new(Error::Authorization(auth_core::OAuthError {
            error: "access_denied".into(),
            error_description: None,
            status: None,
        }))
        .into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(
            body(r).await,
            json!({
                "error": "authorization_error",
                "error_description": "The identity provider did not complete the login.",
                "idp_error": "access_denied"
            })
        );
    }

    #[test]
    fn bodies_never_carry_provider_text() {
        let e = Error::Authorization(OAuthError {
            error: "access_denied<script>".into(),
            error_description: Some("internal db host 10.0.0.3 exploded".into()),
            status: None,
        });
        let r = AuthError::new(e);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(idp_error_code(r.inner()).as_deref(), Some("access_deniedscript"));
        let e = Error::Transport(TransportError::Status {
            url: "https://10.1.2.3/token".into(),
            status: 500,
        });
        assert_eq!(status_of(&e), StatusCode::BAD_GATEWAY);
        assert!(!public_message(&e).contains("10.1.2.3"));
    }

    #[tokio::test]
    async fn log_in_again_refusals_are_401_with_the_provider_code_never_502() {
        use auth_core::{LoginRequired, LoginRequiredReason, StoreError};
        let reasons = [
            LoginRequiredReason::InvalidGrant,
            LoginRequiredReason::InvalidScope,
            LoginRequiredReason::ConsentRequired,
            LoginRequiredReason::LoginRequired,
            LoginRequiredReason::InteractionRequired,
        ];
        for reason in reasons {
            let mut l = LoginRequired::new(reason);
            l.description = Some("secret detail".into());
            l.session_ended = reason == LoginRequiredReason::InvalidGrant;
            let e = || Error::LoginRequired(Box::new(l.clone()));
            let r = AuthError::new(e()).into_response();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{reason:?}");
            assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
            let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["error"], reason.code(), "{body}");
            assert!(!body.to_string().contains("secret detail"), "{body}");
            // The same error negotiated for a browser: an HTML page, still 401, with the code.
            let mut headers = HeaderMap::new();
            headers.insert(http::header::ACCEPT, HeaderValue::from_static("text/html"));
            let r = AuthError::for_request(e(), &headers).into_response();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
            let page = String::from_utf8(bytes.to_vec()).unwrap();
            assert!(
                page.contains(reason.code()) && page.contains("log in again"),
                "{page}"
            );
        }
        // 502 and 503 stay for a provider or a store that cannot be used.
        let unreachable = Error::Transport(TransportError::Status {
            url: "https://idp/token".into(),
            status: 503,
        });
        assert_eq!(status_of(&unreachable), StatusCode::BAD_GATEWAY);
        assert_eq!(
            status_of(&Error::Store(StoreError::new("down"))),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn token_exchange_errors_answer_with_the_oauth_code_and_keep_429() {
        let refused = |error: &str, status: u16| {
            Error::TokenExchange(TokenExchangeError::Refused(OAuthError {
                error: error.into(),
                error_description: Some("secret detail".into()),
                status: Some(status),
            }))
        };
        let cases = [
            (refused("access_denied", 403), 400, "access_denied"),
            (refused("too_many_attempts", 429), 429, "too_many_attempts"),
            (refused("server<b>", 503), 502, "serverb"),
            (
                Error::TokenExchange(TokenExchangeError::ReservedTokenType("urn:ietf:x".into())),
                400,
                "invalid_request",
            ),
            (
                Error::TokenExchange(TokenExchangeError::NoIdToken),
                400,
                "invalid_request",
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!(status_of(&e).as_u16(), status, "{e}");
            assert_eq!(token_exchange_code(&e).as_deref(), Some(code), "{e}");
            assert!(!public_message(&e).contains("secret detail"));
        }
        assert_eq!(token_exchange_code(&Error::NotAuthenticated), None);
    }
}
