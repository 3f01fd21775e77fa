//! The connected-accounts app: log in, connect a third-party account (e.g. `google-oauth2`)
//! through the Auth0 My Account API, then use Token Vault to call that provider's API.
//!
//! HTTP contract (fixed; outside tools drive it): everything the quickstart has (same env
//! vars, `/`, `/profile`, `/token`, `/auth/*` including `/auth/link`, `/auth/unlink`,
//! `/auth/connect`), plus:
//! - `GET /connected-accounts`: JSON from `list_connected_accounts`;
//! - `GET /connection-token?connection=…[&login_hint=…]`: JSON `{"access_token": "…"}` from
//!   `get_access_token_for_connection`, with `Cache-Control: no-store`;
//! - `GET /upstream?connection=…`: calls `UPSTREAM_API_URL` (when set) with the connection's
//!   Token Vault token and returns its JSON — the "fake upstream API" demo; without
//!   `connection`, with the session's access token (for `audience` when given). Each token is
//!   used as its `token_type` says: `Authorization: DPoP <token>` plus a `DPoP` proof with `ath`
//!   for a DPoP-bound token (one retry on the API's `use_dpop_nonce`), `Bearer` otherwise;
//! - `POST /token-exchange` (form: `subject_token`, `subject_token_type`, optional `audience`,
//!   `scope`, `organization`, `actor_token` + `actor_token_type`, `login=true|false`): custom
//!   token exchange (RFC 8693); `200 {"access_token", "token_type", "sub", "scope"}` (`sub` from
//!   the verified ID token); with `login=true` the result becomes the browser's session (`openid`
//!   added to the scope). Refused by the provider: `400` with its `error` code (`429` stays
//!   `429`); reserved or malformed input: `400 invalid_request` before any request.
//!
//! - `POST /ciba` (form: `login_hint` = the user's `sub`, `binding_message`, optional `scope`,
//!   `audience`, `authorization_details` = a JSON array; no session needed): OpenID CIBA in poll
//!   mode, waited for in the request (up to the provider's `expires_in`). `200 {"access_token",
//!   "sub", "authorization_details"?}` (the ID token verified, its `sub` the requested user);
//!   `403 access_denied`; `408 expired_token`; malformed input `400 invalid_request` before any
//!   request; refused by the provider's `/bc-authorize`: `400` with its code (`unknown_user_id`,
//!   `invalid_binding_message`, …); a provider without CIBA: `501 configuration_error`.
//!
//! `AUTH0_DPOP=true` (optionally `AUTH0_DPOP_PRIVATE_KEY`, an ES256 PKCS#8 or SEC1 PEM) makes
//! every token request carry a DPoP proof (RFC 9449).
//!
//! - `GET /auth/login` also forwards `audience`, `scope`, `acr_values`, `max_age` and
//!   `ui_locales` ([`auth_options`]; a configured `AUTH0_ORGANIZATION` / `AUTH0_CONNECTION` is
//!   never overridden), so `/auth/login?audience=A&acr_values=…&returnTo=/x` is an MFA step-up
//!   whose token `GET /token?audience=A` then serves;
//! - `GET /auth/logout?federated=true`: also ends the upstream IdP's session.
//!
//! Works with `AUTH0_DOMAIN` (https; extra trust anchors from `SSL_CERT_FILE`) and with
//! `OIDC_ISSUER` on a loopback http URL (the My Account API then lives at the issuer's origin,
//! `/me/v1/…`).

use std::sync::Arc;

use auth_axum::{AuthError, AuthOptions, AuthState, AxumCookieJar, RequireAuth, Session, json_error};
use auth_core::{
    AccessTokenOptions, ConnectionTokenOptions, Error, ForbiddenReason, ListOptions, TokenExchangeError,
    TokenExchangeOptions,
};
use axum::body::Bytes;
use axum::extract::Query;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

