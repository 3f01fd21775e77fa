//! The dashboard app: the everyday tasks of a real app, each with the library's own routes
//! (no login or callback route of its own).
//!
//! HTTP contract (outside tools drive it):
//! - env: the quickstart's (`OIDC_ISSUER` or `AUTH0_DOMAIN`, `AUTH0_CLIENT_ID`,
//!   `AUTH0_CLIENT_SECRET`, `AUTH0_SECRET`, `APP_BASE_URL`), plus `SESSION_STORE` (`cookie`,
//!   the default, or `redis`, then `REDIS_URL`, default `redis://127.0.0.1:6379`), `API_AUDIENCE`
//!   and `API_SCOPE` (default `read:orders`) for `/api/orders`;
//! - the library's routes under `/account` (`/account/login`, `/account/callback` — the
//!   callback URL to register is `{APP_BASE_URL}/account/callback` — `/account/logout`, …);
//! - `GET /`: public; `Hello, <name>` for a logged-in user, else log-in and sign-up links;
//! - `GET /signup[?lang=fr]`: to `/account/login?screen_hint=signup[&ui_locales=fr]`;
//! - `GET /dashboard`: a page (no session: `302` to the login route); shows the name, the
//!   theme and a visit count kept in the session (app data), counting this visit;
//! - `POST /dashboard/theme` (form `theme=light|dark`): stores the theme in the session, `303`
//!   to `/dashboard`; another value is `400`;
//! - `GET /api/me`: an API (no session: `401` JSON): `{"sub", "name", "email", "theme",
//!   "visits"}`;
//! - `GET /admin`: users whose `roles` claim holds `admin` (an async policy); others get `403`,
//!   as the app's own page for browsers (`id="forbidden"`), JSON otherwise;
//! - `GET /api/orders`: an access token for `API_AUDIENCE` and `API_SCOPE` (refreshed when
//!   needed); answers `{"audience", "scope", "expires_at"}` (never the token). When the provider
//!   wants a new login (`invalid_grant`, `invalid_scope`, `consent_required`, …): `401`
//!   `{"error": "<provider code>", "login": "/account/login?…"}`, the link asking for that API;
//! - `GET /goodbye`: where logging out lands (`/account/logout?returnTo=/goodbye`);
//! - a failed login (the provider's `access_denied`, a stale link, …) answers with the app's own
//!   error page (`400`, `id="login-error"`), not the library's.
//!
//! The session keeps only the claims the app reads (`before_session_saved`), which keeps the
//! cookies small; logouts (front- and back-channel) are logged for the app's own clean-up.

use std::sync::Arc;

use auth_axum::require_auth::AuthorizePolicy;
use auth_axum::{
    AuthError, AuthOptions, AuthResponses, AuthState, DefaultResponses, LOGIN_HINTS, RequireAuth, Session,
};
use auth_core::{AccessTokenOptions, HookError, SaveKind, ServerClientBuilder, UserClaims};
use axum::extract::{Form, Query};
use axum::http::header::CACHE_CONTROL;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::quickstart::escape;

/// Where the library's routes are mounted.
pub const BASE_PATH: &str = "/account";

/// The claims the session keeps; everything else the ID token carries is dropped at login.
const KEPT_CLAIMS: &[&str] = &["sub", "name", "email", "picture", "roles", "sid"];

/// What the app reads of the user's claims (typed, instead of indexing the claim map).
#[derive(Debug, Deserialize)]
struct Profile {
    sub: String,
    name: Option<String>,
    email: Option<String>,
}

/// The app's settings besides the auth client's.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The API of `/api/orders` (`API_AUDIENCE`); `None`: the route answers `404`.
    pub api_audience: Option<String>,
    /// The scope asked for it (`API_SCOPE`, default `read:orders`).
    pub api_scope: String,
}

impl Settings {
    /// From `API_AUDIENCE` and `API_SCOPE`.
    #[must_use]
    pub fn from_env() -> Self {
        Self::with(|name| std::env::var(name).ok())
    }

    /// [`Settings::from_env`] with the variables looked up through `lookup`.
    #[must_use]
    pub fn with(lookup: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            api_audience: lookup("API_AUDIENCE").filter(|a| !a.is_empty()),
            api_scope: lookup("API_SCOPE")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "read:orders".to_owned()),
        }
    }
}

