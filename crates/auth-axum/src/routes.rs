//! The `/auth/*` routes.
//!
//! | route | does |
//! |---|---|
//! | `GET {base}/login` | starts a login; `returnTo` plus an allow-list of hints forwarded to the IdP |
//! | `GET\|POST {base}/callback` | completes it (query, or a `form_post` body) and redirects to `returnTo` (or answers with [`on_callback`](crate::AuthOptions::on_callback)) |
//! | `GET {base}/logout` | ends the session and redirects to the provider's logout (`federated=true`: also the upstream IdP's) |
//! | `POST {base}/backchannel-logout` | OIDC back-channel logout: ends the sessions a valid logout token names |
//! | `GET {base}/profile` | the user's claims as JSON, `401` without a session |
//! | `GET {base}/access-token` | opt-in: the access token as JSON |
//! | `GET\|POST {base}/link` | Auth0 user linking: `connection`, `connectionScope`, `returnTo` |
//! | `GET\|POST {base}/unlink` | Auth0 user unlinking: `connection`, `returnTo` |
//! | `GET\|POST {base}/connect` | Connected Accounts: `connection`, `scopes`, `returnTo` |
//!
//! `link`, `unlink` and `connect` need a session and answer like a protected route without
//! one. They read their parameters from the query (`GET`) or from an
//! `application/x-www-form-urlencoded` body (`POST`, e.g. a form that also carries the app's
//! CSRF token; any other body type gets `415`). The callback completes whichever flow its
//! `state` belongs to.
//!
//! ## Fetch-Metadata policy
//!
//! `link`, `unlink` and `connect` change the user's account, so another site must not be able
//! to start them in a logged-in browser. Before anything else (session lookup, parameters)
//! they check the browser's `Sec-Fetch-Site` request header:
//!
//! - absent (non-browser clients, old browsers), `same-origin` or `none` (typed URL,
//!   bookmark): the request proceeds;
//! - `cross-site`, `same-site`, or any other value (unknown values fail closed, as do
//!   non-UTF-8 values and a request where any of several header lines is not allowed):
//!   `403` with error code `cross_site_request` (JSON, or the HTML error page for browsers),
//!   no redirect and no cookie written.
//!
//! [`AuthOptions::logout_fetch_metadata_policy`](crate::AuthOptions::logout_fetch_metadata_policy)
//! applies the same policy to `logout` (off by default). The allow-lists
//! [`allowed_link_connections`](crate::AuthOptions::allowed_link_connections),
//! [`allowed_connect_connections`](crate::AuthOptions::allowed_connect_connections) and
//! [`allowed_connect_scopes`](crate::AuthOptions::allowed_connect_scopes) refuse other
//! connections and scopes with `403` before any redirect.

use auth_core::{
    AccessTokenOptions, AuthorizationParams, CallbackParams, ConnectAccountOptions, Error, ForbiddenReason,
    LinkOptions, LoginOptions, LogoutOptions, UnlinkOptions,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, RawQuery, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use crate::cookies::AxumCookieJar;
use crate::error::{AuthError, json_error};
use crate::extract::Session;
use crate::hooks::{CallbackEvent, RequestHead};
use crate::rejection::{SessionRejection, redirect, unauthorized};
use crate::return_to::sanitize;
use crate::state::AuthState;

/// Longest query string (or form body of an account route) the routes read.
const MAX_QUERY: usize = 8 * 1024;

/// Most distinct parameters a route reads (keeps the duplicate check cheap).
const MAX_PARAMS: usize = 64;

impl AuthState {
    /// The `/auth/*` routes (under the configured base path), ready to merge into an app:
    /// `Router::new().merge(auth.router())…layer(auth.layer())`.
    ///
    /// The account-changing routes `link`, `unlink` and `connect` (`GET` with a query, or
    /// `POST` with an `application/x-www-form-urlencoded` form) apply a Fetch-Metadata
    /// resource-isolation policy before anything else: a request whose `Sec-Fetch-Site` header
    /// is `cross-site`, `same-site` or any value other than `same-origin`/`none` (unknown
    /// values fail closed) gets `403` `cross_site_request`, with no redirect and no cookie
    /// written; an absent header (non-browser clients, old browsers) proceeds. Start these
    /// actions from the app's own pages. See also
    /// [`AuthOptions::logout_fetch_metadata_policy`](crate::AuthOptions::logout_fetch_metadata_policy)
    /// and the connection/scope allow-lists on [`AuthOptions`](crate::AuthOptions).
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
            .route(&format!("{base}/link"), get(link).post(link))
            .route(&format!("{base}/unlink"), get(unlink).post(unlink))
            .route(&format!("{base}/connect"), get(connect).post(connect));
        if self.inner.options.access_token_route {
            router = router.route(&format!("{base}/access-token"), get(access_token));
        }
        // The routes work even if the app forgets the layer.
        router.layer(self.layer()).with_state(self.clone())
    }
}

