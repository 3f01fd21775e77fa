//! The application's hooks end to end, against the real test IdP: `before_session_saved` on
//! login and refresh (order, edits, errors, the request head), `on_callback` (custom
//! responses, the app's own error page, RAR results), `on_logout` and
//! `on_backchannel_logout` (called once, with the right `sub`/`sid`, errors logged).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_axum::{AuthOptions, AuthState, CallbackEvent, Session};
use auth_core::{AuthorizationParams, HookError, SaveKind};
use auth_tests::*;
use axum::http::{self, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// What the hooks did, in order.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<String>>>);

impl Calls {
    fn push(&self, entry: String) {
        self.0.lock().unwrap().push(entry);
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// The app data a session holds under `key` (`null` when absent).
async fn data(session: Session, axum::extract::Path(key): axum::extract::Path<String>) -> Json<Value> {
    Json(session.inner().get::<Value>(&key).unwrap().unwrap_or(Value::Null))
}

/// The quickstart (`/profile`, `/token`) plus `/data/{key}`.
fn router(auth: &AuthState) -> Router {
    auth_examples::quickstart::routes()
        .route("/data/{key}", get(data))
        .merge(auth.router())
        .layer(auth.layer())
}

async fn start(options: AuthOptions) -> TestApp {
    TestApp::start_with(AppConfig {
        options,
        router: Box::new(router),
        ..AppConfig::default()
    })
    .await
}

/// A hook that trims claims (drops `email`, adds `plan`), writes app data, and records its
/// calls with the request it ran in.
fn trimming_options(calls: &Calls) -> AuthOptions {
    let (saves, callbacks) = (calls.clone(), calls.clone());
    AuthOptions::new()
        .before_session_saved(move |mut save, request| {
            let calls = saves.clone();
            async move {
                let request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                calls.push(format!(
                    "before_session_saved {} {} {} {request_id}",
                    save.kind().as_str(),
                    request.method(),
                    request.uri().path()
                ));
                save.user_mut().remove("email");
                save.user_mut().insert("plan".into(), json!("pro"));
                match save.kind() {
                    SaveKind::Login => {
                        save.app_data_mut().insert("first_login".into(), json!(true));
                    }
                    SaveKind::Refresh => {
                        let n = save
                            .app_data()
                            .get("refreshes")
                            .and_then(Value::as_u64)
                            .unwrap_or(0);
                        save.app_data_mut().insert("refreshes".into(), json!(n + 1));
                    }
                    _ => {}
                }
                Ok(save)
            }
        })
        .on_callback(move |event: CallbackEvent| {
            let calls = callbacks.clone();
            async move {
                calls.push(format!(
                    "on_callback ok={} returnTo={} app_state={}",
                    event.error().is_none(),
                    event.return_to(),
                    event.app_state().cloned().unwrap_or_default()
                ));
                event.default_response()
            }
        })
}

#[tokio::test]
async fn login_runs_before_session_saved_then_on_callback_and_stores_the_edits() {
    let calls = Calls::default();
    let app = start(trimming_options(&calls)).await;
    let http = TestApp::browser();
    let done = app.login(&http, "returnTo=%2Fprofile", "alice").await;
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), "/profile", "the default answer");
    assert_eq!(
        calls.all(),
        [
            "before_session_saved login GET /auth/callback -".to_owned(),
            r#"on_callback ok=true returnTo=/profile app_state={"returnTo":"/profile"}"#.to_owned(),
        ],
        "order, and the callback request reaches before_session_saved"
    );
    let (status, claims) = json_get(&http, &app.url("/profile")).await;
    assert_eq!(status, 200);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["name"], "Test User alice", "untouched claims stay");
    assert!(claims.get("email").is_none(), "dropped claim absent: {claims}");
    assert_eq!(claims["plan"], "pro", "added claim present");
    assert_eq!(json_get(&http, &app.url("/data/first_login")).await.1, true);
    // `/auth/profile` serves the same stored claims.
    assert!(
        json_get(&http, &app.url("/auth/profile"))
            .await
            .1
            .get("email")
            .is_none()
    );
}

#[tokio::test]
async fn a_refresh_runs_the_hook_with_the_handlers_request() {
    let calls = Calls::default();
    let app = TestApp::start_with(AppConfig {
        client: Box::new(|b| b.token_refresh_leeway(Duration::ZERO)),
        options: trimming_options(&calls),
        router: Box::new(router),
        idp: IdpOptions {
            access_token_ttl: Some(2),
            ..IdpOptions::default()
        },
        ..AppConfig::default()
    })
    .await;
    let http = TestApp::browser();
    app.login(&http, "", "alice").await;
    assert_eq!(json_get(&http, &app.url("/token")).await.0, 200);
    assert_eq!(
        calls.all().len(),
        2,
        "a token still valid is no save: {:?}",
        calls.all()
    );

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = http
        .get(app.url("/token"))
        .header("x-request-id", "req-7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        calls.all()[2..],
        ["before_session_saved refresh GET /token req-7".to_owned()],
        "the refresh ran the hook once, with the handler's request head"
    );
    let (_, claims) = json_get(&http, &app.url("/profile")).await;
    assert!(
        claims.get("email").is_none(),
        "still dropped after the refresh: {claims}"
    );
    assert_eq!(claims["plan"], "pro");
    assert_eq!(json_get(&http, &app.url("/data/refreshes")).await.1, 1);
    assert_eq!(
        json_get(&http, &app.url("/data/first_login")).await.1,
        true,
        "the login's app data survives the refresh"
    );
}

