//! Issue 13 items 1–4 and 8 end to end through the connected-accounts example app against the
//! strict Auth0 emulator, in the configuration styles of the contract (`AUTH0_DOMAIN` over
//! HTTPS trusted through `SSL_CERT_FILE`, `OIDC_ISSUER` on loopback http, and `AUTH0_DOMAIN` on
//! loopback http; the client is built from the environment variables the example binary reads):
//! telemetry, per-audience tokens, forwarded login options, MFA step-up and federated logout.
//! Every test asserts the exact wire and that the emulator refused nothing.

use std::collections::BTreeMap;

use auth_core::{ServerClientBuilder, cookies::MemoryCookieJar};
use auth_tests::auth0::{Auth0Emulator, EmulatorOptions, MFA_POLICY, Telemetry, decode_telemetry};
use auth_tests::emu_app::{ConfigStyle, EnvApp};
use auth_tests::{jwt_payload as jwt_claims, location, query};
use serde_json::{Value, json};
use url::Url;

const API: &str = "https://api.example.test/";

/// The example app configured from the environment, and that environment.
struct App {
    app: EnvApp,
    env: BTreeMap<String, String>,
}

impl std::ops::Deref for App {
    type Target = EnvApp;

    fn deref(&self) -> &EnvApp {
        &self.app
    }
}

fn builder(env: &BTreeMap<String, String>) -> ServerClientBuilder {
    let env = env.clone();
    ServerClientBuilder::from_env_with(move |name| env.get(name).cloned()).unwrap()
}

impl App {
    async fn start(
        style: ConfigStyle,
        extra_env: &[(&str, &str)],
        setup: impl FnOnce(&Auth0Emulator),
    ) -> App {
        let mut start = EnvApp::prepare(style, EmulatorOptions::default()).await;
        if style == ConfigStyle::DomainHttps {
            // A bare host, as a real tenant's domain is given.
            let host = start.emu.domain().trim_start_matches("https://").to_owned();
            start.env.insert("AUTH0_DOMAIN".into(), host);
        }
        let start = start.with_env(extra_env);
        setup(&start.emu);
        let env = start.env.clone();
        let app = start.serve(
            |b| b,
            auth_examples::connected_accounts::auth_options(),
            auth_examples::connected_accounts::app,
        );
        App { app, env }
    }

    /// Starts `path` on the app asking for JSON, goes through the emulator, completes the
    /// callback (asking for JSON too); the callback's response and the URL the app first
    /// redirected to.
    async fn flow(&self, path: &str) -> (reqwest::Response, Url) {
        self.flow_accepting(path, "application/json", Some("application/json"))
            .await
    }

    async fn login(&self) {
        let (done, _) = self.flow("/auth/login").await;
        assert_eq!(done.status(), 302, "{:?}", done.text().await);
        assert_eq!(location(&done), "/");
    }

    /// The last refresh-token request the emulator received.
    fn last_refresh(&self) -> auth_tests::RecordedRequest {
        self.emu
            .requests()
            .into_iter()
            .rfind(|r| r.param("grant_type") == Some("refresh_token"))
            .unwrap()
    }

    /// Asserts the emulator's first refusal gives a reason containing `text`.
    fn assert_first_refusal(&self, text: &str) {
        let refused = self.emu.refused();
        assert!(
            refused[0].reason.as_deref().unwrap().contains(text),
            "{refused:#?}"
        );
    }

    fn refreshes(&self) -> usize {
        self.emu.count("/oauth/token", Some("refresh_token"))
    }

    fn assert_nothing_refused(&self) {
        let refused = self.emu.refused();
        assert!(
            refused.is_empty(),
            "{:?}: the emulator refused requests: {refused:#?}",
            self.style
        );
    }
}

fn form_keys(r: &auth_tests::RecordedRequest) -> Vec<&str> {
    let mut k: Vec<&str> = r.form.iter().map(|(k, _)| k.as_str()).collect();
    k.sort_unstable();
    k
}