/// The auth options of the app: routes under [`BASE_PATH`], its hooks and its own pages.
pub fn options() -> AuthOptions {
    AuthOptions::new()
        .base_path(BASE_PATH)
        // `audience` is opt-in: `/api/orders` sends users back to log in for its API.
        .login_params(LOGIN_HINTS.iter().copied().chain(["audience"]))
        .responses(AppPages)
        .before_session_saved(|mut save, _request| async move {
            save.user_mut()
                .retain(|claim, _| KEPT_CLAIMS.contains(&claim.as_str()));
            if save.kind() == SaveKind::Login {
                save.app_data_mut().entry("visits").or_insert_with(|| json!(0));
            }
            Ok::<_, HookError>(save)
        })
        .on_callback(|event| async move {
            match event.error() {
                None => event.default_response(),
                Some(error) => {
                    tracing::info!(code = error.inner().code(), "login failed");
                    login_error_page(error.inner().code())
                }
            }
        })
        .on_logout(|event| async move {
            tracing::info!(
                sid = event.sid(),
                "logged out; the app would purge its drafts here"
            );
            Ok::<_, HookError>(())
        })
        .on_backchannel_logout(|event| async move {
            tracing::info!(sid = ?event.sid(), sub = ?event.sub(), "ended by the provider");
            Ok::<_, HookError>(())
        })
}

/// The auth state from the environment: a cookie session store, or Redis when
/// `SESSION_STORE=redis`.
///
/// # Errors
/// A message naming what to fix.
pub async fn auth_from_env() -> Result<AuthState, String> {
    auth_with(|name| std::env::var(name).ok()).await
}