/// Name/value pairs of a query or form body, in order.
type Params = Vec<(String, String)>;

/// Query parameters, each at most once.
fn unique_params(query: Option<&str>) -> Result<Vec<(String, String)>, Error> {
    parse_params(query.unwrap_or("").as_bytes(), None).map(|(params, _)| params)
}

/// The parameters of a query string or of an `application/x-www-form-urlencoded` body (the
/// same syntax): each name at most once, except `list`, which may repeat and whose values may
/// also be space- or comma-separated; its items are returned separately, in order.
fn parse_params(input: &[u8], list: Option<&str>) -> Result<(Params, Vec<String>), Error> {
    if input.len() > MAX_QUERY {
        return Err(Error::InvalidParameter("the parameters are too long".into()));
    }
    let mut params: Params = Vec::new();
    let mut items: Vec<String> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(input) {
        if list == Some(k.as_ref()) {
            items.extend(v.split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_owned));
        } else if params.iter().any(|(n, _)| *n == k) {
            return Err(Error::InvalidParameter(
                "a parameter appears more than once".into(),
            ));
        } else if params.len() == MAX_PARAMS {
            return Err(Error::InvalidParameter("there are too many parameters".into()));
        } else {
            params.push((k.into_owned(), v.into_owned()));
        }
    }
    Ok((params, items))
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
    let hints = match forwarded_login_params(&auth, &params) {
        Ok(h) => h,
        Err(e) => return AuthError::for_request(e, &headers).into_response(),
    };
    let options = LoginOptions::new()
        .authorization_params(hints)
        .app_state(json!({ "returnTo": return_to }));
    let result = auth.client().start_interactive_login(options, &mut jar).await;
    redirect_or_error(result, &headers)
}

/// The authorization parameters `{base}/login` forwards from its query: the names on
/// [`AuthOptions::login_params`](crate::AuthOptions::login_params) that the client does not
/// pin, each value checked ([`check_login_value`]); every other name but `returnTo` is dropped
/// and logged at `debug` (name only). Plus the callback route's `redirect_uri` when the
/// client's is not it.
fn forwarded_login_params(
    auth: &AuthState,
    params: &[(String, String)],
) -> Result<AuthorizationParams, Error> {
    let mut hints = callback_params(auth);
    let allowed = &auth.options().login_params;
    for (name, value) in params {
        if name == "returnTo" {
            continue;
        }
        if !allowed.iter().any(|a| a == name) {
            tracing::debug!(param = ?logged_name(name), "login query parameter is not on the allow-list; dropped");
            continue;
        }
        // A pinned parameter keeps its configured value: a hint in the URL is ignored, and the
        // login proceeds (it is not an error to send one).
        if auth.client().is_pinned_authorization_param(name) {
            tracing::debug!(param = ?logged_name(name), "login query parameter is pinned; dropped");
            continue;
        }
        check_login_value(name, value)?;
        hints = hints.param(name.as_str(), value.as_str());
    }
    Ok(hints)
}