/// Login query parameters this app forwards to `/authorize`, besides the library's defaults
/// ([`auth_axum::LOGIN_HINTS`]): per-API and step-up logins.
pub const EXTRA_LOGIN_PARAMS: [&str; 5] = ["audience", "scope", "acr_values", "max_age", "ui_locales"];

/// The app's integration options: the default ones, with [`EXTRA_LOGIN_PARAMS`] forwarded by
/// `/auth/login` too (pinned `organization` / `connection` are still never forwarded).
pub fn auth_options() -> AuthOptions {
    AuthOptions::new().login_params(auth_axum::LOGIN_HINTS.iter().copied().chain(EXTRA_LOGIN_PARAMS))
}

/// The app, for a given auth state (build it with [`auth_options`] to get this app's login
/// parameters); `/upstream` calls `UPSTREAM_API_URL` (read once, here).
pub fn app(auth: &AuthState) -> Router {
    let upstream_api_url = std::env::var("UPSTREAM_API_URL").ok().filter(|u| !u.is_empty());
    app_with_upstream(auth, upstream_api_url)
}

/// [`app`] with the upstream API URL given instead of read from `UPSTREAM_API_URL`.
pub fn app_with_upstream(auth: &AuthState, upstream_api_url: Option<String>) -> Router {
    let upstream_api_url = Arc::new(upstream_api_url);
    let exchange_state = auth.clone();
    let protected = Router::new()
        .route("/connected-accounts", get(connected_accounts))
        .route("/connection-token", get(connection_token))
        .route(
            "/upstream",
            get(move |session: Session, query: Query<UpstreamQuery>| {
                upstream(session, query, upstream_api_url.clone())
            }),
        )
        .route_layer(RequireAuth::new());
    let exchange = Router::new().route(
        "/token-exchange",
        post(move |jar: AxumCookieJar, headers: HeaderMap, body: Bytes| {
            token_exchange(exchange_state.clone(), jar, headers, body)
        }),
    );
    crate::quickstart::routes()
        .merge(protected)
        .merge(exchange)
        .merge(ciba_routes(auth))
        .merge(auth.router())
        .layer(auth.layer())
}

async fn connected_accounts(session: Session) -> Response {
    let (client, mut jar) = session.client_and_jar();
    match client.list_connected_accounts(ListOptions::new(), &mut jar).await {
        Ok(page) => Json(page).into_response(),
        Err(e) => AuthError::new(e).into_response(),
    }
}

#[derive(Deserialize)]
struct ConnectionQuery {
    connection: Option<String>,
    login_hint: Option<String>,
}

fn options(q: &ConnectionQuery) -> Result<ConnectionTokenOptions, AuthError> {
    let connection = q
        .connection
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| AuthError::new(Error::InvalidParameter("`connection` is required".into())))?;
    let mut o = ConnectionTokenOptions::new(connection);
    if let Some(h) = q.login_hint.as_deref().filter(|h| !h.is_empty()) {
        o = o.login_hint(h);
    }
    Ok(o)
}

