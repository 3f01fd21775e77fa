//! [`SessionRejection`] and the plain answers to a request without a session.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CACHE_CONTROL, HeaderValue, LOCATION, WWW_AUTHENTICATE};

use crate::error::{AuthError, json_error};

/// The `error_description` of the default `401`.
pub(crate) const UNAUTHENTICATED_TEXT: &str = "Log in to access this resource.";

/// Why a [`crate::Session`] could not be extracted.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionRejection {
    /// No session: `401`, answered as prepared from the request — by default JSON with
    /// `WWW-Authenticate`, or an HTML page for a request that prefers HTML; or the app's
    /// [`AuthResponses::unauthenticated`](crate::AuthResponses::unauthenticated) answer (see
    /// [`AuthOptions::responses`](crate::AuthOptions::responses)).
    Unauthenticated(Box<Response>),
    /// No session: `302` to the login route (configured with
    /// [`Unauthenticated::RedirectToLogin`](crate::Unauthenticated::RedirectToLogin)).
    LoginRequired {
        /// The login URL, with `returnTo` set to the requested path.
        location: String,
    },
    /// `AuthState::layer()` is not applied to this route: `500` (a programming error, logged).
    MissingAuthLayer,
    /// The session store failed: `503`.
    Store(AuthError),
}

impl SessionRejection {
    /// The HTTP status this rejection answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(r) => r.status(),
            Self::LoginRequired { .. } => StatusCode::FOUND,
            Self::MissingAuthLayer => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Store(e) => e.status(),
        }
    }

    /// The text the response carries (fixed messages: never secrets or provider internals;
    /// [`Display`](std::fmt::Display) may say more, for logs).
    #[must_use]
    pub fn body_text(&self) -> String {
        match self {
            Self::Store(e) => crate::error::public_message(e.inner()).to_owned(),
            other => other.to_string(),
        }
    }
}

impl std::fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unauthenticated(_) => f.write_str(UNAUTHENTICATED_TEXT),
            Self::LoginRequired { .. } => f.write_str("Log in to access this page."),
            Self::MissingAuthLayer => f.write_str(MISSING_LAYER_TEXT),
            Self::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SessionRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

const MISSING_LAYER_TEXT: &str = "authentication is not configured for this route";

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthenticated(r) => *r,
            Self::LoginRequired { location } => redirect(&location),
            Self::MissingAuthLayer => {
                tracing::error!(
                    "Session extractor used on a route without AuthState::layer(); add .layer(auth.layer()) to the app"
                );
                json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    MISSING_LAYER_TEXT,
                )
            }
            Self::Store(e) => e.into_response(),
        }
    }
}

pub(crate) fn unauthorized() -> Response {
    let mut r = json_error(StatusCode::UNAUTHORIZED, "unauthorized", UNAUTHENTICATED_TEXT);
    r.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Cookie realm=\"app\""));
    r
}

pub(crate) fn redirect(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(LOCATION, v);
    }
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_say_their_status_and_text_like_axums() {
        let r = SessionRejection::Unauthenticated(Box::new(unauthorized()));
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.body_text(), UNAUTHENTICATED_TEXT);
        let resp = r.into_response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers().contains_key(WWW_AUTHENTICATE));
        assert_eq!(resp.headers()[CACHE_CONTROL], "no-store");

        let r = SessionRejection::MissingAuthLayer;
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(r.into_response().status(), StatusCode::INTERNAL_SERVER_ERROR);

        let r = SessionRejection::LoginRequired {
            location: "/auth/login?returnTo=%2Fx".into(),
        };
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(r.into_response().headers()[LOCATION], "/auth/login?returnTo=%2Fx");

        let store = AuthError::new(auth_core::Error::InvalidParameter("x".into()));
        let status = store.status();
        let r = SessionRejection::Store(store);
        assert_eq!(r.status(), status);
        assert!(std::error::Error::source(&r).is_some());
    }
}