/// A query parameter name as logged: at most 64 characters (Debug-formatted by the caller, so
/// control characters are escaped).
fn logged_name(name: &str) -> &str {
    name.char_indices().nth(64).map_or(name, |(i, _)| &name[..i])
}

/// Refuses a forwarded login value that is too long (over 512 characters) or has control
/// characters, and checks the opt-in names: `max_age` a non-negative integer, `scope` and
/// `acr_values` space-separated tokens (RFC 6749 §3.3 characters), `audience` one value
/// without spaces.
fn check_login_value(name: &str, value: &str) -> Result<(), Error> {
    let bad = |what: &str| Err(Error::InvalidParameter(format!("`{name}` {what}")));
    if value.len() > 512 || value.chars().any(char::is_control) {
        return bad("is not acceptable");
    }
    // `%x21 / %x23-5B / %x5D-7E`: visible ASCII except `"` and `\`.
    let token = |t: &str| t.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E));
    match name {
        "max_age" if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) => {
            bad("must be a non-negative integer (seconds)")
        }
        "scope" | "acr_values" if value.split(' ').all(str::is_empty) || !value.split(' ').all(token) => {
            bad("must be space-separated values")
        }
        "audience" if value.is_empty() || !token(value) => bad("must be one value without spaces"),
        _ => Ok(()),
    }
}

async fn callback_query(
    State(auth): State<AuthState>,
    jar: AxumCookieJar,
    parts: Parts,
    RawQuery(query): RawQuery,
) -> Response {
    let params = CallbackParams::from_query(query.as_deref().unwrap_or(""));
    complete(auth, jar, parts, params).await
}

async fn callback_form(
    State(auth): State<AuthState>,
    jar: AxumCookieJar,
    parts: Parts,
    body: Bytes,
) -> Response {
    if !is_form(&parts.headers) {
        return unsupported_media_type("The callback must be form-encoded.");
    }
    complete(auth, jar, parts, CallbackParams::from_form(&body)).await
}

/// Completes the callback, then answers with the app's `on_callback` hook, or by default a
/// redirect to `returnTo` (the error page or JSON on failure).
async fn complete(
    auth: AuthState,
    mut jar: AxumCookieJar,
    parts: Parts,
    params: Result<CallbackParams, Error>,
) -> Response {
    let result = match params {
        Ok(p) => auth.client().complete_callback(&p, &mut jar).await,
        Err(e) => Err(e),
    };
    let target = result
        .as_ref()
        .ok()
        .and_then(|done| done.app_state())
        .and_then(|s| s.get("returnTo"))
        .and_then(Value::as_str)
        .and_then(sanitize)
        .unwrap_or_else(|| auth.options().default_return_to.clone());
    let result = result.map_err(|e| AuthError::for_request(e, &parts.headers));
    let event = CallbackEvent::new(RequestHead::new(parts), result, target);
    match &auth.options().hooks.on_callback {
        Some(hook) => hook(event).await,
        None => event.default_response(),
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
        Ok(None) if crate::error::wants_html(headers) => Some(redirect(&auth.login_location(uri))),
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

/// The `Sec-Fetch-Site` request header (Fetch Metadata).
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The Fetch-Metadata resource-isolation policy of the account-changing routes: `true` when
/// `Sec-Fetch-Site` is absent, `same-origin` or `none`. `cross-site`, `same-site`, any other
/// value, a value that is not visible ASCII, and several header lines of which any is not
/// allowed are refused (fail closed). Values are compared ignoring ASCII case and surrounding
/// whitespace.
pub(crate) fn fetch_metadata_allows(headers: &HeaderMap) -> bool {
    headers.get_all(SEC_FETCH_SITE).iter().all(|value| {
        value.to_str().is_ok_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("same-origin") || v.eq_ignore_ascii_case("none")
        })
    })
}

/// The `403 cross_site_request` answer of the Fetch-Metadata policy.
fn cross_site_refusal(headers: &HeaderMap) -> Response {
    AuthError::for_request(Error::Forbidden(ForbiddenReason::CrossSiteRequest), headers).into_response()
}