async fn connection_token(session: Session, Query(q): Query<ConnectionQuery>) -> Response {
    let result = match options(&q) {
        Ok(o) => session.access_token_for_connection(o).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(t) => crate::quickstart::token_response(t.token.expose()),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct UpstreamQuery {
    connection: Option<String>,
    login_hint: Option<String>,
    audience: Option<String>,
}

async fn upstream(
    session: Session,
    Query(q): Query<UpstreamQuery>,
    upstream: Arc<Option<String>>,
) -> Response {
    let Some(upstream) = upstream.as_deref() else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "not_configured", "error_description": "set UPSTREAM_API_URL"})),
        )
            .into_response();
    };
    let token = match q.connection.as_deref() {
        Some(_) => {
            let q = ConnectionQuery {
                connection: q.connection.clone(),
                login_hint: q.login_hint.clone(),
            };
            match options(&q) {
                Ok(o) => session.access_token_for_connection(o).await,
                Err(e) => Err(e),
            }
        }
        None => {
            let mut o = AccessTokenOptions::new();
            if let Some(a) = q.audience.as_deref().filter(|a| !a.is_empty()) {
                o = o.audience(a);
            }
            session.access_token(o).await
        }
    };
    let token = match token {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let (client, _) = session.client_and_jar();
    let http = reqwest::Client::new();
    let mut retried = false;
    let resp = loop {
        // A fresh proof per request (DPoP-bound tokens); Bearer otherwise.
        let authz = match client.resource_authorization(&token, "GET", upstream) {
            Ok(a) => a,
            Err(e) => return AuthError::new(e).into_response(),
        };
        let mut req = http
            .get(upstream)
            .header("authorization", authz.authorization.expose());
        if let Some(proof) = &authz.dpop {
            req = req.header("dpop", proof);
        }
        let resp = req.send().await;
        // RFC 9449 §9: the API asks for its nonce once; retry with it.
        if let Ok(r) = &resp
            && !retried
            && authz.dpop.is_some()
            && r.status() == reqwest::StatusCode::UNAUTHORIZED
            && let Some(nonce) = r.headers().get("dpop-nonce").and_then(|v| v.to_str().ok())
        {
            client.remember_dpop_nonce(upstream, nonce);
            retried = true;
            continue;
        }
        break resp;
    };
    match resp {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let body: serde_json::Value = r.json().await.unwrap_or(json!({"error": "upstream_not_json"}));
            // The upstream's answer may carry credentials of its own: not for caches either.
            (
                status,
                [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
                Json(json!({ "upstream_status": status.as_u16(), "upstream": body })),
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": "upstream_unreachable"})),
        )
            .into_response(),
    }
}

/// What `POST /token-exchange` accepts.
struct ExchangeForm {
    options: TokenExchangeOptions,
    login: bool,
}

/// Parses the form strictly: `application/x-www-form-urlencoded`, no repeated field,
/// `subject_token` and `subject_token_type` required, `login` `true` or `false`. Other fields
/// are ignored (they never reach the provider).
fn exchange_form(headers: &HeaderMap, body: &[u8]) -> Result<ExchangeForm, String> {
    let form_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form_type {
        return Err("send the fields as application/x-www-form-urlencoded".into());
    }
    let mut fields: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if fields.iter().any(|(n, _)| *n == k) {
            return Err(format!("`{k}` appears more than once"));
        }
        fields.push((k.into_owned(), v.into_owned()));
    }
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let subject_token = get("subject_token").ok_or("`subject_token` is required")?;
    let subject_token_type = get("subject_token_type").ok_or("`subject_token_type` is required")?;
    let mut options = TokenExchangeOptions::new(subject_token, subject_token_type);
    if let Some(a) = get("audience") {
        options = options.audience(a);
    }
    if let Some(s) = get("scope") {
        options = options.scope(s);
    }
    if let Some(o) = get("organization") {
        options = options.organization(o);
    }
    match (get("actor_token"), get("actor_token_type")) {
        (Some(t), Some(tt)) => options = options.actor(t, tt),
        (None, None) => {}
        _ => return Err("`actor_token` and `actor_token_type` go together".into()),
    }
    let login = match get("login") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err("`login` is `true` or `false`".into()),
    };
    Ok(ExchangeForm { options, login })
}

