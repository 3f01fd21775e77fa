//! Issue 10, item 10: `response_mode=form_post` logins work in a real browser.
//!
//! With `form_post` the provider answers the authorization request with a page that
//! auto-submits the code and state to the app's callback: a cross-site POST, which browsers
//! send only with `SameSite=None; Secure` cookies. The transaction cookie is therefore
//! `SameSite=None; Secure` whenever cookies are `Secure` (https, or `form_post` on a loopback
//! host, which Chromium treats as a secure context), and `form_post` over plain http
//! elsewhere is a configuration error.
//!
//! The app here is reached as `http://localhost:<port>` while the test IdP is at
//! `http://127.0.0.1:<port>`: two different sites, so the provider's form submission is a
//! genuinely cross-site POST, as with a real tenant. With `SameSite=Lax` transaction cookies
//! (the code before this fix) Chromium leaves the cookie out of that POST and the callback
//! fails with "no login in progress".
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`.ci/run` installs them).

use std::time::Duration;

use auth_axum::{AuthOptions, AuthState};
use auth_core::{AuthorizationParams, ClientAuth, ServerClient};
use auth_tests::{APP_SECRET, Browser, CONF_BASIC_ID, CONF_BASIC_SECRET, IdpOptions, TestIdp};
use tokio::net::TcpListener;
use url::Url;

/// The quickstart configured for `form_post`, served on loopback and reached as `localhost`.
struct FormPostApp {
    base: String,
    idp: TestIdp,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FormPostApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FormPostApp {
    async fn start() -> FormPostApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind app listener");
        let port = listener.local_addr().expect("local addr").port();
        let base = format!("http://localhost:{port}");
        let idp = TestIdp::start_with(IdpOptions {
            redirect_uris: vec![format!("{base}/auth/callback")],
            post_logout_redirect_uris: vec![format!("{base}/")],
            ..IdpOptions::default()
        })
        .await;
        let client = ServerClient::builder()
            .issuer(idp.issuer())
            .client_id(CONF_BASIC_ID)
            .client_auth(ClientAuth::secret(CONF_BASIC_SECRET))
            .secret(APP_SECRET)
            .app_base_url(&base)
            .authorization_params(AuthorizationParams::new().param("response_mode", "form_post"))
            .build()
            .expect("form_post on a loopback app is a valid configuration");
        let auth = AuthState::new(client, AuthOptions::new()).expect("auth state");
        let app = auth_examples::quickstart::app(&auth);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FormPostApp { base, idp, server }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

#[tokio::test]
async fn a_form_post_login_completes_in_chromium() {
    let app = FormPostApp::start().await;
    assert_ne!(
        Url::parse(&app.base).unwrap().host_str(),
        Url::parse(app.idp.issuer()).unwrap().host_str(),
        "the app and the provider must be different sites"
    );

    // The transaction cookie as the app writes it.
    let http = TestIdp::browser();
    let start = http.get(app.url("/auth/login")).send().await.unwrap();
    assert_eq!(start.status(), 302);
    let tx: Vec<String> = start
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|c| c.starts_with("_a0_tx_"))
        .collect();
    assert_eq!(tx.len(), 1, "{tx:?}");
    for attribute in ["SameSite=None", "Secure", "HttpOnly", "Path=/"] {
        assert!(tx[0].contains(attribute), "{attribute} missing: {}", tx[0]);
    }
    let authorize = Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        authorize
            .query_pairs()
            .any(|(k, v)| k == "response_mode" && v == "form_post"),
        "{authorize}"
    );

    // A real browser: the provider's auto-submitted form carries the cookie back.
    let browser = Browser::start().await;
    browser.goto(&app.url("/")).await;
    assert!(browser.page_source().await.contains("You are not logged in"));
    browser
        .client()
        .find(fantoccini::Locator::Id("login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let idp_origin = Url::parse(app.idp.issuer()).unwrap().origin();
    assert_eq!(
        browser.current_url().await.origin(),
        idp_origin,
        "sent to the IdP"
    );

    let landed = browser.fill_and_submit_idp_login("alice").await;
    assert_eq!(
        landed.origin(),
        Url::parse(&app.base).unwrap().origin(),
        "left the IdP for the app: {landed}"
    );
    let page = browser
        .wait_for_source("Logged in as", Duration::from_secs(20))
        .await;
    assert!(page.contains("Test User alice"), "{page}");
    assert_eq!(browser.current_url().await.as_str(), app.url("/"));

    // The provider answered with form_post: its authorization request asked for it.
    let recorded = app.idp.requests().await;
    assert!(
        recorded
            .authorize
            .iter()
            .any(|p| p.get("response_mode").map(String::as_str) == Some("form_post")),
        "{:?}",
        recorded.authorize
    );

    // The session is a real browser cookie: the protected JSON route answers too.
    browser.goto(&app.url("/profile")).await;
    let profile = browser.page_source().await;
    assert!(profile.contains("\"sub\":\"alice\""), "{profile}");

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sec_browser_form_post/logged-in.png");
    browser.goto(&app.url("/")).await;
    browser.screenshot(&shot).await;
    browser.close().await;
}

#[test]
fn form_post_over_plain_http_is_a_configuration_error() {
    let build = |base: &str| {
        ServerClient::builder()
            .issuer("https://idp.example.com/")
            .client_id("cid")
            .client_auth(ClientAuth::none())
            .secret(APP_SECRET)
            .app_base_url(base)
            .authorization_params(AuthorizationParams::new().param("response_mode", "form_post"))
            .build()
    };
    let e = build("http://app.example.com").unwrap_err();
    assert_eq!(e.code(), "configuration_error", "{e}");
    let message = e.to_string();
    assert!(
        message.contains("form_post") && message.contains("https"),
        "{message}"
    );
    assert!(build("https://app.example.com").is_ok());
    assert!(build("http://localhost:3000").is_ok());
}
