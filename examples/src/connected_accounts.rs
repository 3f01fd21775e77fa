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
//!   Token Vault token as a Bearer token and returns its JSON — the "fake upstream API" demo.
//!
//! Works with `AUTH0_DOMAIN` (https; extra trust anchors from `SSL_CERT_FILE`) and with
//! `OIDC_ISSUER` on a loopback http URL (the My Account API then lives at the issuer's origin,
//! `/me/v1/…`).

use auth_axum::{AuthError, AuthState, RequireAuth, Session};
use auth_core::{ConnectionTokenOptions, Error, ListOptions};
use axum::extract::Query;
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

/// The app, for a given auth state.
pub fn app(auth: &AuthState) -> Router {
    let protected = Router::new()
        .route("/connected-accounts", get(connected_accounts))
        .route("/connection-token", get(connection_token))
        .route("/upstream", get(upstream))
        .route_layer(RequireAuth::new());
    crate::quickstart::routes()
        .merge(protected)
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

async fn upstream(session: Session, Query(q): Query<ConnectionQuery>) -> Response {
    let Ok(upstream) = std::env::var("UPSTREAM_API_URL") else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "not_configured", "error_description": "set UPSTREAM_API_URL"})),
        )
            .into_response();
    };
    let token = match options(&q) {
        Ok(o) => session.access_token_for_connection(o).await,
        Err(e) => Err(e),
    };
    let token = match token {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let resp = reqwest::Client::new()
        .get(&upstream)
        .bearer_auth(token.token.expose())
        .send()
        .await;
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
