//! Issue 12 items 3 and 4: routes that follow their configuration (base path and callback
//! URL, the login allow-list, `RequireAuth`'s login URL and parameters, access-token
//! audiences) and responses the app controls (negotiated and replaceable `401`/`403`, async
//! policies that see the request, `Option<Session>` during a store outage).
//!
//! Each app runs on a loopback listener against a fresh test IdP that knows only the app's
//! callback URL, so a login sent anywhere else fails at the provider.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use auth_axum::require_auth::AuthorizePolicy;
use auth_axum::{AuthOptions, AuthResponses, AuthState, LOGIN_HINTS, RequireAuth, Session};
use auth_core::store::{LogoutKey, MemoryBackend, SessionBackend, SessionKeys};
use auth_core::{AuthorizationParams, ClientAuth, ServerClient, ServerClientBuilder, StoreError, UserClaims};
use auth_tests::*;
use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const JSON: &str = "application/json";

/// Today's `401` body, kept as the JSON default.
fn unauthorized_json() -> Value {
    json!({"error": "unauthorized", "error_description": "Log in to access this resource."})
}

/// A running app and its provider.
type App = LoopbackApp;

/// How to build one.
struct Setup {
    options: AuthOptions,
    /// The callback path registered with the provider.
    callback: &'static str,
    client: Box<dyn FnOnce(ServerClientBuilder) -> ServerClientBuilder + Send>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            options: AuthOptions::new(),
            callback: "/auth/callback",
            client: Box::new(|b| b),
        }
    }
}

/// The app of `setup` against a fresh IdP that knows only its callback.
async fn start(setup: Setup) -> App {
    let (listener, base, idp) = loopback_with_idp(setup.callback, "/").await;
    let builder = ServerClient::builder()
        .issuer(idp.issuer())
        .client_id(CONF_BASIC_ID)
        .client_auth(ClientAuth::secret(CONF_BASIC_SECRET))
        .secret(APP_SECRET)
        .app_base_url(&base);
    let client = (setup.client)(builder).build().expect("client");
    let auth = AuthState::new(client, setup.options).expect("auth state");
    LoopbackApp::serve(listener, base, idp, router(&auth))
}

/// The app under test: pages and APIs behind every kind of guard.
fn router(auth: &AuthState) -> Router {
    let sub = |s: &Session| s.sub().unwrap_or("?").to_owned();
    let guarded = Router::new()
        .route("/api", get(|| async { "api" }))
        .route_layer(RequireAuth::api());
    let admin = Router::new()
        .route("/admin", get(|| async { "admin" }))
        .route_layer(
            RequireAuth::new().with_predicate(|user: &UserClaims| user.get("sub") == Some(&json!("root"))),
        );
    let signup = Router::new()
        .route("/welcome", get(|| async { "welcome" }))
        .route_layer(
            RequireAuth::login()
                .login_url("/signin?from=guard")
                .login_param("screen_hint", "signup"),
        );
    let billing = Router::new()
        .route("/billing", get(|| async { "billing" }))
        .route_layer(
            RequireAuth::login()
                .login_param("screen_hint", "signup")
                .login_param("acr_values", "urn:example:mfa"),
        );
    let tenant = Router::new()
        .route("/tenant", get(|| async { "tenant" }))
        .route_layer(RequireAuth::new().with_policy(TenantMember))
        // Outside the guard: what an app's own middleware puts on the request.
        .layer(axum::middleware::map_request(|mut req: Request| async move {
            req.extensions_mut().insert(Members(vec!["alice".into()]));
            req
        }));
    Router::new()
        .route(
            "/page",
            get(move |s: Session| async move { format!("page for {}", sub(&s)) }),
        )
        .route(
            "/home",
            get(move |s: Option<Session>| async move {
                s.map_or_else(|| "visitor".to_owned(), |s| format!("user {}", sub(&s)))
            }),
        )
        .merge(guarded)
        .merge(admin)
        .merge(signup)
        .merge(billing)
        .merge(tenant)
        .merge(auth.router())
        .layer(auth.layer())
}

/// The app's membership list, put on each request by a middleware.
#[derive(Clone)]
struct Members(Vec<String>);

/// An async policy: after a (simulated) lookup, the user must be on the request's
/// [`Members`] list and the request must name the tenant in `X-Tenant`.
#[derive(Clone)]
struct TenantMember;

