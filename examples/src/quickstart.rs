//! The quickstart app: the smallest real app using the library.
//!
//! HTTP contract (fixed; outside tools drive it):
//! - env: `OIDC_ISSUER` or `AUTH0_DOMAIN`, `AUTH0_CLIENT_ID`, `AUTH0_CLIENT_SECRET`,
//!   `AUTH0_SECRET`, `APP_BASE_URL` (it listens on that URL's port);
//! - `GET /`: public page with login/logout links and the user's name when logged in;
//! - `GET /profile`: protected; JSON of the user's claims;
//! - `GET /token[?audience=…[&scope=…]]`: protected; JSON `{"access_token": "…"}` with
//!   `Cache-Control: no-store`. Without parameters: the session's token (as before). With
//!   `audience` (and `scope`): a token for that API from a `refresh_token` grant carrying them
//!   (Auth0 multi-resource refresh tokens), cached in the session per (audience, scope). A
//!   `403 {"error": "mfa_required"}` means the API needs MFA: step up with
//!   `/auth/login?audience=…&acr_values=…` (the session is kept);
//! - the `/auth/*` routes.

use auth_axum::{AuthError, AuthState, RequireAuth, Session};
use auth_core::{AccessTokenOptions, Error};
use axum::extract::RawQuery;
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// The app, for a given auth state.
pub fn app(auth: &AuthState) -> Router {
    routes().merge(auth.router()).layer(auth.layer())
}

/// The quickstart's own routes (`/`, `/profile`, `/token`), without the auth router and layer,
/// so other examples can extend them.
pub fn routes() -> Router {
    let protected = Router::new()
        .route("/profile", get(profile))
        .route("/token", get(token))
        .route_layer(RequireAuth::new());
    Router::new().route("/", get(home)).merge(protected)
}

async fn home(session: Option<Session>) -> Html<String> {
    let body = match session {
        Some(s) => {
            let name = s
                .user()
                .get("name")
                .and_then(Value::as_str)
                .or_else(|| s.sub())
                .unwrap_or("you");
            format!(
                "<p>Logged in as <strong id=\"user-name\">{}</strong>.</p>\
                 <p><a href=\"/profile\">Profile (JSON)</a> · <a href=\"/token\">Access token (JSON)</a> · \
                 <a id=\"logout\" href=\"/auth/logout\">Log out</a></p>",
                escape(name)
            )
        }
        None => {
            "<p>You are not logged in.</p><p><a id=\"login\" href=\"/auth/login\">Log in</a></p>".to_owned()
        }
    };
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Quickstart</title></head>\
         <body><h1>Quickstart</h1>{body}</body></html>"
    ))
}

async fn profile(session: Session) -> Json<Value> {
    Json(Value::Object(session.user().clone()))
}

async fn token(session: Session, RawQuery(query): RawQuery) -> Response {
    let options = match token_options(query.as_deref()) {
        Ok(o) => o,
        Err(e) => return AuthError::new(e).into_response(),
    };
    match session.access_token(options).await {
        Ok(t) => token_response(t.token.expose()),
        Err(e) => AuthError::into_response(e),
    }
}

/// The options of `GET /token`: optional `audience` and `scope`, each at most once, non-empty,
/// without control characters; other parameters are ignored.
fn token_options(query: Option<&str>) -> Result<AccessTokenOptions, Error> {
    let query = query.unwrap_or("");
    if query.len() > 8 * 1024 {
        return Err(Error::InvalidParameter("the query is too long".into()));
    }
    let (mut audience, mut scope) = (None, None);
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "audience" => &mut audience,
            "scope" => &mut scope,
            _ => continue,
        };
        if slot.is_some() {
            return Err(Error::InvalidParameter(format!(
                "`{name}` appears more than once"
            )));
        }
        if value.trim().is_empty() || value.len() > 1024 || value.chars().any(char::is_control) {
            return Err(Error::InvalidParameter(format!(
                "`{name}` must be a non-empty value without control characters"
            )));
        }
        *slot = Some(value.into_owned());
    }
    let mut options = AccessTokenOptions::new();
    if let Some(a) = audience {
        options = options.audience(a);
    }
    if let Some(s) = scope {
        options = options.scope(s);
    }
    Ok(options)
}

/// `{"access_token": "…"}` with `Cache-Control: no-store`, so no browser or proxy cache keeps
/// the bearer token (every example route that returns a token answers through this).
pub fn token_response(access_token: &str) -> Response {
    (
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(json!({ "access_token": access_token })),
    )
        .into_response()
}

/// Minimal HTML escaping for text content and double-quoted attributes (every example page
/// puts user-supplied text through it).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<b onclick='x'>&\""),
            "&lt;b onclick=&#39;x&#39;&gt;&amp;&quot;"
        );
    }
}
