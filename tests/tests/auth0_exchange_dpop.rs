//! Issue 13 items 6 and 7 end to end: custom token exchange (RFC 8693, `POST /token-exchange`)
//! and DPoP (RFC 9449, `AUTH0_DPOP`), through the connected-accounts example app against the
//! strict Auth0 emulator and its emulated API, configured from the environment variables of the
//! contract in both styles: `AUTH0_DOMAIN` on https (the emulator with TLS, trusted through
//! `SSL_CERT_FILE`) and `OIDC_ISSUER` on loopback http (plus `AUTH0_DOMAIN` on loopback http). Every test asserts the exact
//! wire and that neither the emulator nor the API refused anything it should not have.

use std::collections::{BTreeSet, HashSet};

use auth_axum::AuthOptions;
use auth_core::ServerClientBuilder;
use auth_tests::auth0::{
    Auth0Emulator, EMU_CLIENT_ID, EMU_CLIENT_SECRET, EmulatedApi, EmulatorOptions, ExchangeAction,
    RecordedRequest,
};
use auth_tests::emu_app::{ConfigStyle, EnvApp, tls_browser_client};
use auth_tests::location;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use url::Url;

const LEGACY_TYPE: &str = "urn:acme:legacy-token";
const LEGACY_TOKEN: &str = "legacy-token-value-abc123";
const LEGACY_SUB: &str = "auth0|legacy-7";
const EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The example app from the contract's environment variables, with the emulated API as its
/// upstream.
struct App {
    app: EnvApp,
    api: EmulatedApi,
}

impl std::ops::Deref for App {
    type Target = EnvApp;

    fn deref(&self) -> &EnvApp {
        &self.app
    }
}

impl App {
    /// The example app from the contract's environment variables plus `env`, against a fresh
    /// emulator (`opts`) and API.
    async fn start(style: ConfigStyle, env: &[(&str, &str)], opts: EmulatorOptions) -> App {
        let start = EnvApp::prepare(style, opts).await;
        let api = start.emu.start_api().await;
        let upstream = api.url("/data");
        let app = start
            .with_env(env)
            .with_env(&[("AUTH0_SCOPE", "openid profile email offline_access")])
            .serve(
                |b| b,
                AuthOptions::new(),
                |auth| auth_examples::connected_accounts::app_with_upstream(auth, Some(upstream)),
            );
        App { app, api }
    }

    /// The app with the default emulator and no extra variables.
    async fn default_for(style: ConfigStyle) -> App {
        App::start(style, &[], EmulatorOptions::default()).await
    }

    /// The app with `AUTH0_DPOP=true` and the default emulator.
    async fn with_dpop(style: ConfigStyle) -> App {
        App::start(style, &[("AUTH0_DPOP", "true")], EmulatorOptions::default()).await
    }

    /// [`App::exchange`], asserting the answer's status and `error`; the body.
    async fn exchange_refused(&self, form: &[(&str, &str)], status: u16, error: &str) -> Value {
        let (got, body, _) = self.exchange(form).await;
        assert_eq!(
            (got.as_u16(), body["error"].as_str()),
            (status, Some(error)),
            "{form:?}: {body}"
        );
        body
    }

    async fn exchange(&self, form: &[(&str, &str)]) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let r = self
            .http
            .post(self.url("/token-exchange"))
            .form(form)
            .send()
            .await
            .unwrap();
        let (s, h) = (r.status(), r.headers().clone());
        (s, r.json().await.unwrap_or(Value::Null), h)
    }

    fn token_requests(&self) -> Vec<RecordedRequest> {
        self.emu
            .requests()
            .into_iter()
            .filter(|r| r.path == "/oauth/token")
            .collect()
    }

    fn assert_nothing_refused(&self) {
        self.app.assert_nothing_refused();
        let refused = self.api.refused();
        assert!(refused.is_empty(), "the API refused requests: {refused:#?}");
    }
}

fn legacy_profile(emu: &Auth0Emulator) {
    emu.token_exchange_profile(
        LEGACY_TYPE,
        ExchangeAction::SetUser {
            subject_token: LEGACY_TOKEN.into(),
            sub: LEGACY_SUB.into(),
        },
    );
    emu.set_user(
        LEGACY_SUB,
        json!({"name": "Legacy Lee", "email": "lee@example.test", "email_verified": true}),
    );
    // `set_user` also picks who logs in interactively: keep Alice for that.
    emu.set_user(
        "auth0|alice",
        json!({"name": "Alice", "email": "alice@example.test", "email_verified": true}),
    );
}