impl AuthorizePolicy for TenantMember {
    fn authorize(&self, user: &UserClaims, parts: &Parts) -> impl Future<Output = bool> + Send {
        let sub = user.get("sub").and_then(Value::as_str).map(str::to_owned);
        let members = parts.extensions.get::<Members>().cloned();
        let tenant_ok = parts.headers.get("x-tenant").is_some_and(|t| t == "acme");
        async move {
            // Waits, as a database would: the layer must not answer before this is done.
            tokio::time::sleep(Duration::from_millis(20)).await;
            tenant_ok && sub.is_some_and(|s| members.is_some_and(|m| m.0.contains(&s)))
        }
    }
}

async fn body_json(resp: reqwest::Response) -> Value {
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

fn content_type(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

// ---------------------------------------------------------------------------------------
// Base path and callback URL.

/// With `base_path("/account")` and no configured `redirect_uri`, the login sends
/// `{base}/account/callback`, the provider (which knows only that URL) returns there, and the
/// login completes. Before, the callback URL stayed `/auth/callback`: the provider refused it
/// (and the app had no route there).
#[tokio::test]
async fn a_custom_base_path_moves_the_callback_and_the_login_completes() {
    let app = start(Setup {
        options: AuthOptions::new().base_path("/account"),
        callback: "/account/callback",
        ..Setup::default()
    })
    .await;
    let http = TestApp::browser();
    let authorize = app.authorize_url(&http, "/account/login?returnTo=%2Fpage").await;
    assert_eq!(query(&authorize)["redirect_uri"], app.url("/account/callback"));
    let done = app.login(&http, "/account/login?returnTo=%2Fpage", "alice").await;
    assert_eq!(done.status(), 302, "{:?}", done.text().await);
    assert_eq!(location(&done), "/page");
    let page = app.get(&http, "/page", HTML).await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().await.unwrap(), "page for alice");
    // The routes are only under the new base; a guard's redirect goes there too.
    assert_eq!(app.get(&http, "/auth/login", HTML).await.status(), 404);
    let fresh = TestApp::browser();
    let r = app.get(&fresh, "/billing", HTML).await;
    assert!(
        location(&r).starts_with("/account/login?returnTo=%2Fbilling"),
        "{}",
        location(&r)
    );
}

/// A configured `redirect_uri` whose path is not the mounted callback route fails at start-up
/// with a message naming the URL to configure — from the builder and from
/// `AUTH0_REDIRECT_URI`. Before, `AuthState::new` accepted it and every login ended in a 404.
#[tokio::test]
async fn a_redirect_uri_matching_no_route_fails_at_start_up() {
    let builder = || {
        ServerClient::builder()
            .issuer("https://idp.example.com/")
            .client_id("c")
            .client_auth(ClientAuth::none())
            .secret(APP_SECRET)
            .app_base_url("https://app.example.com")
    };
    let client = builder()
        .authorization_params(
            AuthorizationParams::new().redirect_uri("https://app.example.com/auth/callback"),
        )
        .build()
        .unwrap();
    let e = AuthState::new(client, AuthOptions::new().base_path("/account")).unwrap_err();
    assert_eq!(e.code(), "configuration_error");
    let text = e.to_string();
    assert!(
        text.contains("https://app.example.com/account/callback") && text.contains("base_path"),
        "{text}"
    );

    let env = |k: &str| match k {
        "OIDC_ISSUER" => Some("https://idp.example.com/".to_owned()),
        "AUTH0_CLIENT_ID" => Some("c".to_owned()),
        "AUTH0_SECRET" => Some(APP_SECRET.to_owned()),
        "APP_BASE_URL" => Some("https://app.example.com".to_owned()),
        "AUTH0_REDIRECT_URI" => Some("https://app.example.com/callback".to_owned()),
        _ => None,
    };
    let client = ServerClientBuilder::from_env_with(env).unwrap().build().unwrap();
    let e = AuthState::new(client, AuthOptions::new()).unwrap_err();
    assert!(e.to_string().contains("AUTH0_REDIRECT_URI"), "{e}");
    assert!(
        e.to_string().contains("https://app.example.com/auth/callback"),
        "{e}"
    );

    // The matching one starts, and keeps its configured value.
    let client = builder()
        .authorization_params(
            AuthorizationParams::new().redirect_uri("https://app.example.com/account/callback"),
        )
        .build()
        .unwrap();
    let auth = AuthState::new(client, AuthOptions::new().base_path("account")).unwrap();
    assert_eq!(auth.callback_url(), "https://app.example.com/account/callback");
}

// ---------------------------------------------------------------------------------------
// The login allow-list.

/// Default: today's hints plus `ui_locales` reach the authorize URL; the opt-in names and
/// unknown ones do not, and the login proceeds. Before, `ui_locales` was dropped.
#[tokio::test]
async fn login_forwards_the_default_hints_and_ui_locales_and_drops_the_rest() {
    let app = start(Setup {
        client: Box::new(|b| b.pin_authorization_param("prompt")),
        ..Setup::default()
    })
    .await;
    let http = TestApp::browser();
    let authorize = app
        .authorize_url(
            &http,
            "/auth/login?ui_locales=fr-CA+en&screen_hint=signup&login_hint=a%40example.com\
             &prompt=none&audience=https%3A%2F%2Fevil%2F&scope=admin&acr_values=x&max_age=0&foo=bar",
        )
        .await;
    let q = query(&authorize);
    assert_eq!(q["ui_locales"], "fr-CA en");
    assert_eq!(q["screen_hint"], "signup");
    assert_eq!(q["login_hint"], "a@example.com");
    for dropped in ["prompt", "audience", "acr_values", "max_age", "foo"] {
        assert!(!q.contains_key(dropped), "{dropped}: {authorize}");
    }
    assert_eq!(
        q["scope"],
        auth_core::DEFAULT_SCOPE,
        "the query's scope is not used"
    );
}

/// The opt-in names are forwarded once listed, checked first: `max_age` a non-negative
/// integer, `scope` scope tokens that keep `openid`. A bad value is a typed `400`.
#[tokio::test]
async fn opt_in_login_params_are_forwarded_and_checked() {
    let app = start(Setup {
        options: AuthOptions::new().login_params(LOGIN_HINTS.iter().copied().chain([
            "audience",
            "scope",
            "acr_values",
            "max_age",
        ])),
        ..Setup::default()
    })
    .await;
    let http = TestApp::browser();
    let authorize = app
        .authorize_url(
            &http,
            &format!(
                "/auth/login?audience={}&scope=profile+read%3Adata&acr_values=urn%3Aexample%3Amfa&max_age=300",
                url::form_urlencoded::byte_serialize(API_AUDIENCE.as_bytes()).collect::<String>()
            ),
        )
        .await;
    let q = query(&authorize);
    assert_eq!(q["audience"], API_AUDIENCE);
    assert_eq!(q["scope"], "openid profile read:data");
    assert_eq!(q["acr_values"], "urn:example:mfa");
    assert_eq!(q["max_age"], "300");
    for bad in [
        "max_age=-1",
        "max_age=soon",
        "scope=a%22b",
        "scope=",
        "audience=a+b",
    ] {
        let r = app.get(&http, &format!("/auth/login?{bad}"), JSON).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(body_json(r).await["error"], "invalid_parameter", "{bad}");
    }
    // The login itself still works with an opt-in value.
    let done = app
        .login(&http, "/auth/login?max_age=600&returnTo=%2Fpage", "alice")
        .await;
    assert_eq!(done.status(), 302, "{:?}", done.text().await);
    assert_eq!(location(&done), "/page");
}

// ---------------------------------------------------------------------------------------
// RequireAuth: login URL and per-route login parameters.

/// A custom login URL (relative, with its own query) gets `returnTo` and the per-route
/// parameters; on the login route, per-route parameters pass the allow-list like any other:
/// `screen_hint` reaches the provider, the opt-in `acr_values` (not listed) does not. Before,
/// neither `login_url` nor `login_param` existed.
#[tokio::test]
async fn require_auth_sends_to_its_login_url_with_its_login_params() {
    let app = start(Setup::default()).await;
    let http = TestApp::browser();
    let r = app.get(&http, "/welcome?tab=2", HTML).await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        location(&r),
        "/signin?from=guard&returnTo=%2Fwelcome%3Ftab%3D2&screen_hint=signup"
    );
    let r = app.get(&http, "/billing", JSON).await;
    assert_eq!(r.status(), 302, "RequireAuth::login() redirects every request");
    let login = location(&r);
    assert_eq!(
        login,
        "/auth/login?returnTo=%2Fbilling&screen_hint=signup&acr_values=urn%3Aexample%3Amfa"
    );
    let authorize = app.authorize_url(&http, &login).await;
    let q = query(&authorize);
    assert_eq!(q["screen_hint"], "signup");
    assert!(
        !q.contains_key("acr_values"),
        "not on the allow-list: {authorize}"
    );
    let done = app.login(&http, &login, "alice").await;
    assert_eq!(location(&done), "/billing");
    assert_eq!(
        app.get(&http, "/billing", HTML).await.text().await.unwrap(),
        "billing"
    );
}