/// `415` for a `POST` whose body is not `application/x-www-form-urlencoded`.
fn unsupported_media_type(description: &'static str) -> Response {
    json_error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        description,
    )
}

/// The request of an account route (`link`, `unlink`, `connect`), once admitted.
struct AccountRequest {
    headers: HeaderMap,
    params: Params,
    /// The items of the route's repeatable parameter (`scopes` for `connect`).
    list: Vec<String>,
}

impl AccountRequest {
    /// Admits a request, in this order: the Fetch-Metadata policy (`403`, before anything
    /// else is looked at), the session (answered like a protected route), then the parameters
    /// of the query (`GET`) or of the form body (`POST`; `415` for another body type). `list`
    /// names the one parameter that may repeat.
    async fn admit(
        auth: &AuthState,
        jar: &AxumCookieJar,
        uri: &http::Uri,
        req: Request,
        list: Option<&str>,
    ) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let headers = parts.headers;
        if !fetch_metadata_allows(&headers) {
            return Err(cross_site_refusal(&headers));
        }
        if let Some(r) = require_session(auth, jar, &headers, uri).await {
            return Err(r);
        }
        let parsed = if parts.method == Method::POST {
            if !is_form(&headers) {
                return Err(unsupported_media_type(
                    "The request body must be application/x-www-form-urlencoded.",
                ));
            }
            match axum::body::to_bytes(body, MAX_QUERY + 1).await {
                Ok(bytes) => parse_params(&bytes, list),
                Err(_) => Err(Error::InvalidParameter(
                    "the form body is too long or unreadable".into(),
                )),
            }
        } else {
            parse_params(parts.uri.query().unwrap_or("").as_bytes(), list)
        };
        match parsed {
            Ok((params, list)) => Ok(Self {
                headers,
                params,
                list,
            }),
            Err(e) => Err(AuthError::for_request(e, &headers).into_response()),
        }
    }

    /// The required `connection`, refused unless it is on `allowed` (when set).
    fn connection(&self, allowed: Option<&Vec<String>>) -> Result<String, Error> {
        let connection = param(&self.params, "connection")
            .ok_or_else(|| Error::InvalidParameter("`connection` is required".into()))?;
        if allowed.is_some_and(|list| !list.iter().any(|c| c == connection)) {
            return Err(Error::Forbidden(ForbiddenReason::ConnectionNotAllowed));
        }
        Ok(connection.to_owned())
    }
}

/// The authorization parameters every flow the routes start carries: the callback route's
/// `redirect_uri` when the client's is not it (see [`AuthState::callback_url`]).
fn callback_params(auth: &AuthState) -> AuthorizationParams {
    match auth.redirect_uri_override() {
        Some(uri) => AuthorizationParams::new().redirect_uri(uri),
        None => AuthorizationParams::new(),
    }
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
    OriginalUri(uri): OriginalUri,
    req: Request,
) -> Response {
    let request = match AccountRequest::admit(&auth, &jar, &uri, req, None).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let result = async {
        let connection = request.connection(auth.options().allowed_link_connections.as_ref())?;
        let mut options = LinkOptions::new(connection)
            .authorization_params(callback_params(&auth))
            .app_state(return_to_state(&auth, &request.params));
        if let Some(scope) = param(&request.params, "connectionScope") {
            options = options.connection_scope(scope);
        }
        auth.client().start_link_user(options, &mut jar).await
    }
    .await;
    redirect_or_error(result, &request.headers)
}

async fn unlink(
    State(auth): State<AuthState>,
    mut jar: AxumCookieJar,
    OriginalUri(uri): OriginalUri,
    req: Request,
) -> Response {
    let request = match AccountRequest::admit(&auth, &jar, &uri, req, None).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let result = async {
        let connection = request.connection(auth.options().allowed_link_connections.as_ref())?;
        let options = UnlinkOptions::new(connection)
            .authorization_params(callback_params(&auth))
            .app_state(return_to_state(&auth, &request.params));
        auth.client().start_unlink_user(options, &mut jar).await
    }
    .await;
    redirect_or_error(result, &request.headers)
}