fn form_keys(r: &RecordedRequest) -> BTreeSet<&str> {
    r.form.iter().map(|(k, _)| k.as_str()).collect()
}

fn segment(jwt: &str, i: usize) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').nth(i).unwrap()).unwrap()).unwrap()
}

/// The payload of a JWT (not verified).
fn jwt_claims(jwt: &str) -> Value {
    segment(jwt, 1)
}

fn thumbprint(jwk: &Value) -> String {
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Custom token exchange

#[tokio::test]
async fn token_exchange_sends_the_grant_and_answers_token_and_verified_sub_in_both_styles() {
    for style in ConfigStyle::ALL {
        let app = App::default_for(style).await;
        legacy_profile(&app.emu);
        let (status, body, headers) = app
            .exchange(&[
                ("subject_token", LEGACY_TOKEN),
                ("subject_token_type", LEGACY_TYPE),
                ("audience", "https://api.example.test/"),
                ("scope", "openid email"),
            ])
            .await;
        assert_eq!(status, 200, "{style:?}: {body}");
        assert_eq!(body["sub"], LEGACY_SUB, "{style:?}");
        assert_eq!(headers["cache-control"], "no-store");
        let at = jwt_claims(body["access_token"].as_str().unwrap());
        assert_eq!(at["aud"], "https://api.example.test/");
        assert_eq!(at["sub"], LEGACY_SUB);

        let sent = app.token_requests();
        assert_eq!(sent.len(), 1, "{style:?}");
        let r = &sent[0];
        assert_eq!(
            form_keys(r),
            BTreeSet::from([
                "grant_type",
                "subject_token",
                "subject_token_type",
                "audience",
                "scope"
            ])
        );
        assert_eq!(r.param("grant_type"), Some(EXCHANGE_GRANT));
        assert_eq!(r.param("subject_token"), Some(LEGACY_TOKEN));
        assert_eq!(r.param("subject_token_type"), Some(LEGACY_TYPE));
        assert_eq!(r.param("scope"), Some("openid email"));
        assert_eq!(r.auth_scheme.as_deref(), Some("Basic"), "client authentication");
        assert_eq!(r.header("dpop"), None, "no DPoP without AUTH0_DPOP");
        assert_eq!(r.status, 200);

        // Without `login`, no session.
        assert_eq!(app.get_json("/profile").await.0, 401);
        app.assert_nothing_refused();
    }
}

#[tokio::test]
async fn token_exchange_with_login_replaces_the_session_with_a_fresh_one() {
    for style in ConfigStyle::ALL {
        let app = App::default_for(style).await;
        legacy_profile(&app.emu);
        app.login().await;
        assert_eq!(app.get_json("/profile").await.1["sub"], "auth0|alice");

        let (status, body, _) = app
            .exchange(&[
                ("subject_token", LEGACY_TOKEN),
                ("subject_token_type", LEGACY_TYPE),
                ("scope", "email"),
                ("login", "true"),
            ])
            .await;
        assert_eq!(status, 200, "{style:?}: {body}");
        assert_eq!(body["sub"], LEGACY_SUB);
        // `openid` was added for the session's ID token.
        let r = app.token_requests().pop().unwrap();
        assert_eq!(r.param("scope"), Some("openid email"), "{style:?}");
        assert!(!r.form.iter().any(|(k, _)| k == "audience"));

        let (status, profile) = app.get_json("/profile").await;
        assert_eq!(status, 200);
        assert_eq!(profile["sub"], LEGACY_SUB);
        assert_eq!(profile["email"], "lee@example.test");
        // The session's access token is the exchange's.
        let (status, token) = app.get_json("/token").await;
        assert_eq!(status, 200, "{token}");
        assert_eq!(token["access_token"], body["access_token"]);
        app.assert_nothing_refused();
    }
}

#[tokio::test]
async fn refused_exchanges_keep_the_provider_code_and_429_stays_429() {
    let app = App::default_for(ConfigStyle::DomainHttps).await;
    legacy_profile(&app.emu);
    app.emu.token_exchange_profile(
        "urn:acme:blocked",
        ExchangeAction::Deny {
            code: "access_denied".into(),
            description: "this legacy account is locked".into(),
        },
    );
    app.emu.token_exchange_profile(
        "https://acme.example/token-type/busy",
        ExchangeAction::TooManyAttempts,
    );

    let body = app
        .exchange_refused(
            &[("subject_token", "wrong"), ("subject_token_type", LEGACY_TYPE)],
            400,
            "invalid_request",
        )
        .await;
    assert!(body["error_description"].is_string());

    let body = app
        .exchange_refused(
            &[("subject_token", "t"), ("subject_token_type", "urn:acme:blocked")],
            400,
            "access_denied",
        )
        .await;
    assert!(
        !body.to_string().contains("locked"),
        "the provider's text stays out: {body}"
    );

    app.exchange_refused(
        &[
            ("subject_token", "t"),
            ("subject_token_type", "https://acme.example/token-type/busy"),
        ],
        429,
        "too_many_attempts",
    )
    .await;

    assert_eq!(app.get_json("/profile").await.0, 401, "no session from a refusal");
    app.assert_nothing_refused();
}

#[tokio::test]
async fn bad_exchange_input_is_refused_before_any_request() {
    let app = App::default_for(ConfigStyle::Issuer).await;
    legacy_profile(&app.emu);
    for t in [
        "urn:ietf:params:oauth:token-type:access_token",
        "urn:ietf:params:oauth:token-type:jwt",
        "urn:auth0:params:oauth:token-type:x",
        "urn:okta:token",
        "https://auth0.com/token-type/x",
        "http://okta.com/x",
        "https://tenant.auth0.com/x",
    ] {
        app.exchange_refused(
            &[("subject_token", "t"), ("subject_token_type", t)],
            400,
            "invalid_request",
        )
        .await;
    }
    let bad: [&[(&str, &str)]; 6] = [
        &[("subject_token_type", LEGACY_TYPE)],
        &[("subject_token", "t")],
        &[("subject_token", "t"), ("subject_token_type", "not a uri")],
        &[
            ("subject_token", "t"),
            ("subject_token_type", LEGACY_TYPE),
            ("login", "maybe"),
        ],
        &[
            ("subject_token", "t"),
            ("subject_token", "u"),
            ("subject_token_type", LEGACY_TYPE),
        ],
        &[("subject_token", ""), ("subject_token_type", LEGACY_TYPE)],
    ];
    for form in bad {
        app.exchange_refused(form, 400, "invalid_request").await;
    }
    let r = app
        .http
        .post(app.url("/token-exchange"))
        .header("content-type", "application/json")
        .body(r#"{"subject_token":"t"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    // Logging in from another site's form is refused (login CSRF).
    let r = app
        .http
        .post(app.url("/token-exchange"))
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("subject_token", LEGACY_TOKEN),
            ("subject_token_type", LEGACY_TYPE),
            ("login", "true"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "cross_site_request");
    assert!(
        app.token_requests().is_empty(),
        "nothing reached the token endpoint"
    );
    app.assert_nothing_refused();
}

#[tokio::test]
async fn an_unknown_subject_token_type_is_the_providers_invalid_request() {
    let app = App::default_for(ConfigStyle::DomainHttps).await;
    legacy_profile(&app.emu);
    app.exchange_refused(
        &[
            ("subject_token", "t"),
            ("subject_token_type", "urn:acme:unregistered"),
        ],
        400,
        "invalid_request",
    )
    .await;
    let refused = app.emu.refused();
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert!(
        refused[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("no Token Exchange Profile")),
        "{refused:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// DPoP

/// Every token request carries one valid proof by one key; returns the proofs' claims.
fn assert_proofs(app: &App, jkt: &str) -> Vec<Value> {
    let token_endpoint = format!("{}oauth/token", app.emu.issuer());
    let mut jtis = HashSet::new();
    let mut claims = Vec::new();
    for r in app.token_requests() {
        let proof = r
            .header("dpop")
            .unwrap_or_else(|| panic!("no DPoP proof: {r:#?}"));
        let head = segment(proof, 0);
        assert_eq!(head["typ"], "dpop+jwt");
        assert_eq!(head["alg"], "ES256");
        assert!(head["jwk"].get("d").is_none(), "public key only");
        assert_eq!(thumbprint(&head["jwk"]), jkt, "one key per process");
        let c = segment(proof, 1);
        assert_eq!(c["htm"], "POST");
        assert_eq!(c["htu"], token_endpoint.as_str());
        assert!(c.get("ath").is_none());
        assert!(c["iat"].as_u64().is_some());
        assert!(
            jtis.insert(c["jti"].as_str().unwrap().to_owned()),
            "jti reused: {c}"
        );
        claims.push(c);
    }
    claims
}

#[tokio::test]
async fn with_dpop_every_token_request_has_a_proof_and_tokens_are_bound_and_used_as_dpop() {
    for style in ConfigStyle::ALL {
        let opts = EmulatorOptions {
            // Shorter than the refresh leeway: every /token refreshes.
            access_token_ttl: 30,
            ..EmulatorOptions::default()
        };
        let app = App::start(style, &[("AUTH0_DPOP", "true")], opts).await;
        app.emu.require_dpop(true);
        legacy_profile(&app.emu);
        let jkt = app.auth.client().dpop_thumbprint().unwrap().to_owned();

        app.login().await;
        let (status, token) = app.get_json("/token").await;
        assert_eq!(status, 200, "{token}");
        assert_eq!(
            jwt_claims(token["access_token"].as_str().unwrap())["cnf"]["jkt"],
            jkt.as_str()
        );

        // The session's DPoP-bound token goes upstream as DPoP with an `ath` proof.
        let (status, up) = app.get_json("/upstream").await;
        assert_eq!(status, 200, "{style:?}: {up}");
        assert_eq!(up["upstream"]["scheme"], "DPoP");
        let call = app.api.requests().pop().unwrap();
        assert_eq!(call.scheme.as_deref(), Some("DPoP"));
        let proof = call.proof.unwrap();
        assert_eq!(proof["htm"], "GET");
        assert_eq!(proof["htu"], app.api.url("/data").as_str());
        let token = call.token.unwrap();
        assert_eq!(
            proof["ath"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())).as_str()
        );

        // The exchange is a DPoP grant too.
        let (status, body, _) = app
            .exchange(&[
                ("subject_token", LEGACY_TOKEN),
                ("subject_token_type", LEGACY_TYPE),
            ])
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "DPoP");
        assert_eq!(
            jwt_claims(body["access_token"].as_str().unwrap())["cnf"]["jkt"],
            jkt.as_str()
        );

        let proofs = assert_proofs(&app, &jkt);
        let grants: Vec<String> = app
            .token_requests()
            .iter()
            .map(|r| r.param("grant_type").unwrap().to_owned())
            .collect();
        assert_eq!(
            grants,
            [
                "authorization_code",
                "refresh_token",
                "refresh_token",
                EXCHANGE_GRANT
            ],
            "{style:?}"
        );
        assert_eq!(proofs.len(), 4);
        app.assert_nothing_refused();
    }
}

#[tokio::test]
async fn without_dpop_nothing_changes() {
    for style in ConfigStyle::ALL {
        let app = App::default_for(style).await;
        assert!(app.auth.client().dpop_thumbprint().is_none());
        app.login().await;
        let (status, up) = app.get_json("/upstream").await;
        assert_eq!(status, 200, "{up}");
        assert_eq!(up["upstream"]["scheme"], "Bearer");
        let call = app.api.requests().pop().unwrap();
        assert!(call.proof.is_none() && !call.headers.iter().any(|(k, _)| k == "dpop"));
        for r in app.emu.requests() {
            assert_eq!(r.header("dpop"), None, "{r:#?}");
        }
        let (_, token) = app.get_json("/token").await;
        assert!(
            jwt_claims(token["access_token"].as_str().unwrap())
                .get("cnf")
                .is_none()
        );
        app.assert_nothing_refused();
    }
}

#[tokio::test]
async fn a_use_dpop_nonce_answer_is_retried_once_and_the_latest_nonce_is_kept() {
    for style in ConfigStyle::ALL {
        let app = App::start(style, &[("AUTH0_DPOP", "1")], EmulatorOptions::default()).await;
        legacy_profile(&app.emu);
        app.emu.require_dpop_nonce(true);
        let jkt = app.auth.client().dpop_thumbprint().unwrap().to_owned();

        // First request: no nonce yet → challenge → one retry with it.
        app.login().await;
        let sent = app.token_requests();
        assert_eq!(sent.len(), 2, "{style:?}: {sent:#?}");
        assert_eq!(
            (sent[0].status, sent[0].error.as_deref()),
            (400, Some("use_dpop_nonce"))
        );
        assert!(segment(sent[0].header("dpop").unwrap(), 1).get("nonce").is_none());
        assert_eq!(sent[1].status, 200);
        let nonce = segment(sent[1].header("dpop").unwrap(), 1)["nonce"].clone();
        assert!(nonce.is_string());

        // The kept nonce is used at once: no challenge.
        let (status, _, _) = app
            .exchange(&[
                ("subject_token", LEGACY_TOKEN),
                ("subject_token_type", LEGACY_TYPE),
            ])
            .await;
        assert_eq!(status, 200);
        let sent = app.token_requests();
        assert_eq!(sent.len(), 3);
        assert_eq!(segment(sent[2].header("dpop").unwrap(), 1)["nonce"], nonce);

        // A rotated nonce: one challenge, one retry with the new one.
        let rotated = app.emu.rotate_dpop_nonce();
        let (status, body, _) = app
            .exchange(&[
                ("subject_token", LEGACY_TOKEN),
                ("subject_token_type", LEGACY_TYPE),
            ])
            .await;
        assert_eq!(status, 200, "{body}");
        let sent = app.token_requests();
        assert_eq!(sent.len(), 5);
        assert_eq!(sent[3].error.as_deref(), Some("use_dpop_nonce"));
        assert_eq!(
            segment(sent[4].header("dpop").unwrap(), 1)["nonce"],
            rotated.as_str()
        );
        assert_proofs(&app, &jkt);

        // An API nonce challenge is retried once too.
        app.api.require_nonce(true);
        let (status, up) = app.get_json("/upstream").await;
        assert_eq!(status, 200, "{up}");
        let calls = app.api.requests();
        assert_eq!(calls.len(), 2);
        assert!(calls[0].challenged && calls[1].status == 200);
        assert!(calls[1].proof.as_ref().unwrap()["nonce"].is_string());
        app.assert_nothing_refused();
    }
}

#[tokio::test]
async fn a_replayed_proof_is_refused_by_the_tenant_and_the_api() {
    let app = App::with_dpop(ConfigStyle::DomainHttps).await;
    app.login().await;
    let (status, _) = app.get_json("/upstream").await;
    assert_eq!(status, 200);
    app.assert_nothing_refused();

    // Replay the code exchange's proof on a new token request.
    let first = app.token_requests().remove(0);
    let proof = first.header("dpop").unwrap().to_owned();
    let raw = tls_browser_client();
    let r = raw
        .post(app.emu.url("/oauth/token"))
        .basic_auth(EMU_CLIENT_ID, Some(EMU_CLIENT_SECRET))
        .header("dpop", &proof)
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    assert!(
        body["error_description"].as_str().unwrap().contains("replay"),
        "{body}"
    );

    // Replay the API call.
    let call = app.api.requests().pop().unwrap();
    let header = |n: &str| call.headers.iter().find(|(k, _)| k == n).unwrap().1.clone();
    let r = raw
        .get(app.api.url("/data"))
        .header("authorization", header("authorization"))
        .header("dpop", header("dpop"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("DPoP")
    );
    assert_eq!(app.api.refused().len(), 1);
}

#[tokio::test]
async fn the_dpop_key_comes_from_pkcs8_or_sec1_pem_and_bad_settings_fail_at_start() {
    const PKCS8: &str = include_str!("../../crates/auth-core/testdata/ec1.pem");
    const SEC1: &str = "-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIHSfRpYya+mpSFBBeZkweq518UdPRyHJ7BhKSKI7PNuNoAoGCCqGSM49\\nAwEHoUQDQgAEc7jNblrpYqivSnHJB1eYLc3ETkAZixpKER1i2q1IFWmxwYP6U3Zg\\nNr8o/tc127+5aqtfzK6gMHvvnijpwGGDwA==\\n-----END EC PRIVATE KEY-----";
    let mut thumbprints = Vec::new();
    for (style, key) in [(ConfigStyle::DomainHttps, PKCS8), (ConfigStyle::Issuer, SEC1)] {
        let app = App::start(
            style,
            &[("AUTH0_DPOP", "true"), ("AUTH0_DPOP_PRIVATE_KEY", key)],
            EmulatorOptions::default(),
        )
        .await;
        app.login().await;
        let jkt = app.auth.client().dpop_thumbprint().unwrap().to_owned();
        assert_proofs(&app, &jkt);
        thumbprints.push(jkt);
        app.assert_nothing_refused();
    }
    assert_eq!(thumbprints[0], thumbprints[1], "the same key in both encodings");

    let base = |extra: (&'static str, &'static str)| {
        move |k: &str| match k {
            "AUTH0_DOMAIN" => Some("tenant.example.test".to_owned()),
            "AUTH0_CLIENT_ID" => Some("cid".to_owned()),
            "AUTH0_SECRET" => Some("0123456789abcdef0123456789abcdef".to_owned()),
            "APP_BASE_URL" => Some("https://app.example.test".to_owned()),
            k if k == extra.0 => Some(extra.1.to_owned()),
            _ => None,
        }
    };
    let e = ServerClientBuilder::from_env_with(base(("AUTH0_DPOP", "sometimes"))).unwrap_err();
    assert!(e.to_string().contains("AUTH0_DPOP"), "{e}");
    let e = ServerClientBuilder::from_env_with(base(("AUTH0_DPOP_PRIVATE_KEY", "not a key")))
        .unwrap()
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("AUTH0_DPOP_PRIVATE_KEY"), "{e}");
    let c = ServerClientBuilder::from_env_with(base(("AUTH0_DPOP", "false")))
        .unwrap()
        .build()
        .unwrap();
    assert!(!c.dpop_enabled());
}

#[tokio::test]
async fn a_token_vault_token_stays_bearer_with_dpop_on() {
    let app = App::with_dpop(ConfigStyle::DomainHttps).await;
    app.emu.require_dpop(true);
    app.login().await;
    // Link a Google identity so Token Vault has a token for it.
    let r = app
        .http
        .get(app.url("/auth/link?connection=google-oauth2&returnTo=%2Flinked"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let mut next = Url::parse(&location(&r)).unwrap();
    let callback = loop {
        let r = app.http.get(next.clone()).send().await.unwrap();
        assert_eq!(r.status(), 302, "{next}");
        let target = next.join(&location(&r)).unwrap();
        if target.as_str().starts_with(&app.base) {
            break target;
        }
        next = target;
    };
    let done = app.http.get(callback).send().await.unwrap();
    assert_eq!(location(&done), "/linked");

    let (status, up) = app.get_json("/upstream?connection=google-oauth2").await;
    assert_eq!(status, 200, "{up}");
    assert_eq!(up["upstream"]["scheme"], "Bearer");
    let call = app.api.requests().pop().unwrap();
    assert_eq!(call.scheme.as_deref(), Some("Bearer"));
    assert!(call.proof.is_none() && !call.headers.iter().any(|(k, _)| k == "dpop"));
    assert!(call.token.unwrap().starts_with("emu-federated-google-oauth2-"));
    // Even so, the Token Vault request itself carried a proof (every token request does).
    let jkt = app.auth.client().dpop_thumbprint().unwrap().to_owned();
    assert_proofs(&app, &jkt);
    let vault = app
        .token_requests()
        .into_iter()
        .filter(|r| r.param("grant_type") == Some(auth_tests::auth0::TOKEN_VAULT_GRANT_TYPE))
        .count();
    assert_eq!(vault, 1);
    app.assert_nothing_refused();
}

#[tokio::test]
async fn ciba_polls_carry_proofs_too_and_its_tokens_stay_bearer() {
    use auth_tests::auth0::{CIBA_GRANT_TYPE, CibaOutcome, CibaScript};
    let app = App::with_dpop(ConfigStyle::DomainHttps).await;
    app.emu.require_dpop(true);
    app.emu.script_ciba(CibaScript::new(
        CibaOutcome::Approve { pending_polls: 0 },
        Some(1),
    ));
    let r = app
        .http
        .post(app.url("/ciba"))
        .form(&[("login_hint", "auth0|alice"), ("binding_message", "Approve 1234")])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sub"], "auth0|alice");
    assert!(
        jwt_claims(body["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );
    let jkt = app.auth.client().dpop_thumbprint().unwrap().to_owned();
    assert_proofs(&app, &jkt);
    assert!(
        app.token_requests()
            .iter()
            .all(|r| r.param("grant_type") == Some(CIBA_GRANT_TYPE))
    );
    app.assert_nothing_refused();
}

/// A proof signed with `testdata/ec1.pem`, with `header` and `claims` as given (`jwk` filled in
/// unless `header` has one).
fn forged_proof(mut header: Value, claims: &Value) -> String {
    const KEY: &str = include_str!("../../crates/auth-core/testdata/ec1.pem");
    const PUBLIC: &str = include_str!("../../crates/auth-core/testdata/ec1.pub.pem");
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            PUBLIC
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let point = &der[der.len() - 64..];
    if header.get("jwk").is_none() {
        header["jwk"] = json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[..32]), "y": URL_SAFE_NO_PAD.encode(&point[32..]),
        });
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = jsonwebtoken::EncodingKey::from_ec_pem(KEY.as_bytes()).unwrap();
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::ES256).unwrap();
    format!("{input}.{sig}")
}

#[tokio::test]
async fn the_emulator_refuses_every_malformed_proof() {
    let emu = Auth0Emulator::start().await;
    let htu = format!("{}oauth/token", emu.issuer());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let head = json!({"typ": "dpop+jwt", "alg": "ES256"});
    let claims = |extra: Value| {
        let mut c =
            json!({"jti": URL_SAFE_NO_PAD.encode(rand_bytes()), "htm": "POST", "htu": htu, "iat": now});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let good = forged_proof(head.clone(), &claims(json!({})));
    let with_d = {
        let mut h = head.clone();
        let p = forged_proof(head.clone(), &claims(json!({})));
        h["jwk"] = segment(&p, 0)["jwk"].clone();
        h["jwk"]["d"] = json!("AAAA");
        forged_proof(h, &claims(json!({})))
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "typ",
            vec![forged_proof(
                json!({"typ": "JWT", "alg": "ES256"}),
                &claims(json!({})),
            )],
        ),
        ("private key", vec![with_d]),
        (
            "htm",
            vec![forged_proof(head.clone(), &claims(json!({"htm": "GET"})))],
        ),
        (
            "htu",
            vec![forged_proof(
                head.clone(),
                &claims(json!({"htu": format!("{htu}?x=1")})),
            )],
        ),
        (
            "iat",
            vec![forged_proof(head.clone(), &claims(json!({"iat": now - 600})))],
        ),
        (
            "ath",
            vec![forged_proof(head.clone(), &claims(json!({"ath": "x"})))],
        ),
        (
            "nonce",
            vec![forged_proof(
                head.clone(),
                &claims(json!({"nonce": "never-issued"})),
            )],
        ),
        ("signature", vec![tampered(&good)]),
        ("more than one", vec![good.clone(), good.clone()]),
    ];
    let http = reqwest::Client::new();
    for (what, proofs) in &cases {
        let mut req = http
            .post(emu.url("/oauth/token"))
            .basic_auth(EMU_CLIENT_ID, Some(EMU_CLIENT_SECRET))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")]);
        for p in proofs {
            req = req.header("dpop", p);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 400, "{what}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof", "{what}: {body}");
        assert!(
            body["error_description"].as_str().unwrap().contains(what),
            "{what}: {body}"
        );
    }
    // A well-formed proof passes the DPoP checks (the refresh token is then unknown).
    let r = http
        .post(emu.url("/oauth/token"))
        .basic_auth(EMU_CLIENT_ID, Some(EMU_CLIENT_SECRET))
        .header("dpop", &good)
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

/// `jws` with one character of its signature changed.
fn tampered(jws: &str) -> String {
    let mut chars: Vec<char> = jws.chars().collect();
    let i = chars.len() - 10;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

fn rand_bytes() -> [u8; 16] {
    use rand::RngCore as _;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b
}