// ---------------------------------------------------------------------------------------
// Responses.

/// Without a session, `RequireAuth::api()` and the `Session` extractor answer `401` as JSON
/// (today's body) or, for a browser, as an HTML page; a refused user gets `403` the same
/// way. Before, every one of these was JSON.
#[tokio::test]
async fn unauthenticated_and_forbidden_answers_negotiate_html_and_json() {
    let app = start(Setup::default()).await;
    let http = TestApp::browser();
    for path in ["/api", "/page"] {
        let r = app.get(&http, path, JSON).await;
        assert_eq!(r.status(), 401, "{path}");
        assert!(r.headers().contains_key("www-authenticate"), "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(body_json(r).await, unauthorized_json(), "{path}");
        let r = app.get(&http, path, HTML).await;
        assert_eq!(r.status(), 401, "{path}");
        assert!(content_type(&r).starts_with("text/html"), "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let page = r.text().await.unwrap();
        assert!(page.contains("Log in to access this resource."), "{page}");
        // A link to log in that comes back here.
        assert!(
            page.contains(&format!("href=\"/auth/login?returnTo=%2F{}\"", &path[1..])),
            "{page}"
        );
    }
    app.login(&http, "/auth/login", "alice").await;
    let r = app.get(&http, "/admin", JSON).await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        body_json(r).await,
        json!({"error": "forbidden", "error_description": "You do not have access to this resource."})
    );
    let r = app.get(&http, "/admin", HTML).await;
    assert_eq!(r.status(), 403);
    assert!(content_type(&r).starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("<code>forbidden</code>"));
}

/// The app's own answers replace the library's for both guards and the extractor.
#[tokio::test]
async fn the_app_replaces_the_401_and_403_answers() {
    struct Pages;
    impl AuthResponses for Pages {
        fn unauthenticated(&self, parts: &Parts) -> Response {
            (
                StatusCode::UNAUTHORIZED,
                Html(format!("<p>Please sign in to see {}</p>", parts.uri.path())),
            )
                .into_response()
        }
        fn forbidden(&self, parts: &Parts) -> Response {
            let who = parts
                .headers
                .get("x-who")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?");
            (StatusCode::FORBIDDEN, format!("no entry for {who}")).into_response()
        }
    }
    let app = start(Setup {
        options: AuthOptions::new().responses(Pages),
        ..Setup::default()
    })
    .await;
    let http = TestApp::browser();
    for path in ["/api", "/page"] {
        let r = app.get(&http, path, JSON).await;
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.text().await.unwrap(),
            format!("<p>Please sign in to see {path}</p>")
        );
    }
    // `Option<Session>` is not an error, and redirects stay redirects.
    assert_eq!(
        app.get(&http, "/home", JSON).await.text().await.unwrap(),
        "visitor"
    );
    assert_eq!(app.get(&http, "/billing", HTML).await.status(), 302);
    app.login(&http, "/auth/login", "alice").await;
    let r = http
        .get(app.url("/admin"))
        .header("x-who", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.unwrap(), "no entry for alice");
}