async fn connect(
    State(auth): State<AuthState>,
    mut jar: AxumCookieJar,
    OriginalUri(uri): OriginalUri,
    req: Request,
) -> Response {
    // `scopes` may repeat (`scopes=a&scopes=b`) or be space/comma separated; nothing else may.
    let request = match AccountRequest::admit(&auth, &jar, &uri, req, Some("scopes")).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let result = async {
        let connection = request.connection(auth.options().allowed_connect_connections.as_ref())?;
        let allowed_scopes = auth.options().allowed_connect_scopes.as_ref();
        if allowed_scopes.is_some_and(|allowed| request.list.iter().any(|s| !allowed.contains(s))) {
            return Err(Error::Forbidden(ForbiddenReason::ScopeNotAllowed));
        }
        let mut options = ConnectAccountOptions::new(connection)
            .scopes(request.list.clone())
            .app_state(return_to_state(&auth, &request.params));
        if let Some(uri) = auth.redirect_uri_override() {
            options = options.redirect_uri(uri);
        }
        auth.client().start_connect_account(options, &mut jar).await
    }
    .await;
    redirect_or_error(result, &request.headers)
}

async fn logout(
    State(auth): State<AuthState>,
    mut jar: AxumCookieJar,
    parts: Parts,
    RawQuery(query): RawQuery,
) -> Response {
    let headers = &parts.headers;
    if auth.options().logout_fetch_metadata_policy && !fetch_metadata_allows(headers) {
        return cross_site_refusal(headers);
    }
    let params = unique_params(query.as_deref()).unwrap_or_default();
    let path = param(&params, "returnTo")
        .and_then(sanitize)
        .unwrap_or_else(|| auth.options().default_return_to.clone());
    let base = auth.public_base(headers);
    let options = match base.join(&path) {
        Ok(abs) => LogoutOptions::new().return_to(abs.to_string()),
        Err(_) => LogoutOptions::new(),
    };
    // `federated=true` (or a bare `federated`) also ends the upstream IdP's session; any
    // other value leaves the logout URL unchanged.
    let federated = matches!(param(&params, "federated"), Some("" | "true" | "1"));
    let options = options.federated(federated);
    // Only for `on_logout`: the session about to end (a failed read is no session).
    let ending = match auth.options().hooks.on_logout {
        Some(_) => auth.client().get_session(&mut jar).await.ok().flatten(),
        None => None,
    };
    let result = auth.client().logout(options, &mut jar).await;
    if let (Ok(_), Some(session)) = (&result, ending) {
        crate::hooks::on_logout(&auth.options().hooks, RequestHead::of(&parts), session).await;
    }
    redirect_or_error(result, headers)
}

