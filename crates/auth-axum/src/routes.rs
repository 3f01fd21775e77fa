//! The `/auth/*` routes.
//!
//! | route | does |
//! |---|---|
//! | `GET {base}/login` | starts a login; `returnTo` plus an allow-list of hints forwarded to the IdP |
//! | `GET\|POST {base}/callback` | completes it (query, or a `form_post` body) and redirects to `returnTo` |
//! | `GET {base}/logout` | ends the session and redirects to the provider's logout |
//! | `POST {base}/backchannel-logout` | OIDC back-channel logout: ends the sessions a valid logout token names |
//! | `GET {base}/profile` | the user's claims as JSON, `401` without a session |
//! | `GET {base}/access-token` | opt-in: the access token as JSON |
//! | `GET {base}/link` | Auth0 user linking: `connection`, `connectionScope`, `returnTo` |
//! | `GET {base}/unlink` | Auth0 user unlinking: `connection`, `returnTo` |
//! | `GET {base}/connect` | Connected Accounts: `connection`, `scopes`, `returnTo` |
//!
//! `link`, `unlink` and `connect` need a session and answer like a protected route without
//! one. The callback completes whichever flow its `state` belongs to.

use auth_core::{
    AccessTokenOptions, AuthorizationParams, CallbackParams, ConnectAccountOptions, Error, LinkOptions,
    LoginOptions, LogoutOptions, UnlinkOptions,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::cookies::AxumCookieJar;
use crate::error::AuthError;
use crate::extract::{Session, redirect, unauthorized};
use crate::return_to::sanitize;
use crate::state::AuthState;

/// Query parameters of `/auth/login` forwarded to the authorization endpoint.
pub const LOGIN_HINTS: &[&str] = &[
    "screen_hint",
    "login_hint",
    "organization",
    "invitation",
    "connection",
    "prompt",
];

/// Longest query string the routes read.
const MAX_QUERY: usize = 8 * 1024;

impl AuthState {
    /// The `/auth/*` routes (under the configured base path), ready to merge into an app:
    /// `Router::new().merge(auth.router())…layer(auth.layer())`.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let base = &self.inner.options.base_path;
        let mut router = Router::new()
            .route(&format!("{base}/login"), get(login))
            .route(
                &format!("{base}/callback"),
                get(callback_query).post(callback_form),
            )
            .route(&format!("{base}/logout"), get(logout))
            .route(&format!("{base}/backchannel-logout"), post(backchannel_logout))
            .route(&format!("{base}/profile"), get(profile))
            .route(&format!("{base}/link"), get(link))
            .route(&format!("{base}/unlink"), get(unlink))
            .route(&format!("{base}/connect"), get(connect));
        if self.inner.options.access_token_route {
            router = router.route(&format!("{base}/access-token"), get(access_token));
        }
        // The routes work even if the app forgets the layer.
        router.layer(self.layer()).with_state(self.clone())
    }
}