/// An async policy sees the request's headers and extensions and is awaited: a member
/// naming the right tenant passes, anyone else (or a wrong header) gets `403`.
#[tokio::test]
async fn an_async_policy_reads_the_request_and_decides() {
    let app = start(Setup::default()).await;
    let tenant = |http: &reqwest::Client, value: &'static str| {
        http.get(app.url("/tenant"))
            .header("accept", JSON)
            .header("x-tenant", value)
            .send()
    };
    let alice = TestApp::browser();
    app.login(&alice, "/auth/login", "alice").await;
    let r = tenant(&alice, "acme").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "tenant");
    assert_eq!(tenant(&alice, "other").await.unwrap().status(), 403);
    let bob = TestApp::browser();
    app.login(&bob, "/auth/login", "bob").await;
    let r = tenant(&bob, "acme").await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(body_json(r).await["error"], "forbidden");
    // Without a session the policy is not asked.
    assert_eq!(tenant(&TestApp::browser(), "acme").await.unwrap().status(), 401);
}

// ---------------------------------------------------------------------------------------
// Access-token audiences.

/// `?audience=` on the access-token route: the configured audience and the listed ones are
/// accepted, any other is `403` `audience_not_allowed` before the provider is asked. Before,
/// the query was ignored.
#[tokio::test]
async fn the_access_token_route_takes_an_audience_from_its_allow_list() {
    let app = start(Setup {
        options: AuthOptions::new()
            .access_token_route(true)
            .access_token_audiences([API_AUDIENCE]),
        ..Setup::default()
    })
    .await;
    let http = TestApp::browser();
    app.login(&http, "/auth/login", "alice").await;
    let r = app.get(&http, "/auth/access-token", JSON).await;
    assert_eq!(r.status(), 200);
    app.idp.reset().await;
    let r = app
        .get(
            &http,
            "/auth/access-token?audience=https%3A%2F%2Fevil.example%2F",
            JSON,
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(body_json(r).await["error"], "audience_not_allowed");
    assert!(
        app.idp.requests().await.token.is_empty(),
        "the provider was not asked"
    );
    let aud = url::form_urlencoded::byte_serialize(API_AUDIENCE.as_bytes()).collect::<String>();
    let r = app
        .get(&http, &format!("/auth/access-token?audience={aud}"), JSON)
        .await;
    assert_eq!(r.status(), 200);
    assert!(body_json(r).await["access_token"].is_string());
    let token = app.idp.requests().await.token;
    assert_eq!(token.len(), 1, "{token:?}");
    assert_eq!(token[0].params["grant_type"], "refresh_token");
    assert_eq!(token[0].params["audience"], API_AUDIENCE);
}

// ---------------------------------------------------------------------------------------
// `Option<Session>` during a store outage.

/// A [`SessionBackend`] around the memory one that fails every call while `down`.
#[derive(Debug, Default)]
struct Flaky {
    inner: MemoryBackend,
    down: AtomicBool,
}

impl Flaky {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::new("injected outage"))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl SessionBackend for Flaky {
    async fn get(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check()?;
        self.inner.get(id).await
    }
    async fn set(&self, id: &str, value: &[u8], keys: &SessionKeys, ttl: Duration) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set(id, value, keys, ttl).await
    }
    async fn update(
        &self,
        id: &str,
        value: &[u8],
        keys: &SessionKeys,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.update(id, value, keys, ttl).await
    }
    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.delete(id).await
    }
    async fn delete_by(&self, key: &LogoutKey) -> Result<usize, StoreError> {
        self.check()?;
        self.inner.delete_by(key).await
    }
    async fn record_logout(&self, key: &LogoutKey, at: u64, ttl: Duration) -> Result<(), StoreError> {
        self.check()?;
        self.inner.record_logout(key, at, ttl).await
    }
    async fn logout_time(&self, keys: &[LogoutKey]) -> Result<Option<u64>, StoreError> {
        self.check()?;
        self.inner.logout_time(keys).await
    }
    async fn remember_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.remember_once(key, ttl).await
    }
}