/// OIDC Back-Channel Logout §2.5/§2.8: form-encoded `logout_token`; `200` with
/// `Cache-Control: no-store` when the sessions are ended, `400` with an OAuth error body when
/// the request or token is bad.
async fn backchannel_logout(State(auth): State<AuthState>, parts: Parts, body: Bytes) -> Response {
    let bad = |description: &str| json_error(StatusCode::BAD_REQUEST, "invalid_request", description);
    if !is_form(&parts.headers) {
        return bad("the request must be application/x-www-form-urlencoded");
    }
    let Ok(params) = CallbackParams::from_form(&body) else {
        return bad("the request body is malformed");
    };
    let Some(token) = params.get("logout_token").filter(|t| !t.is_empty()) else {
        return bad("logout_token is required");
    };
    match auth.client().handle_backchannel_logout(token).await {
        Ok(done) => {
            let hooks = &auth.options().hooks;
            if hooks.on_backchannel_logout.is_some() {
                crate::hooks::on_backchannel_logout(hooks, RequestHead::new(parts), done).await;
            }
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

async fn profile(session: Result<Session, SessionRejection>) -> Response {
    match session {
        Ok(s) => {
            let mut r = axum::Json(Value::Object(s.user().clone())).into_response();
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(r) => api_rejection(r),
    }
}

/// The answer of a JSON route (`profile`, `access-token`) without a session: `401` JSON
/// whatever [`Unauthenticated`](crate::Unauthenticated) says; a store failure stays `503`
/// (these routes extract `Session`, so `optional_session_on_store_error` does not apply).
fn api_rejection(rejection: SessionRejection) -> Response {
    match rejection {
        SessionRejection::Unauthenticated(_) | SessionRejection::LoginRequired { .. } => unauthorized(),
        other => other.into_response(),
    }
}

/// `?audience=` (optional) must be the configured audience or on
/// [`AuthOptions::access_token_audiences`](crate::AuthOptions::access_token_audiences);
/// other query parameters are ignored.
async fn access_token(
    State(auth): State<AuthState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    session: Result<Session, SessionRejection>,
) -> Response {
    let session = match session {
        Ok(s) => s,
        Err(r) => return api_rejection(r),
    };
    let options = match access_token_options(&auth, query.as_deref()) {
        Ok(o) => o,
        Err(e) => return AuthError::for_request(e, &headers).into_response(),
    };
    match session.access_token(options).await {
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

/// The options of `{base}/access-token`: the audience of `?audience=` when it is allowed (the
/// configured one, or one on the route's allow-list), `403` `audience_not_allowed` otherwise.
fn access_token_options(auth: &AuthState, query: Option<&str>) -> Result<AccessTokenOptions, Error> {
    let params = unique_params(query)?;
    let Some(audience) = param(&params, "audience") else {
        return Ok(AccessTokenOptions::new());
    };
    let configured = auth.client().authorization_param("audience") == Some(audience);
    let listed = auth
        .options()
        .access_token_audiences
        .as_ref()
        .is_some_and(|list| list.iter().any(|a| a == audience));
    if !(configured || listed) {
        tracing::debug!("access-token audience not on the allow-list; refused");
        return Err(Error::Forbidden(ForbiddenReason::AudienceNotAllowed));
    }
    Ok(AccessTokenOptions::new().audience(audience))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(SEC_FETCH_SITE, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn fetch_metadata_policy_table() {
        let huge = vec![b'a'; 64 * 1024];
        let huge_same_origin = [b"same-origin".as_slice(), &[b' '; 1024]].concat();
        let rows: &[(&str, &[&[u8]], bool)] = &[
            ("absent", &[], true),
            ("same-origin", &[b"same-origin"], true),
            ("none", &[b"none"], true),
            ("upper case", &[b"Same-Origin"], true),
            ("padded", &[b" none\t"], true),
            ("two allowed lines", &[b"same-origin", b"none"], true),
            ("padding only", &[&huge_same_origin], true),
            ("cross-site", &[b"cross-site"], false),
            ("same-site", &[b"same-site"], false),
            ("CROSS-SITE", &[b"CROSS-SITE"], false),
            ("empty", &[b""], false),
            ("unknown token", &[b"same-origin-ish"], false),
            ("quoted", &[b"\"same-origin\""], false),
            ("list", &[b"same-origin, cross-site"], false),
            ("list of allowed", &[b"same-origin, none"], false),
            ("structured parameter", &[b"same-origin;x=1"], false),
            (
                "a disallowed line among allowed",
                &[b"same-origin", b"cross-site"],
                false,
            ),
            ("non-UTF-8", &[b"same-origin\xff"], false),
            ("obs-text only", &[b"\xe9"], false),
            ("tab inside", &[b"same-\torigin"], false),
            ("64 KB", &[&huge], false),
        ];
        for (what, values, allowed) in rows {
            assert_eq!(fetch_metadata_allows(&headers(values)), *allowed, "{what}");
        }
    }

    fn pairs(query: &str) -> Params {
        unique_params(Some(query)).unwrap()
    }

    #[test]
    fn login_forwards_the_allow_list_and_checks_opt_in_values() {
        use crate::state::{AuthOptions, test_state_with};
        // Default: today's hints plus `ui_locales`; opt-in names and unknown ones are dropped.
        let auth = test_state_with(AuthOptions::new());
        let p = forwarded_login_params(
            &auth,
            &pairs(
                "returnTo=%2Fx&ui_locales=fr-CA+en&screen_hint=signup&audience=a&scope=admin&max_age=0&x=1",
            ),
        )
        .unwrap();
        let got: Vec<_> = p.iter().collect();
        assert_eq!(got, [("screen_hint", "signup"), ("ui_locales", "fr-CA en")]);

        let auth =
            test_state_with(AuthOptions::new().login_params(["audience", "scope", "acr_values", "max_age"]));
        let p = forwarded_login_params(
            &auth,
            &pairs("audience=https%3A%2F%2Fapi%2F&scope=read%3Areports&acr_values=a+b&max_age=300"),
        )
        .unwrap();
        assert_eq!(p.get("audience"), Some("https://api/"));
        assert_eq!(p.get("scope"), Some("read:reports"));
        assert_eq!(p.get("acr_values"), Some("a b"));
        assert_eq!(p.get("max_age"), Some("300"));
        for bad in [
            "max_age=-1",
            "max_age=%2B5",
            "max_age=1.5",
            "max_age=",
            "max_age=99999999999",
            "scope=",
            "scope=+",
            "scope=a%22b",
            "scope=a%5Cb",
            "acr_values=a%09b",
            "audience=a+b",
            "audience=",
            "audience=a%0Ab",
        ] {
            let e = forwarded_login_params(&auth, &pairs(bad)).unwrap_err();
            assert_eq!(e.code(), "invalid_parameter", "{bad}");
        }
        let long = format!("audience={}", "a".repeat(513));
        assert!(forwarded_login_params(&auth, &pairs(&long)).is_err());
    }

    #[test]
    fn logged_names_are_capped() {
        assert_eq!(logged_name("abc"), "abc");
        let long = "é".repeat(100);
        assert_eq!(logged_name(&long).chars().count(), 64);
    }

    #[test]
    fn access_token_audiences_come_from_the_allow_list() {
        use crate::state::{AuthOptions, test_state_with};
        let auth = test_state_with(AuthOptions::new());
        assert!(access_token_options(&auth, None).is_ok());
        assert!(access_token_options(&auth, Some("other=1")).is_ok());
        let e = access_token_options(&auth, Some("audience=https%3A%2F%2Fevil%2F")).unwrap_err();
        assert_eq!(e.code(), "audience_not_allowed");
        assert!(access_token_options(&auth, Some("audience=a&audience=b")).is_err());
        let auth = test_state_with(AuthOptions::new().access_token_audiences(["https://orders/"]));
        assert!(access_token_options(&auth, Some("audience=https%3A%2F%2Forders%2F")).is_ok());
        assert!(access_token_options(&auth, Some("audience=https%3A%2F%2Forders")).is_err());
    }

    #[test]
    fn one_parser_for_queries_and_form_bodies() {
        let (params, scopes) = parse_params(
            b"connection=c&scopes=a%20b&scopes=c,d&returnTo=%2Fx",
            Some("scopes"),
        )
        .unwrap();
        assert_eq!(param(&params, "connection"), Some("c"));
        assert_eq!(param(&params, "returnTo"), Some("/x"));
        assert_eq!(scopes, ["a", "b", "c", "d"]);
        assert!(parse_params(b"connection=a&connection=b", None).is_err());
        assert!(
            parse_params(b"scopes=a&scopes=b", None).is_err(),
            "only the named list may repeat"
        );
        let many: String = (0..=MAX_PARAMS).map(|i| format!("p{i}=&")).collect();
        assert!(parse_params(many.as_bytes(), None).is_err());
        assert!(parse_params(&vec![b'a'; MAX_QUERY + 1], None).is_err());
        assert_eq!(unique_params(None).unwrap(), Vec::<(String, String)>::new());
    }
}