/// Browser-facing endpoints (the user agent calls them, not the library).
fn is_browser(r: &auth_tests::RecordedRequest) -> bool {
    r.method == "GET" && ["/authorize", "/v2/logout", "/oidc/logout", "/connect"].contains(&r.path.as_str())
}

// ---------------------------------------------------------------------------------------------
// 1. Telemetry

#[tokio::test]
async fn telemetry_header_on_every_tenant_request_and_auth0client_only_for_domains() {
    for style in ConfigStyle::ALL {
        let expected = if style.is_domain() {
            Telemetry::HeaderAndAuthorizeParam
        } else {
            Telemetry::Header
        };
        let app = App::start(style, &[], |emu| emu.expect_telemetry(expected)).await;
        let (done, authorize) = app.flow("/auth/login").await;
        assert_eq!(done.status(), 302, "{style:?}");
        let (s, body) = app.get_json(&format!("/token?audience={}", urlencode(API))).await;
        assert_eq!(s, 200, "{style:?}: {body}");
        let (s, body) = app.get_json("/connected-accounts").await;
        assert_eq!(s, 200, "{style:?}: {body}");
        let r = app.http.get(app.url("/auth/logout")).send().await.unwrap();
        assert_eq!(r.status(), 302);
        app.assert_nothing_refused();

        let value = auth_core::telemetry::header_value();
        let decoded = decode_telemetry(&value).unwrap();
        assert_eq!(decoded["name"], "auth-core");
        assert_eq!(decoded["version"], env!("CARGO_PKG_VERSION"));
        // The authorize URL: auth0Client for an Auth0 domain only.
        assert_eq!(
            query(authorize.as_str()).get("auth0Client").map(String::as_str),
            style.is_domain().then_some(value.as_str()),
            "{style:?}: {authorize}"
        );
        let requests = app.emu.requests();
        let back_channel: Vec<_> = requests.iter().filter(|r| !is_browser(r)).collect();
        let paths: Vec<&str> = back_channel.iter().map(|r| r.path.as_str()).collect();
        for must in [
            "/.well-known/openid-configuration",
            "/.well-known/jwks.json",
            "/oauth/token",
            "/oauth/revoke",
            "/me/v1/connected-accounts/accounts",
        ] {
            assert!(paths.contains(&must), "{style:?}: {must} in {paths:?}");
        }
        for r in back_channel {
            assert_eq!(
                r.header("auth0-client"),
                Some(value.as_str()),
                "{style:?}: {} {}",
                r.method,
                r.path
            );
        }
    }
}

#[tokio::test]
async fn telemetry_goes_in_the_pushed_body_with_par() {
    for style in ConfigStyle::ALL {
        let app = App::start(style, &[], |emu| {
            emu.expect_telemetry(if style.is_domain() {
                Telemetry::HeaderAndAuthorizeParam
            } else {
                Telemetry::Header
            });
        })
        .await;
        let client = builder(&app.env)
            .pushed_authorization_requests(true)
            .build()
            .unwrap();
        let mut jar = MemoryCookieJar::default();
        let url = client
            .start_interactive_login(auth_core::LoginOptions::new(), &mut jar)
            .await
            .unwrap();
        let q = query(url.as_str());
        assert_eq!(
            q.keys().map(String::as_str).collect::<Vec<_>>(),
            ["client_id", "request_uri"],
            "{style:?}"
        );
        let par = app
            .emu
            .requests()
            .into_iter()
            .rfind(|r| r.path == "/oauth/par")
            .unwrap();
        assert_eq!(
            par.param("auth0Client"),
            style
                .is_domain()
                .then(auth_core::telemetry::header_value)
                .as_deref(),
            "{style:?}"
        );
        // The browser leg: /authorize with request_uri only.
        let callback = app.through_emulator(url.as_str()).await;
        let mut jar = jar.next_request();
        client
            .complete_interactive_login(callback.as_str(), &mut jar)
            .await
            .unwrap();
        app.assert_nothing_refused();
    }
}