/// Logs in with server-side sessions on a backend that then goes down; returns what `/home`
/// (`Option<Session>`) and `/page` (`Session`) answer during the outage and after it.
async fn during_an_outage(options: AuthOptions) -> [(u16, String); 4] {
    let backend = Arc::new(Flaky::default());
    let shared: Arc<dyn SessionBackend> = backend.clone();
    let app = start(Setup {
        options,
        client: Box::new(move |b| b.session_backend_arc(shared).server_side_sessions(true)),
        ..Setup::default()
    })
    .await;
    let http = TestApp::browser();
    app.login(&http, "/auth/login", "alice").await;
    assert_eq!(
        app.get(&http, "/home", HTML).await.text().await.unwrap(),
        "user alice"
    );
    let answer = |r: reqwest::Response| async move { (r.status().as_u16(), r.text().await.unwrap()) };
    backend.down.store(true, Ordering::SeqCst);
    let home = answer(app.get(&http, "/home", HTML).await).await;
    let page = answer(app.get(&http, "/page", JSON).await).await;
    let profile = answer(app.get(&http, "/auth/profile", JSON).await).await;
    backend.down.store(false, Ordering::SeqCst);
    let after = answer(app.get(&http, "/home", HTML).await).await;
    [home, page, profile, after]
}

/// Default: a store outage is `503` for `Option<Session>` too. With
/// `optional_session_on_store_error(true)` the public page renders as for a visitor, while
/// `Session` (and `/auth/profile`) still answer `503`; the session is back once the store is. Before, the option
/// did not exist and the page was a `503` for everyone.
#[tokio::test]
async fn option_session_can_ride_out_a_store_outage() {
    let [home, page, profile, after] = during_an_outage(AuthOptions::new()).await;
    assert_eq!(home.0, 503, "{home:?}");
    assert_eq!(page.0, 503, "{page:?}");
    assert_eq!(profile.0, 503, "{profile:?}");
    assert_eq!(after, (200, "user alice".to_owned()));

    let [home, page, profile, after] =
        during_an_outage(AuthOptions::new().optional_session_on_store_error(true)).await;
    assert_eq!(home, (200, "visitor".to_owned()));
    assert_eq!(page.0, 503, "{page:?}");
    assert_eq!(
        profile.0, 503,
        "the library's JSON routes still say the store failed: {profile:?}"
    );
    assert_eq!(
        after,
        (200, "user alice".to_owned()),
        "nothing was written during the outage"
    );
}