/// Refuses `bob`, fails for `carol` and for every refresh, accepts the rest.
fn picky_options() -> AuthOptions {
    AuthOptions::new().before_session_saved(|save, _| async move {
        match (save.kind(), save.sub()) {
            (SaveKind::Refresh, _) => Err(HookError::new("profile database unavailable")),
            (_, Some("bob")) => Err(HookError::refuse("bob is not on the beta list")),
            (_, Some("carol")) => Err(HookError::new("profile database unavailable")),
            _ => Ok(save),
        }
    })
}

#[tokio::test]
async fn an_error_in_before_session_saved_fails_the_save_and_keeps_the_old_session() {
    let app = TestApp::start_with(AppConfig {
        client: Box::new(|b| b.token_refresh_leeway(Duration::ZERO)),
        options: picky_options(),
        router: Box::new(router),
        idp: IdpOptions {
            access_token_ttl: Some(2),
            ..IdpOptions::default()
        },
        ..AppConfig::default()
    })
    .await;
    let http = TestApp::browser();
    assert_eq!(app.login(&http, "", "alice").await.status(), 302);

    // The same browser logs in as bob, then carol: both refused, alice's session stays.
    for (user, status, code) in [("bob", 403, "hook_refused"), ("carol", 503, "hook_failed")] {
        let r = app.login(&http, "prompt=login", user).await;
        assert_eq!(r.status(), status, "{user}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], code, "{user}: {body}");
        let (status, claims) = json_get(&http, &app.url("/profile")).await;
        assert_eq!(
            (status.as_u16(), &claims["sub"]),
            (200, &json!("alice")),
            "{user}"
        );
    }
    // A fresh browser refused at its first login has no session at all.
    let fresh = TestApp::browser();
    assert_eq!(app.login(&fresh, "", "bob").await.status(), 403);
    assert_eq!(json_get(&fresh, &app.url("/profile")).await.0, 401);

    // A refresh whose save fails is an error (typed, 503); the session is still there.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, body) = json_get(&http, &app.url("/token")).await;
    assert_eq!(
        (status.as_u16(), &body["error"]),
        (503, &json!("hook_failed")),
        "{body}"
    );
    assert_eq!(json_get(&http, &app.url("/profile")).await.0, 200);
}

/// The app's own error page for failed callbacks; `/welcome` after a login; an error inside
/// the hook for `temporarily_unavailable`.
fn error_page_options(calls: &Calls) -> AuthOptions {
    let calls = calls.clone();
    AuthOptions::new().on_callback(move |event: CallbackEvent| {
        let calls = calls.clone();
        async move {
            calls.push(format!(
                "on_callback {} details={}",
                event.error().map_or("ok", |e| e.inner().code()),
                event.authorization_details().cloned().unwrap_or_default()
            ));
            let Some(error) = event.error() else {
                return Ok(Redirect::to("/welcome").into_response());
            };
            if event
                .request()
                .uri()
                .query()
                .unwrap_or("")
                .contains("temporarily_unavailable")
            {
                return Err((StatusCode::BAD_GATEWAY, "the error page renderer failed"));
            }
            let page = Html(format!(
                "<h1>Our own error page</h1><p id=\"code\">{}</p><p>status {}</p>",
                error.inner().code(),
                error.status().as_u16()
            ));
            Ok::<Response, (StatusCode, &str)>(
                (
                    StatusCode::BAD_REQUEST,
                    [(http::header::CACHE_CONTROL, "no-store")],
                    page,
                )
                    .into_response(),
            )
        }
    })
}

/// Starts a login (pushed: the state is in the PAR request) and returns its `state`.
async fn started_state(app: &TestApp, http: &reqwest::Client) -> String {
    let r = http.get(app.url("/auth/login")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    app.idp.requests().await.par.last().expect("a PAR request")["state"].clone()
}

#[tokio::test]
async fn on_callback_renders_the_apps_error_page_and_redirects_elsewhere() {
    let calls = Calls::default();
    let details = json!([{"type": "account_information", "actions": ["list_accounts"]}]);
    let rar = details.clone();
    let app = TestApp::start_with(AppConfig {
        client: Box::new(move |b| {
            b.pushed_authorization_requests(true)
                .authorization_params(AuthorizationParams::new().authorization_details(&rar))
        }),
        options: error_page_options(&calls),
        router: Box::new(router),
        ..AppConfig::default()
    })
    .await;
    let http = TestApp::browser();

    // A callback whose state matches no login (tampered).
    let state = started_state(&app, &http).await;
    let tampered = format!("{}x", &state[..state.len() - 1]);
    let r = http
        .get(app.url(&format!("/auth/callback?code=abc&state={tampered}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("Our own error page"), "{page}");
    assert!(page.contains("<p id=\"code\">missing_transaction</p>"), "{page}");

    // The provider answered with an error (RFC 9207: with its `iss`).
    let iss: String = url::form_urlencoded::byte_serialize(app.idp.issuer().as_bytes()).collect();
    let state = started_state(&app, &http).await;
    let r = http
        .get(app.url(&format!(
            "/auth/callback?error=access_denied&error_description=no&state={state}&iss={iss}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("<p id=\"code\">authorization_error</p>"), "{page}");

    // An error inside the hook is its response.
    let state = started_state(&app, &http).await;
    let r = http
        .get(app.url(&format!(
            "/auth/callback?error=temporarily_unavailable&state={state}&iss={iss}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.text().await.unwrap(), "the error page renderer failed");

    // A successful login goes where the hook says, with the RAR details granted.
    let done = app.login(&http, "", "alice").await;
    assert_eq!(
        (done.status().as_u16(), location(&done)),
        (303, "/welcome".to_owned())
    );
    assert_eq!(json_get(&http, &app.url("/profile")).await.0, 200);
    let all = calls.all();
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(all[0], "on_callback missing_transaction details=null");
    assert_eq!(all[1], "on_callback authorization_error details=null");
    assert_eq!(all[3], format!("on_callback ok details={details}"));
}

#[tokio::test]
async fn on_logout_is_called_once_with_the_ended_session_and_its_error_is_only_logged() {
    let calls = Calls::default();
    let seen = calls.clone();
    let options = AuthOptions::new().on_logout(move |event| {
        let calls = seen.clone();
        async move {
            calls.push(format!(
                "on_logout {} {} {}",
                event.sub().unwrap_or("-"),
                event.sid(),
                event.request().uri().path()
            ));
            Err(HookError::new("could not purge the drafts"))
        }
    });
    let app = start(options).await;
    let http = TestApp::browser();
    app.login(&http, "", "alice").await;
    let (_, claims) = json_get(&http, &app.url("/profile")).await;
    let sid = claims["sid"].as_str().expect("sid claim").to_owned();

    let r = http.get(app.url("/auth/logout")).send().await.unwrap();
    assert_eq!(r.status(), 302, "the logout completes despite the hook's error");
    assert!(location(&r).starts_with(app.idp.end_session_endpoint()));
    assert_eq!(calls.all(), [format!("on_logout alice {sid} /auth/logout")]);
    assert_eq!(
        json_get(&http, &app.url("/profile")).await.0,
        401,
        "the session ended"
    );

    // No session, nothing to purge: not called again.
    assert_eq!(
        http.get(app.url("/auth/logout")).send().await.unwrap().status(),
        302
    );
    assert_eq!(calls.all().len(), 1);
}

#[tokio::test]
async fn on_backchannel_logout_is_called_once_with_the_tokens_sid_and_sub() {
    let calls = Calls::default();
    let seen = calls.clone();
    let options = AuthOptions::new().on_backchannel_logout(move |event| {
        let calls = seen.clone();
        async move {
            calls.push(format!(
                "on_backchannel_logout {} {} {}",
                event.sid().unwrap_or("-"),
                event.sub().unwrap_or("-"),
                event.request().method()
            ));
            Err(HookError::new("could not purge the cache"))
        }
    });
    let app = TestApp::start_with(AppConfig {
        options,
        router: Box::new(router),
        backchannel: true,
        ..AppConfig::default()
    })
    .await;
    let http = TestApp::browser();
    app.login(&http, "", "alice").await;
    let (_, claims) = json_get(&http, &app.url("/profile")).await;
    let sid = claims["sid"].as_str().expect("sid claim").to_owned();

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = app
        .idp
        .sign(
            json!({"typ": "logout+jwt"}),
            json!({
                "iss": app.idp.issuer(), "aud": CONF_BASIC_ID, "iat": now, "exp": now + 120,
                "jti": format!("hooks-{now}-{sid}"), "sid": sid, "sub": "alice",
                "events": {"http://schemas.openid.net/event/backchannel-logout": {}}
            }),
        )
        .await;
    let post = || async {
        reqwest::Client::new()
            .post(app.url("/auth/backchannel-logout"))
            .form(&[("logout_token", token.as_str())])
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(post().await, 200, "the hook's error does not change the answer");
    assert_eq!(calls.all(), [format!("on_backchannel_logout {sid} alice POST")]);
    assert_eq!(json_get(&http, &app.url("/profile")).await.0, 401);
    // A replay is refused, and the hook does not run for it.
    assert_eq!(post().await, 400);
    assert_eq!(calls.all().len(), 1);
}