#[tokio::test]
async fn auth0_telemetry_false_turns_both_off() {
    for style in ConfigStyle::ALL {
        let app = App::start(style, &[("AUTH0_TELEMETRY", "false")], |emu| {
            emu.expect_telemetry(Telemetry::Off);
        })
        .await;
        let (done, authorize) = app.flow("/auth/login").await;
        assert_eq!(done.status(), 302);
        assert!(
            !query(authorize.as_str()).contains_key("auth0Client"),
            "{authorize}"
        );
        assert_eq!(
            app.get_json(&format!("/token?audience={}", urlencode(API)))
                .await
                .0,
            200
        );
        app.http.get(app.url("/auth/logout")).send().await.unwrap();
        app.assert_nothing_refused();
        assert!(
            app.emu
                .requests()
                .iter()
                .all(|r| r.header("auth0-client").is_none())
        );
    }
    // The builder switch, and a bad value of the variable.
    let bad = EnvApp::prepare(ConfigStyle::Domain, EmulatorOptions::default())
        .await
        .with_env(&[("AUTH0_TELEMETRY", "sometimes")])
        .env;
    let err = ServerClientBuilder::from_env_with(move |n| bad.get(n).cloned()).unwrap_err();
    assert!(err.to_string().contains("AUTH0_TELEMETRY"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// 2. Per-audience tokens

#[tokio::test]
async fn per_audience_tokens_are_one_refresh_each_then_cached() {
    for style in ConfigStyle::ALL {
        let app = App::start(style, &[], |_| {}).await;
        app.login().await;
        // No parameters: today's answer (the login's token), no request.
        let (s, login_token) = app.get_json("/token").await;
        assert_eq!(s, 200);
        assert_eq!(app.refreshes(), 0);

        let path = format!("/token?audience={}", urlencode(API));
        let (s, first) = app.get_json(&path).await;
        assert_eq!(s, 200, "{style:?}: {first}");
        assert_ne!(first, login_token);
        assert_eq!(jwt_claims(first["access_token"].as_str().unwrap())["aud"], API);
        let refresh = app.last_refresh();
        assert_eq!(form_keys(&refresh), ["audience", "grant_type", "refresh_token"]);
        assert_eq!(refresh.param("audience"), Some(API));
        assert_eq!(refresh.auth_scheme.as_deref(), Some("Basic"));
        let (_, again) = app.get_json(&path).await;
        assert_eq!(again, first, "cached in the session");
        assert_eq!(app.refreshes(), 1);

        // With a scope: its own entry.
        let path = format!("/token?audience={}&scope=read%3Athings", urlencode(API));
        let (s, scoped) = app.get_json(&path).await;
        assert_eq!(s, 200, "{scoped}");
        assert_ne!(scoped, first);
        let refresh = app.last_refresh();
        assert_eq!(
            form_keys(&refresh),
            ["audience", "grant_type", "refresh_token", "scope"]
        );
        assert_eq!(refresh.param("scope"), Some("read:things"));
        assert_eq!(
            jwt_claims(scoped["access_token"].as_str().unwrap())["scope"],
            "read:things"
        );
        assert_eq!(app.get_json(&path).await.1, scoped);
        // Without a scope, any cached token for the audience serves (exact match, else the
        // smallest superset): still no request.
        let (_, any) = app.get_json(&format!("/token?audience={}", urlencode(API))).await;
        assert!([&first, &scoped].contains(&&any), "{any}");
        assert_eq!(app.refreshes(), 2);

        // Bad input: typed 400 JSON, no request.
        for bad in [
            "/token?audience=",
            "/token?audience=a&audience=b",
            "/token?audience=https%3A%2F%2Fapi%2F%0A",
            "/token?audience=https%3A%2F%2Fapi%2F&scope=",
        ] {
            let (s, body) = app.get_json(bad).await;
            assert_eq!(s, 400, "{bad}: {body}");
            assert_eq!(body["error"], "invalid_parameter", "{bad}");
            assert!(body["error_description"].is_string());
        }
        assert_eq!(app.refreshes(), 2);
        app.assert_nothing_refused();
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Login options

#[tokio::test]
async fn login_forwards_the_allowed_options_and_max_age_is_enforced() {
    for style in ConfigStyle::ALL {
        let app = App::start(style, &[], |_| {}).await;
        let path = format!(
            "/auth/login?audience={}&scope=openid%20profile%20offline_access%20read%3Athings&acr_values={}\
             &max_age=3600&ui_locales=fr-CA%20en&foo=bar&returnTo=%2Fx",
            urlencode(API),
            urlencode(MFA_POLICY)
        );
        let (done, authorize) = app.flow(&path).await;
        assert_eq!(location(&done), "/x");
        let q = query(authorize.as_str());
        assert_eq!(q["audience"], API);
        assert_eq!(q["scope"], "openid profile offline_access read:things");
        assert_eq!(q["acr_values"], MFA_POLICY);
        assert_eq!(q["max_age"], "3600");
        assert_eq!(q["ui_locales"], "fr-CA en");
        assert!(!q.contains_key("foo"));
        let (_, token) = app.get_json(&format!("/token?audience={}", urlencode(API))).await;
        assert_eq!(jwt_claims(token["access_token"].as_str().unwrap())["aud"], API);
        assert_eq!(app.refreshes(), 0, "the login's own token");
        app.assert_nothing_refused();

        // max_age against an old auth_time: the login is refused.
        app.emu.age_auth_time(7200);
        let (done, _) = app.flow("/auth/login?max_age=60").await;
        assert_eq!(done.status(), 400);
        let body: Value = done.json().await.unwrap();
        assert_eq!(body["error"], "id_token_invalid", "{body}");
        // Without max_age the same auth_time is fine.
        let (done, _) = app.flow("/auth/login").await;
        assert_eq!(done.status(), 302);
        app.emu.age_auth_time(0);

        // Bad input: typed 400 before any redirect.
        let before = app.emu.count("/authorize", None);
        for bad in ["/auth/login?max_age=soon", "/auth/login?acr_values=%01x"] {
            let (s, body) = app.get_json(bad).await;
            assert_eq!(s, 400, "{bad}: {body}");
            assert_eq!(body["error"], "invalid_parameter");
        }
        assert_eq!(app.emu.count("/authorize", None), before);
        app.assert_nothing_refused();
    }
}

#[tokio::test]
async fn pinned_organization_and_connection_are_never_overridden() {
    for style in ConfigStyle::ALL {
        let app = App::start(
            style,
            &[
                ("AUTH0_ORGANIZATION", "org_acme"),
                ("AUTH0_CONNECTION", "google-oauth2"),
            ],
            |_| {},
        )
        .await;
        let (done, authorize) = app
            .flow(&format!(
                "/auth/login?organization=org_evil&connection=github&audience={}",
                urlencode(API)
            ))
            .await;
        assert_eq!(done.status(), 302, "{:?}", done.text().await);
        let q = query(authorize.as_str());
        assert_eq!(q["organization"], "org_acme");
        assert_eq!(q["connection"], "google-oauth2");
        assert_eq!(q["audience"], API);
        app.assert_nothing_refused();
    }
}

// ---------------------------------------------------------------------------------------------
// 4. MFA step-up

#[tokio::test]
async fn mfa_required_then_step_up_login_serves_the_token_without_refresh() {
    for style in ConfigStyle::ALL {
        let app = App::start(style, &[], |emu| emu.require_mfa_for(API)).await;
        app.login().await;
        let path = format!("/token?audience={}", urlencode(API));
        let r = app
            .http
            .get(app.url(&path))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{style:?}");
        assert_eq!(
            r.headers().get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store")
        );
        let text = r.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"], "mfa_required", "{body}");
        assert!(body["error_description"].is_string());
        let mfa_tokens = app.emu.issued_mfa_tokens();
        assert_eq!(mfa_tokens.len(), 1);
        assert!(
            !text.contains(&mfa_tokens[0]),
            "the mfa_token never reaches the browser"
        );
        let answered = app.last_refresh();
        assert_eq!(
            (answered.status, answered.error.as_deref()),
            (403, Some("mfa_required"))
        );
        assert_eq!(answered.param("audience"), Some(API));
        // The session is kept.
        let (s, profile) = app.get_json("/profile").await;
        assert_eq!(s, 200);
        assert!(profile.get("amr").is_none());

        // Step-up.
        let (done, authorize) = app
            .flow(&format!(
                "/auth/login?audience={}&acr_values={}&returnTo=%2Fx",
                urlencode(API),
                urlencode(MFA_POLICY)
            ))
            .await;
        assert_eq!(location(&done), "/x");
        let q = query(authorize.as_str());
        assert_eq!(
            (q["audience"].as_str(), q["acr_values"].as_str()),
            (API, MFA_POLICY)
        );
        let (_, profile) = app.get_json("/profile").await;
        assert_eq!(profile["amr"], json!(["mfa"]));
        assert_eq!(profile["acr"], MFA_POLICY);
        let refreshes = app.refreshes();
        let (s, token) = app.get_json(&path).await;
        assert_eq!(s, 200, "{token}");
        assert_eq!(app.refreshes(), refreshes, "taken from the step-up login");
        let claims = jwt_claims(token["access_token"].as_str().unwrap());
        assert_eq!(claims["aud"], API);
        app.assert_nothing_refused();
    }
}

#[tokio::test]
async fn core_mfa_required_is_typed_and_keeps_the_mfa_token_secret() {
    let app = App::start(ConfigStyle::DomainHttps, &[], |emu| emu.require_mfa_for(API)).await;
    let client = builder(&app.env).build().unwrap();
    let mut jar = MemoryCookieJar::default();
    let url = client
        .start_interactive_login(auth_core::LoginOptions::new(), &mut jar)
        .await
        .unwrap();
    let callback = app.through_emulator(url.as_str()).await;
    let mut jar = jar.next_request();
    client
        .complete_interactive_login(callback.as_str(), &mut jar)
        .await
        .unwrap();
    let mut jar = jar.next_request();
    let err = client
        .get_access_token(
            auth_core::AccessTokenOptions::new()
                .audience(API)
                .scope("read:things"),
            &mut jar,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "mfa_required");
    let shown = format!("{err} {err:?}");
    let auth_core::Error::MfaRequired(m) = err else {
        panic!("{shown}")
    };
    let token = m.mfa_token.clone().expect("mfa_token kept");
    assert_eq!(app.emu.issued_mfa_tokens(), [token.expose().to_owned()]);
    assert!(!shown.contains(token.expose()), "{shown}");
    assert_eq!(m.audience.as_deref(), Some(API));
    assert_eq!(m.scope.as_deref(), Some("read:things"));
    assert_eq!(m.status, 403);
    assert_eq!(m.mfa_requirements, Some(json!({"challenge": [{"type": "otp"}]})));
    let p = m.step_up_authorization_params();
    assert_eq!(
        (p.get("audience"), p.get("acr_values")),
        (Some(API), Some(auth_core::MFA_ACR_VALUE))
    );
    // Still logged in.
    assert!(client.get_user(&mut jar).await.unwrap().is_some());

    // Step up with what the error says; that login's token is used without a refresh, and its
    // refresh token gets tokens for the audience.
    let mut jar = jar.next_request();
    let url = client
        .start_interactive_login(auth_core::LoginOptions::new().authorization_params(p), &mut jar)
        .await
        .unwrap();
    let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["acr_values"], MFA_POLICY);
    let callback = app.through_emulator(url.as_str()).await;
    let mut jar = jar.next_request();
    let done = client
        .complete_interactive_login(callback.as_str(), &mut jar)
        .await
        .unwrap();
    assert_eq!(done.user["amr"], json!(["mfa"]));
    let refreshes = app.refreshes();
    let mut jar = jar.next_request();
    let t = client
        .get_access_token(auth_core::AccessTokenOptions::new().audience(API), &mut jar)
        .await
        .unwrap();
    assert_eq!(app.refreshes(), refreshes);
    let forced = client
        .get_access_token(
            auth_core::AccessTokenOptions::new()
                .audience(API)
                .force_refresh(true),
            &mut jar,
        )
        .await
        .unwrap();
    assert_eq!(app.refreshes(), refreshes + 1);
    assert_ne!(forced.token.expose(), t.token.expose());
    assert_eq!(jwt_claims(forced.token.expose())["aud"], API);
    app.assert_nothing_refused();
}

// ---------------------------------------------------------------------------------------------
// 8. Federated logout

#[tokio::test]
async fn federated_logout_adds_the_presence_flag_in_both_styles() {
    for style in ConfigStyle::ALL {
        for hide_end_session in [false, true] {
            let app = App::start(style, &[], |emu| emu.hide_end_session_endpoint(hide_end_session)).await;
            for (query_string, federated) in [
                ("", false),
                ("?federated=true", true),
                ("?federated=false", false),
                ("?federated", true),
            ] {
                app.login().await;
                let r = app
                    .http
                    .get(app.url(&format!("/auth/logout{query_string}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 302);
                let to = Url::parse(&location(&r)).unwrap();
                let what = format!("{style:?} hide_end_session={hide_end_session} {query_string}: {to}");
                if hide_end_session && style == ConfigStyle::Issuer {
                    // No end_session_endpoint and no Auth0 domain: straight back to the app.
                    assert_eq!(to.as_str(), format!("{}/", app.base), "{what}");
                    continue;
                }
                let expected_path = if hide_end_session {
                    "/v2/logout"
                } else {
                    "/oidc/logout"
                };
                assert_eq!(to.path(), expected_path, "{what}");
                let pairs: Vec<(String, String)> = to.query_pairs().into_owned().collect();
                let flags: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k == "federated").collect();
                if federated {
                    assert_eq!(flags, [&("federated".to_owned(), String::new())], "{what}");
                    assert!(
                        to.query().unwrap().split('&').any(|p| p == "federated"),
                        "a bare flag: {what}"
                    );
                } else {
                    assert!(flags.is_empty(), "{what}");
                }
                // The emulator accepts it and sends the browser back.
                let back = app.http.get(to.clone()).send().await.unwrap();
                assert_eq!(back.status(), 302, "{what}");
                assert_eq!(location(&back), format!("{}/", app.base), "{what}");
            }
            app.assert_nothing_refused();
        }
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn the_emulator_flags_missing_or_unexpected_telemetry() {
    // Telemetry off in the client while the tenant expects it: discovery is refused.
    let app = App::start(ConfigStyle::Domain, &[("AUTH0_TELEMETRY", "false")], |emu| {
        emu.expect_telemetry(Telemetry::HeaderAndAuthorizeParam);
    })
    .await;
    let r = app.http.get(app.url("/auth/login")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    app.assert_first_refusal("Auth0-Client header is missing");
    // An issuer configuration sends no auth0Client: an expectation for one is not met.
    let app = App::start(ConfigStyle::Issuer, &[], |emu| {
        emu.expect_telemetry(Telemetry::HeaderAndAuthorizeParam);
    })
    .await;
    let r = app.http.get(app.url("/auth/login")).send().await.unwrap();
    let authorize = location(&r);
    let r = app.http.get(&authorize).send().await.unwrap();
    assert_eq!(r.status(), 400);
    app.assert_first_refusal("auth0Client parameter is missing");
    // And a domain configuration's auth0Client is unexpected where only the header is.
    let app = App::start(ConfigStyle::Domain, &[], |emu| {
        emu.expect_telemetry(Telemetry::Header);
    })
    .await;
    let r = app.http.get(app.url("/auth/login")).send().await.unwrap();
    let r = app.http.get(location(&r)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    app.assert_first_refusal("unexpected auth0Client");
}