/// [`auth_from_env`] with the variables looked up through `lookup`.
///
/// # Errors
/// A message naming what to fix.
pub async fn auth_with(lookup: impl Fn(&str) -> Option<String>) -> Result<AuthState, String> {
    let mut builder = ServerClientBuilder::from_env_with(&lookup).map_err(|e| e.to_string())?;
    match lookup("SESSION_STORE").as_deref() {
        Some("redis") => {
            let url = lookup("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
            let backend = auth_redis::RedisBackend::connect(&url)
                .await
                .map_err(|e| format!("cannot connect to Redis (REDIS_URL): {e}"))?;
            builder = builder.session_backend(backend).server_side_sessions(true);
        }
        Some("cookie") | None => {}
        Some(other) => return Err(format!("SESSION_STORE `{other}`: use `cookie` or `redis`")),
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    AuthState::new(client, options()).map_err(|e| e.to_string())
}

/// The app, for a given auth state (built with [`options`]).
pub fn app(auth: &AuthState, settings: Settings) -> Router {
    let settings = Arc::new(settings);
    let pages = Router::new()
        .route("/dashboard", get(dashboard))
        .route("/dashboard/theme", post(set_theme))
        .route_layer(RequireAuth::login());
    let api = Router::new()
        .route("/api/me", get(me))
        .route(
            "/api/orders",
            get({
                let settings = settings.clone();
                move |session: Session| orders(session, settings)
            }),
        )
        .route_layer(RequireAuth::api());
    let admin = Router::new()
        .route("/admin", get(admin))
        .route_layer(RequireAuth::new().with_policy(HasRole("admin")));
    Router::new()
        .route("/", get(home))
        .route("/signup", get(signup))
        .route("/goodbye", get(goodbye))
        .merge(pages)
        .merge(api)
        .merge(admin)
        .merge(auth.router())
        .layer(auth.layer())
}

async fn home(session: Option<Session>) -> Response {
    let body = match session.map(|s| s.claims::<Profile>()) {
        Some(Ok(p)) => format!(
            "<p>Hello, <strong id=\"user-name\">{}</strong>.</p>\
             <p><a href=\"/dashboard\">Dashboard</a> · <a id=\"logout\" href=\"{BASE_PATH}/logout?returnTo=/goodbye\">Log out</a></p>",
            escape(p.name.as_deref().unwrap_or(&p.sub))
        ),
        Some(Err(e)) => return e.into_response(),
        None => format!(
            "<p>You are not logged in.</p><p><a id=\"login\" href=\"{BASE_PATH}/login\">Log in</a> · \
             <a id=\"signup\" href=\"/signup\">Sign up</a></p>"
        ),
    };
    page(StatusCode::OK, "Home", &body)
}

#[derive(Deserialize)]
struct SignupQuery {
    lang: Option<String>,
}

async fn signup(Query(q): Query<SignupQuery>) -> Redirect {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("returnTo", "/dashboard")
        .append_pair("screen_hint", "signup");
    if let Some(lang) = q.lang.filter(|l| !l.is_empty() && l.len() <= 35) {
        query.append_pair("ui_locales", &lang);
    }
    Redirect::to(&format!("{BASE_PATH}/login?{}", query.finish()))
}

async fn dashboard(session: Session) -> Response {
    let profile = match session.claims::<Profile>() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let visits = match session.get::<u64>("visits") {
        Ok(v) => v.unwrap_or(0) + 1,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = session.set("visits", &visits) {
        return e.into_response();
    }
    let theme: String = session
        .get("theme")
        .ok()
        .flatten()
        .unwrap_or_else(|| "light".to_owned());
    let body = format!(
        "<p>Welcome back, <strong id=\"user-name\">{}</strong>.</p>\
         <p>Visits: <span id=\"visits\">{visits}</span> · Theme: <span id=\"theme\">{}</span></p>\
         <form method=\"post\" action=\"/dashboard/theme\">\
         <select name=\"theme\"><option>light</option><option>dark</option></select>\
         <button>Save</button></form>",
        escape(profile.name.as_deref().unwrap_or(&profile.sub)),
        escape(&theme)
    );
    page(StatusCode::OK, "Dashboard", &body)
}

#[derive(Deserialize)]
struct ThemeForm {
    theme: String,
}

async fn set_theme(session: Session, Form(form): Form<ThemeForm>) -> Response {
    if !["light", "dark"].contains(&form.theme.as_str()) {
        return (StatusCode::BAD_REQUEST, "theme must be light or dark").into_response();
    }
    match session.set("theme", &form.theme) {
        Ok(()) => Redirect::to("/dashboard").into_response(),
        Err(e) => e.into_response(),
    }
}

async fn me(session: Session) -> Response {
    let profile = match session.claims::<Profile>() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let theme: Option<String> = session.get("theme").ok().flatten();
    let visits: Option<u64> = session.get("visits").ok().flatten();
    Json(json!({
        "sub": profile.sub,
        "name": profile.name,
        "email": profile.email,
        "theme": theme,
        "visits": visits,
    }))
    .into_response()
}

async fn admin(session: Session) -> Response {
    let name = session.claims::<Profile>().ok().and_then(|p| p.name);
    page(
        StatusCode::OK,
        "Admin",
        &format!(
            "<p id=\"admin\">Admin area for {}.</p>",
            escape(name.as_deref().unwrap_or("you"))
        ),
    )
}

async fn orders(session: Session, settings: Arc<Settings>) -> Response {
    let Some(audience) = settings.api_audience.clone() else {
        return (StatusCode::NOT_FOUND, "API_AUDIENCE is not configured").into_response();
    };
    let options = AccessTokenOptions::new()
        .audience(audience.clone())
        .scope(settings.api_scope.clone());
    match session.access_token(options).await {
        Ok(token) => {
            let mut r = Json(json!({
                "audience": audience,
                "scope": token.scope,
                "expires_at": token.expires_at,
            }))
            .into_response();
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) if e.inner().requires_login() => relogin(&e, &audience),
        Err(e) => e.into_response(),
    }
}

/// `401` with the provider's code and the login link that asks for `audience` again.
fn relogin(error: &AuthError, audience: &str) -> Response {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("returnTo", "/dashboard")
        .append_pair("audience", audience)
        .finish();
    let body = json!({
        "error": error.inner().code(),
        "error_description": "Log in again to use this API.",
        "login": format!("{BASE_PATH}/login?{query}"),
    });
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

async fn goodbye() -> Response {
    page(
        StatusCode::OK,
        "Goodbye",
        &format!(
            "<p id=\"goodbye\">You are logged out.</p><p><a href=\"{BASE_PATH}/login\">Log in again</a></p>"
        ),
    )
}

/// Lets users whose `roles` claim holds the role through. Async, as a check against the app's
/// database would be.
#[derive(Debug, Clone, Copy)]
struct HasRole(&'static str);

impl AuthorizePolicy for HasRole {
    fn authorize(&self, user: &UserClaims, _parts: &Parts) -> impl Future<Output = bool> + Send {
        let allowed = user
            .get("roles")
            .and_then(|r| r.as_array())
            .is_some_and(|roles| roles.iter().any(|r| r == self.0));
        async move { allowed }
    }
}

/// The app's own `403` page for browsers; everything else keeps the library's answers.
struct AppPages;

impl AuthResponses for AppPages {
    fn forbidden(&self, parts: &Parts) -> Response {
        let html = parts
            .headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        if !html {
            return DefaultResponses.forbidden(parts);
        }
        page(
            StatusCode::FORBIDDEN,
            "Not for you",
            "<p id=\"forbidden\">This page is for administrators.</p><p><a href=\"/\">Home</a></p>",
        )
    }
}

/// The app's page for a failed login (the library's typed error code only, no provider text).
fn login_error_page(code: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Login failed",
        &format!(
            "<p id=\"login-error\">We could not log you in ({}).</p><p><a href=\"{BASE_PATH}/login\">Try again</a></p>",
            escape(code)
        ),
    )
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let mut r = (
        status,
        Html(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
             <body><h1>{title}</h1>{body}</body></html>"
        )),
    )
        .into_response();
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
