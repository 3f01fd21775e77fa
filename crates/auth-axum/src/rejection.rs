//! [`SessionRejection`] and the plain answers to a request without a session.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CACHE_CONTROL, HeaderValue, LOCATION, WWW_AUTHENTICATE};
use serde_json::json;

use crate::error::AuthError;

/// Why a [`crate::Session`] could not be extracted.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionRejection {
    /// No session: `401` JSON with `WWW-Authenticate`.
    Unauthenticated,
    /// No session: `302` to the login route (configured with
    /// [`Unauthenticated::RedirectToLogin`]).
    LoginRequired {
        /// The login URL, with `returnTo` set to the requested path.
        location: String,
    },
    /// `AuthState::layer()` is not applied to this route: `500`.
    MissingAuthLayer,
    /// The session store failed: `503`.
    Store(AuthError),
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthenticated => unauthorized(),
            Self::LoginRequired { location } => redirect(&location),
            Self::MissingAuthLayer => {
                tracing::error!(
                    "Session extractor used on a route without AuthState::layer(); add .layer(auth.layer()) to the app"
                );
                let mut r = axum::Json(json!({"error": "server_error", "error_description": "authentication is not configured for this route"})).into_response();
                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                r
            }
            Self::Store(e) => e.into_response(),
        }
    }
}

pub(crate) fn unauthorized() -> Response {
    let mut r =
        axum::Json(json!({"error": "unauthorized", "error_description": "Log in to access this resource."}))
            .into_response();
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    r.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Cookie realm=\"app\""));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
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