/// `POST /token-exchange`: custom token exchange; with `login=true` the result becomes the
/// browser's session (a login: refused when another site started the request).
async fn token_exchange(
    auth: AuthState,
    mut jar: AxumCookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match exchange_form(&headers, &body) {
        Ok(f) => f,
        Err(m) => {
            return AuthError::new(Error::TokenExchange(TokenExchangeError::InvalidRequest(m)))
                .into_response();
        }
    };
    let client = auth.client();
    let result = if form.login {
        let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        if !matches!(site, None | Some("same-origin" | "none")) {
            return AuthError::new(Error::Forbidden(ForbiddenReason::CrossSiteRequest)).into_response();
        }
        client.login_with_token_exchange(form.options, &mut jar).await
    } else {
        client.exchange_token(form.options).await
    };
    match result {
        Ok(r) => (
            [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Json(json!({
                "access_token": r.access_token.token.expose(),
                "token_type": r.access_token.token_type,
                "sub": r.sub,
                "scope": r.access_token.scope,
            })),
        )
            .into_response(),
        Err(e) => AuthError::new(e).into_response(),
    }
}

/// `POST /ciba`, open to any caller (no session): see the module docs.
fn ciba_routes(auth: &AuthState) -> Router {
    let client = auth.client().clone();
    Router::new().route(
        "/ciba",
        post(move |headers: HeaderMap, body: Bytes| {
            let client = client.clone();
            async move { ciba(&client, &headers, &body).await }
        }),
    )
}

/// Starts a CIBA request for the form's user and waits for the answer.
async fn ciba(client: &auth_core::ServerClient, headers: &HeaderMap, body: &[u8]) -> Response {
    let options = match ciba_options(headers, body) {
        Ok(o) => o,
        Err(e) => return ciba_error(e),
    };
    match client.backchannel_authentication(options).await {
        Ok(done) => {
            let mut answer = json!({ "access_token": done.access_token.expose(), "sub": done.sub() });
            if let Some(details) = &done.authorization_details {
                answer["authorization_details"] = details.clone();
            }
            (
                [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
                Json(answer),
            )
                .into_response()
        }
        Err(e) => ciba_error(e),
    }
}

/// The form of `POST /ciba`: `login_hint` (a `sub`) and `binding_message` required; `scope`,
/// `audience`, `authorization_details` (JSON array text) optional; a field given twice is refused.
fn ciba_options(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<auth_core::BackchannelAuthenticationOptions, Error> {
    let invalid = |why: &str| Error::InvalidParameter(why.to_owned());
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(invalid(
            "send the fields as an application/x-www-form-urlencoded form",
        ));
    }
    let mut fields: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if fields.insert(name.into_owned(), value.into_owned()).is_some() {
            return Err(invalid("a form field appears more than once"));
        }
    }
    let field = |name: &str| fields.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let sub = field("login_hint").ok_or_else(|| invalid("`login_hint` (the user's sub) is required"))?;
    let message = field("binding_message").ok_or_else(|| invalid("`binding_message` is required"))?;
    let mut options = auth_core::BackchannelAuthenticationOptions::new(sub, message);
    if let Some(scope) = field("scope") {
        options = options.scope(scope);
    }
    if let Some(audience) = field("audience") {
        options = options.audience(audience);
    }
    if let Some(details) = fields.get("authorization_details") {
        options = options.authorization_details_json(details)?;
    }
    Ok(options)
}

/// CIBA failures as the contract wants them: `400 invalid_request` for bad input, `403
/// access_denied`, `408 expired_token`, the provider's code (`400`) when `/bc-authorize` refuses,
/// `501` when the provider offers no CIBA; the rest as every other route (never `500`).
fn ciba_error(e: Error) -> Response {
    let (status, code, description) = match &e {
        Error::InvalidParameter(why) => (StatusCode::BAD_REQUEST, "invalid_request".to_owned(), why.clone()),
        Error::Endpoint {
            endpoint: "backchannel_authentication",
            error,
        } if error.error != "invalid_client" && error.status.is_some_and(|s| (400..500).contains(&s)) => {
            let code: String = error
                .error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            (
                StatusCode::BAD_REQUEST,
                code,
                "The identity provider refused the backchannel authentication request.".to_owned(),
            )
        }
        Error::Config(_) => (
            StatusCode::NOT_IMPLEMENTED,
            "configuration_error".to_owned(),
            "The identity provider does not offer backchannel authentication (CIBA) to this app.".to_owned(),
        ),
        _ => return AuthError::new(e).into_response(),
    };
    tracing::info!(code = %code, error = %e, "CIBA request refused");
    json_error(status, &code, &description)
}