/// Query parameters, each at most once.
fn unique_params(query: Option<&str>) -> Result<Vec<(String, String)>, Error> {
    let query = query.unwrap_or("");
    if query.len() > MAX_QUERY {
        return Err(Error::InvalidParameter("the query string is too long".into()));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if out.iter().any(|(n, _)| *n == k) {
            return Err(Error::InvalidParameter(
                "a query parameter appears more than once".into(),
            ));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn login(
    State(auth): State<AuthState>,
    mut jar: AxumCookieJar,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match unique_params(query.as_deref()) {
        Ok(p) => p,
        Err(e) => return AuthError::for_request(e, &headers).into_response(),
    };
    let return_to = param(&params, "returnTo")
        .and_then(sanitize)
        .unwrap_or_else(|| auth.options().default_return_to.clone());
    let mut hints = AuthorizationParams::new();
    for name in LOGIN_HINTS {
        if let Some(v) = param(&params, name) {
            if v.len() > 512 || v.chars().any(char::is_control) {
                return AuthError::for_request(
                    Error::InvalidParameter(format!("`{name}` is not acceptable")),
                    &headers,
                )
                .into_response();
            }
            hints = hints.param(*name, v);
        }
    }
    let options = LoginOptions::new()
        .authorization_params(hints)
        .app_state(json!({ "returnTo": return_to }));
    let result = auth.client().start_interactive_login(options, &mut jar).await;
    redirect_or_error(result, &headers)
}

async fn callback_query(
    State(auth): State<AuthState>,
    jar: AxumCookieJar,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = CallbackParams::from_query(query.as_deref().unwrap_or(""));
    complete(auth, jar, &headers, params).await
}

async fn callback_form(
    State(auth): State<AuthState>,
    jar: AxumCookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_form(&headers) {
        let mut r = axum::Json(json!({"error": "unsupported_media_type", "error_description": "The callback must be form-encoded."})).into_response();
        *r.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return r;
    }
    complete(auth, jar, &headers, CallbackParams::from_form(&body)).await
}

async fn complete(
    auth: AuthState,
    mut jar: AxumCookieJar,
    headers: &HeaderMap,
    params: Result<CallbackParams, Error>,
) -> Response {
    let result = match params {
        Ok(p) => auth.client().complete_callback(&p, &mut jar).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(done) => {
            let target = done
                .app_state()
                .and_then(|s| s.get("returnTo"))
                .and_then(Value::as_str)
                .and_then(sanitize)
                .unwrap_or_else(|| auth.options().default_return_to.clone());
            redirect(&target)
        }
        Err(e) => AuthError::for_request(e, headers).into_response(),
    }
}

/// Without a session, the account routes answer like a protected route.
async fn require_session(
    auth: &AuthState,
    jar: &AxumCookieJar,
    headers: &HeaderMap,
    uri: &http::Uri,
) -> Option<Response> {
    let mut jar = jar.clone();
    match auth.client().get_session(&mut jar).await {
        Ok(Some(_)) => None,
        Ok(None) if crate::error::wants_html(headers) => {
            Some(redirect(&crate::extract::login_location(auth, uri)))
        }
        Ok(None) => Some(unauthorized()),
        Err(e) => Some(AuthError::for_request(e, headers).into_response()),
    }
}

/// The answer to a flow start: a redirect to the provider, or the error negotiated on `Accept`.
fn redirect_or_error(result: Result<url::Url, Error>, headers: &HeaderMap) -> Response {
    match result {
        Ok(url) => redirect(url.as_str()),
        Err(e) => AuthError::for_request(e, headers).into_response(),
    }
}

/// The query of an account route (`link`/`unlink`) and its required `connection`.
fn account_params(query: Option<&str>) -> Result<(Vec<(String, String)>, String), Error> {
    let params = unique_params(query)?;
    let connection = required_connection(&params)?;
    Ok((params, connection))
}

fn required_connection(params: &[(String, String)]) -> Result<String, Error> {
    param(params, "connection")
        .map(str::to_owned)
        .ok_or_else(|| Error::InvalidParameter("`connection` is required".into()))
}

fn return_to_state(auth: &AuthState, params: &[(String, String)]) -> Value {
    let back = param(params, "returnTo")
        .and_then(sanitize)
        .unwrap_or_else(|| auth.options().default_return_to.clone());
    json!({ "returnTo": back })
}

async fn link(
    State(auth): State<AuthState>,
    mut jar: AxumCookieJar,
    headers: HeaderMap,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = require_session(&auth, &jar, &headers, &uri.0).await {
        return r;
    }
    let (params, connection) = match account_params(query.as_deref()) {
        Ok(p) => p,
        Err(e) => return AuthError::for_request(e, &headers).into_response(),
    };
    let mut options = LinkOptions::new(connection).app_state(return_to_state(&auth, &params));
    if let Some(scope) = param(&params, "connectionScope") {
        options = options.connection_scope(scope);
    }
    let result = auth.client().start_link_user(options, &mut jar).await;
    redirect_or_error(result, &headers)
}

async fn unlink(
    State(auth): State<AuthState>,
    mut jar: AxumCookieJar,
    headers: HeaderMap,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = require_session(&auth, &jar, &headers, &uri.0).await {
        return r;
    }
    let (params, connection) = match account_params(query.as_deref()) {
        Ok(p) => p,
        Err(e) => return AuthError::for_request(e, &headers).into_response(),
    };
    let options = UnlinkOptions::new(connection).app_state(return_to_state(&auth, &params));
    let result = auth.client().start_unlink_user(options, &mut jar).await;
    redirect_or_error(result, &headers)
}

async fn connect(
    State(auth): State<AuthState>,
    mut jar: AxumCookieJar,
    headers: HeaderMap,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = require_session(&auth, &jar, &headers, &uri.0).await {
        return r;
    }
    // `scopes` may repeat (`scopes=a&scopes=b`) or be space/comma separated; nothing else may.
    let raw = query.unwrap_or_default();
    let mut scopes: Vec<String> = Vec::new();
    let mut rest: Vec<(String, String)> = Vec::new();
    if raw.len() > MAX_QUERY {
        return AuthError::for_request(
            Error::InvalidParameter("the query string is too long".into()),
            &headers,
        )
        .into_response();
    }
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        if k == "scopes" {
            scopes.extend(v.split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_owned));
        } else if rest.iter().any(|(n, _)| *n == k) {
            return AuthError::for_request(
                Error::InvalidParameter("a query parameter appears more than once".into()),
                &headers,
            )
            .into_response();
        } else {
            rest.push((k.into_owned(), v.into_owned()));
        }
    }
    let connection = match required_connection(&rest) {
        Ok(c) => c,
        Err(e) => return AuthError::for_request(e, &headers).into_response(),
    };
    let options = ConnectAccountOptions::new(connection)
        .scopes(scopes)
        .app_state(return_to_state(&auth, &rest));
    let result = auth.client().start_connect_account(options, &mut jar).await;
    redirect_or_error(result, &headers)
}

async fn logout(
    State(auth): State<AuthState>,
    mut jar: AxumCookieJar,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = unique_params(query.as_deref()).unwrap_or_default();
    let path = param(&params, "returnTo")
        .and_then(sanitize)
        .unwrap_or_else(|| auth.options().default_return_to.clone());
    let base = auth.public_base(&headers);
    let options = match base.join(&path) {
        Ok(abs) => LogoutOptions::new().return_to(abs.to_string()),
        Err(_) => LogoutOptions::new(),
    };
    let result = auth.client().logout(options, &mut jar).await;
    redirect_or_error(result, &headers)
}

/// OIDC Back-Channel Logout §2.5/§2.8: form-encoded `logout_token`; `200` with
/// `Cache-Control: no-store` when the sessions are ended, `400` with an OAuth error body when
/// the request or token is bad.
async fn backchannel_logout(State(auth): State<AuthState>, headers: HeaderMap, body: Bytes) -> Response {
    let bad = |description: &str| {
        let mut r =
            axum::Json(json!({"error": "invalid_request", "error_description": description})).into_response();
        *r.status_mut() = StatusCode::BAD_REQUEST;
        r.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    };
    if !is_form(&headers) {
        return bad("the request must be application/x-www-form-urlencoded");
    }
    let Ok(params) = CallbackParams::from_form(&body) else {
        return bad("the request body is malformed");
    };
    let Some(token) = params.get("logout_token").filter(|t| !t.is_empty()) else {
        return bad("logout_token is required");
    };
    match auth.client().handle_backchannel_logout(token).await {
        Ok(_) => {
            let mut r = StatusCode::OK.into_response();
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(Error::LogoutToken(e)) => {
            tracing::info!(rule = e.code(), "back-channel logout token rejected");
            bad("the logout token is invalid")
        }
        Err(e) => AuthError::new(e).into_response(),
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        })
}

async fn profile(session: Option<Session>) -> Response {
    match session {
        Some(s) => {
            let mut r = axum::Json(Value::Object(s.user().clone())).into_response();
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        None => unauthorized(),
    }
}

async fn access_token(session: Option<Session>) -> Response {
    let Some(session) = session else {
        return unauthorized();
    };
    match session.access_token(AccessTokenOptions::new()).await {
        Ok(t) => {
            let mut r = axum::Json(
                json!({"access_token": t.token.expose(), "expires_at": t.expires_at, "scope": t.scope}),
            )
            .into_response();
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => e.into_response(),
    }
}
