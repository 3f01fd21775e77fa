//! CIBA (OpenID CIBA Core 1.0, poll mode, Auth0 flavour) end to end: `POST /ciba` of the
//! connected-accounts example against the strict Auth0 emulator, in both configuration styles
//! (`OIDC_ISSUER` on http loopback, and `AUTH0_DOMAIN` over HTTPS trusted through `SSL_CERT_FILE`,
//! read through `from_env_with` as the binary does), plus the
//! library's start / poll-once / wait calls. Every test asserts the exact wire (form keys, client
//! authentication, `login_hint`, poll pacing) and that the emulator refused nothing it should not.

use std::time::{Duration, Instant};

use auth_core::{
    BackchannelAuthentication, BackchannelAuthenticationOptions, BackchannelPoll, CibaError, Error,
    ServerClient,
};
use auth_tests::RecordedRequest;
use auth_tests::auth0::{
    Auth0Emulator, CIBA_GRANT_TYPE, CibaOutcome, CibaRecord, CibaScript, EMU_CLIENT_ID, EMU_CLIENT_SECRET,
    EMU_DEFAULT_SUB, EmulatedClient, EmulatorOptions, Telemetry, decode_telemetry,
};
use auth_tests::emu_app::{ConfigStyle, EnvApp};
use auth_tests::jwt_payload as jwt_claims;
use reqwest::StatusCode;
use serde_json::{Value, json};

const API: &str = "https://api.example.test/";
const POST_CLIENT_ID: &str = "emu-post-client";
const POST_CLIENT_SECRET: &str = "emu-post-client-secret-0123456789abcdef";

/// The two ways the example is configured: `OIDC_ISSUER` on http loopback, and `AUTH0_DOMAIN`
/// served over HTTPS, its CA trusted through `SSL_CERT_FILE`.
const STYLES: [ConfigStyle; 2] = [ConfigStyle::Issuer, ConfigStyle::DomainHttps];

struct App {
    app: EnvApp,
    client: ServerClient,
    /// A plain client for the app: no cookies, no redirects.
    http: reqwest::Client,
}

impl std::ops::Deref for App {
    type Target = EnvApp;

    fn deref(&self) -> &EnvApp {
        &self.app
    }
}

impl App {
    async fn start(style: ConfigStyle) -> App {
        App::start_as(style, EMU_CLIENT_ID, EMU_CLIENT_SECRET, &[]).await
    }

    /// The example app configured from env-style variables (plus `extra_env`), as the
    /// `connected_accounts` binary reads them. The emulator checks telemetry strictly: the
    /// `Auth0-Client` header on every request (and `auth0Client` at `/authorize` for a domain),
    /// or none at all with `AUTH0_TELEMETRY=false`.
    async fn start_as(
        style: ConfigStyle,
        client_id: &str,
        client_secret: &str,
        extra_env: &[(&'static str, &str)],
    ) -> App {
        let mut opts = EmulatorOptions::default();
        opts.clients.push(EmulatedClient {
            client_id: POST_CLIENT_ID.to_owned(),
            client_secret: Some(POST_CLIENT_SECRET.to_owned()),
            auth_method: "client_secret_post",
        });
        let start = EnvApp::prepare(style, opts).await.with_env(extra_env).with_env(&[
            ("AUTH0_CLIENT_ID", client_id),
            ("AUTH0_CLIENT_SECRET", client_secret),
        ]);
        start
            .emu
            .set_user("auth0|bob", json!({"name": "Bob", "email": "bob@example.test"}));
        let telemetry_off = extra_env.contains(&("AUTH0_TELEMETRY", "false"));
        start.emu.expect_telemetry(match style {
            _ if telemetry_off => Telemetry::Off,
            ConfigStyle::Issuer => Telemetry::Header,
            ConfigStyle::Domain | ConfigStyle::DomainHttps => Telemetry::HeaderAndAuthorizeParam,
        });
        let app = start.serve(
            |builder| {
                if client_id == POST_CLIENT_ID {
                    builder.client_auth(auth_core::ClientAuth::secret_post(client_secret))
                } else {
                    builder
                }
            },
            auth_examples::connected_accounts::auth_options(),
            auth_examples::connected_accounts::app,
        );
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap();
        App {
            client: app.auth.client().clone(),
            app,
            http,
        }
    }

    /// A fresh app whose next backchannel request plays out as `script`.
    async fn scripted(style: ConfigStyle, script: CibaScript) -> App {
        let app = App::start(style).await;
        app.emu.script_ciba(script);
        app
    }

    /// `POST /ciba` for the emulator's default user, binding message `Approve?`.
    async fn ciba_default_user(&self) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        self.ciba(&[("login_hint", EMU_DEFAULT_SUB), ("binding_message", "Approve?")])
            .await
    }

    /// `POST /ciba` with `fields` as a form.
    async fn ciba(&self, fields: &[(&str, &str)]) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let r = self
            .http
            .post(format!("{}/ciba", self.base))
            .form(fields)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        (status, r.json().await.unwrap_or(Value::Null), headers)
    }

    fn bc_requests(&self) -> Vec<RecordedRequest> {
        self.emu
            .requests()
            .into_iter()
            .filter(|r| r.path == "/bc-authorize")
            .collect()
    }

    fn polls(&self) -> Vec<RecordedRequest> {
        self.emu
            .requests()
            .into_iter()
            .filter(|r| r.path == "/oauth/token" && r.param("grant_type") == Some(CIBA_GRANT_TYPE))
            .collect()
    }

    fn only_record(&self) -> CibaRecord {
        let all = self.emu.ciba_requests();
        assert_eq!(all.len(), 1, "{}: {all:#?}", self.label());
        all.into_iter().next().unwrap()
    }

    fn assert_nothing_refused(&self) {
        let refused = self.emu.refused();
        assert!(
            refused.is_empty(),
            "{}: the emulator refused requests: {refused:#?}",
            self.label()
        );
    }

    fn label(&self) -> &'static str {
        self.style.variable()
    }
}

/// The emulator's answers to the polls of `record`, in order.
fn answers(record: &CibaRecord) -> Vec<&str> {
    record.polls.iter().map(|p| p.answer.as_str()).collect()
}

fn keys(r: &RecordedRequest) -> Vec<&str> {
    let mut k: Vec<&str> = r.form.iter().map(|(k, _)| k.as_str()).collect();
    k.sort_unstable();
    k
}

/// Every poll came at least the required interval after the previous answer, and not absurdly
/// later (a generous bound: the library sleeps exactly the interval).
fn assert_paced(app: &App, record: &CibaRecord, expected_intervals: &[u64]) {
    let got: Vec<u64> = record
        .polls
        .iter()
        .map(|p| p.required_interval.as_secs())
        .collect();
    assert_eq!(
        got,
        expected_intervals,
        "{}: intervals in force: {record:#?}",
        app.label()
    );
    for p in &record.polls {
        assert!(
            p.since_previous_answer >= p.required_interval,
            "{}: polled too fast: {p:?}",
            app.label()
        );
        assert!(
            p.since_previous_answer < p.required_interval + Duration::from_secs(4),
            "{}: waited far longer than the interval: {p:?}",
            app.label()
        );
    }
}

async fn both<F, Fut>(scenario: F)
where
    F: Fn(ConfigStyle) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let [a, b] = STYLES;
    tokio::join!(scenario(a), scenario(b));
}

// ---------------------------------------------------------------------------------------------
// POST /ciba, the contract

#[tokio::test]
async fn approval_after_pending_polls_sends_the_exact_wire() {
    both(|style| async move {
        let app = App::scripted(
            style,
            CibaScript::new(CibaOutcome::Approve { pending_polls: 2 }, Some(1)),
        )
        .await;
        let (status, body, headers) = app
            .ciba(&[
                ("login_hint", EMU_DEFAULT_SUB),
                ("binding_message", "Approve sign-in 4821"),
                ("scope", "openid profile"),
                ("audience", API),
            ])
            .await;
        assert_eq!(status, 200, "{}: {body}", app.label());
        assert_eq!(body["sub"], EMU_DEFAULT_SUB);
        assert!(body.get("authorization_details").is_none(), "{body}");
        assert_eq!(headers["cache-control"], "no-store");
        let at = jwt_claims(body["access_token"].as_str().unwrap());
        assert_eq!(at["aud"], API);
        assert_eq!(at["sub"], EMU_DEFAULT_SUB);

        // /bc-authorize: exactly these form keys, Basic client authentication, the login_hint JSON.
        let bc = app.bc_requests();
        assert_eq!(bc.len(), 1);
        assert_eq!(
            keys(&bc[0]),
            ["audience", "binding_message", "login_hint", "scope"]
        );
        assert_eq!(bc[0].auth_scheme.as_deref(), Some("Basic"));
        assert_eq!(bc[0].client_id.as_deref(), Some(EMU_CLIENT_ID));
        assert_eq!(bc[0].method, "POST");
        assert_eq!(
            bc[0].header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let hint: Value = serde_json::from_str(bc[0].param("login_hint").unwrap()).unwrap();
        assert_eq!(
            hint,
            json!({"format": "iss_sub", "iss": app.emu.issuer(), "sub": EMU_DEFAULT_SUB})
        );
        assert!(app.emu.issuer().ends_with('/'));
        assert_eq!(bc[0].param("scope"), Some("openid profile"));
        assert_eq!(bc[0].param("binding_message"), Some("Approve sign-in 4821"));
        let telemetry = bc[0]
            .header("auth0-client")
            .expect("Auth0-Client on /bc-authorize");
        let decoded = decode_telemetry(telemetry).unwrap();
        assert_eq!(decoded["name"], "auth-core");

        // The polls: the CIBA grant with the auth_req_id and nothing else, paced by the interval.
        let record = app.only_record();
        let polls = app.polls();
        assert_eq!(polls.len(), 3);
        for p in &polls {
            assert_eq!(keys(p), ["auth_req_id", "grant_type"]);
            assert_eq!(p.param("auth_req_id"), Some(record.auth_req_id.as_str()));
            assert_eq!(p.auth_scheme.as_deref(), Some("Basic"));
            assert_eq!(p.header("auth0-client"), Some(telemetry));
            assert_eq!(p.header("dpop"), None);
        }
        let answers = answers(&record);
        assert_eq!(
            answers,
            ["authorization_pending", "authorization_pending", "tokens"]
        );
        assert_paced(&app, &record, &[1, 1, 1]);
        app.assert_nothing_refused();
    })
    .await;
}

#[tokio::test]
async fn defaults_scope_openid_profile_email_and_five_second_interval() {
    both(|style| async move {
        let app = App::start(style).await;
        // No `interval` in the answer: the client must wait 5 s.
        app.emu
            .script_ciba(CibaScript::new(CibaOutcome::Approve { pending_polls: 0 }, None));
        let started = Instant::now();
        let (status, body, _) = app
            .ciba(&[("login_hint", "auth0|bob"), ("binding_message", "Hello Bob")])
            .await;
        assert_eq!(status, 200, "{}: {body}", app.label());
        assert!(started.elapsed() >= Duration::from_secs(5));
        assert_eq!(body["sub"], "auth0|bob");
        let bc = app.bc_requests();
        assert_eq!(bc[0].param("scope"), Some("openid profile email"));
        assert_eq!(keys(&bc[0]), ["binding_message", "login_hint", "scope"]);
        let record = app.only_record();
        assert_eq!(record.interval, None);
        assert_paced(&app, &record, &[5]);
        app.assert_nothing_refused();
    })
    .await;
}

#[tokio::test]
async fn scope_without_openid_gets_openid() {
    both(|style| async move {
        let app = App::scripted(
            style,
            CibaScript::new(CibaOutcome::Approve { pending_polls: 0 }, Some(1)),
        )
        .await;
        let (status, body, _) = app
            .ciba(&[
                ("login_hint", EMU_DEFAULT_SUB),
                ("binding_message", "Hi"),
                ("scope", "profile offline_access"),
            ])
            .await;
        assert_eq!(status, 200, "{}: {body}", app.label());
        assert_eq!(
            app.bc_requests()[0].param("scope"),
            Some("openid profile offline_access")
        );
        app.assert_nothing_refused();
    })
    .await;
}

#[tokio::test]
async fn authorization_details_go_out_and_come_back() {
    both(|style| async move {
        let app = App::start(style).await;
        app.emu.ciba_register_types(API, &["payment_initiation"]);
        app.emu.script_ciba(CibaScript::new(CibaOutcome::Approve { pending_polls: 1 }, Some(1)));
        let details = json!([{"type": "payment_initiation", "instructedAmount": {"currency": "EUR", "amount": "12.00"}}]);
        let (status, body, _) = app
            .ciba(&[
                ("login_hint", EMU_DEFAULT_SUB),
                ("binding_message", "Pay 12.00 EUR"),
                ("audience", API),
                ("authorization_details", &details.to_string()),
            ])
            .await;
        assert_eq!(status, 200, "{}: {body}", app.label());
        assert_eq!(body["authorization_details"], details);
        let bc = app.bc_requests();
        assert_eq!(
            keys(&bc[0]),
            ["audience", "authorization_details", "binding_message", "login_hint", "scope"]
        );
        let sent: Value = serde_json::from_str(bc[0].param("authorization_details").unwrap()).unwrap();
        assert_eq!(sent, details);
        app.assert_nothing_refused();
    })
    .await;
}

#[tokio::test]
async fn denial_is_403_access_denied_and_never_polled_again() {
    both(|style| async move {
        let app = App::scripted(
            style,
            CibaScript::new(CibaOutcome::Deny { pending_polls: 1 }, Some(1)),
        )
        .await;
        let (status, body, _) = app.ciba_default_user().await;
        assert_eq!(status, 403, "{}: {body}", app.label());
        assert_eq!(body["error"], "access_denied");
        assert!(body["error_description"].is_string());
        let record = app.only_record();
        let answers = answers(&record);
        assert_eq!(answers, ["authorization_pending", "access_denied"]);
        assert_paced(&app, &record, &[1, 1]);
        app.assert_nothing_refused();
    })
    .await;
}

#[tokio::test]
async fn expired_token_is_408() {
    both(|style| async move {
        let app = App::scripted(
            style,
            CibaScript::new(CibaOutcome::ExpireAfter { pending_polls: 1 }, Some(1)),
        )
        .await;
        let (status, body, _) = app.ciba_default_user().await;
        assert_eq!(status, 408, "{}: {body}", app.label());
        assert_eq!(body["error"], "expired_token");
        let answers: Vec<String> = app.only_record().polls.into_iter().map(|p| p.answer).collect();
        assert_eq!(answers, ["authorization_pending", "expired_token"]);
        app.assert_nothing_refused();
    })
    .await;
}

#[tokio::test]
async fn an_unanswered_request_is_given_up_at_expires_in() {
    both(|style| async move {
        let app = App::scripted(style, CibaScript::new(CibaOutcome::Ignore, Some(1)).expires_in(3)).await;
        let started = Instant::now();
        let (status, body, _) = app.ciba_default_user().await;
        let took = started.elapsed();
        assert_eq!(status, 408, "{}: {body}", app.label());
        assert_eq!(body["error"], "expired_token");
        assert!(took < Duration::from_secs(3) + Duration::from_secs(3), "{took:?}");
        let record = app.only_record();
        assert!(!record.polls.is_empty() && record.polls.len() <= 3, "{record:#?}");
        // Never polled after expiry.
        for p in &record.polls {
            assert!(p.at <= record.answered_at + Duration::from_secs(3), "{p:?}");
            assert_eq!(p.answer, "authorization_pending");
        }
        assert_paced(&app, &record, &vec![1; record.polls.len()]);
        app.assert_nothing_refused();
    })
    .await;
}

#[tokio::test]
async fn slow_down_adds_five_seconds_for_that_and_every_later_poll() {
    both(|style| async move {
        let app = App::scripted(
            style,
            CibaScript::new(
                CibaOutcome::SlowDownThenApprove {
                    slow_downs: 1,
                    pending_polls: 1,
                },
                Some(1),
            ),
        )
        .await;
        let (status, body, _) = app.ciba_default_user().await;
        assert_eq!(status, 200, "{}: {body}", app.label());
        let record = app.only_record();
        let answers = answers(&record);
        assert_eq!(answers, ["slow_down", "authorization_pending", "tokens"]);
        assert_paced(&app, &record, &[1, 6, 6]);
        app.assert_nothing_refused();
    })
    .await;
}

#[tokio::test]
async fn a_slow_down_storm_never_speeds_up_and_ends_at_expires_in() {
    both(|style| async move {
        let app = App::scripted(
            style,
            CibaScript::new(
                CibaOutcome::SlowDownThenApprove {
                    slow_downs: 100,
                    pending_polls: 0,
                },
                Some(1),
            )
            .expires_in(9),
        )
        .await;
        let (status, body, _) = app.ciba_default_user().await;
        assert_eq!(status, 408, "{}: {body}", app.label());
        assert_eq!(body["error"], "expired_token");
        let record = app.only_record();
        // Polls at ~1 s (slow_down: 6 s) and ~7 s (slow_down: 11 s); the next would be past 9 s.
        let answers = answers(&record);
        assert_eq!(answers, ["slow_down", "slow_down"]);
        assert_paced(&app, &record, &[1, 6]);
        app.assert_nothing_refused();
    })
    .await;
}

#[tokio::test]
async fn the_id_token_must_be_about_the_requested_user() {
    both(|style| async move {
        let app = App::scripted(
            style,
            CibaScript::new(
                CibaOutcome::ApproveAs {
                    sub: "auth0|bob".to_owned(),
                },
                Some(1),
            ),
        )
        .await;
        let (status, body, _) = app.ciba_default_user().await;
        assert_eq!(status, 502, "{}: {body}", app.label());
        assert_eq!(body["error"], "subject_mismatch");
        assert!(body.get("access_token").is_none());
        app.assert_nothing_refused();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Bad input: typed 4xx, never a 500, nothing sent when the app can tell

#[tokio::test]
async fn malformed_input_is_400_invalid_request_before_any_request() {
    both(|style| async move {
        let app = App::start(style).await;
        let ok = [("login_hint", EMU_DEFAULT_SUB), ("binding_message", "Approve?")];
        let mut cases: Vec<Vec<(&str, &str)>> = Vec::new();
        for bad in [
            "not json",
            "{\"type\":\"payment_initiation\"}",
            "[]",
            "[1,2]",
            "[{\"kind\":\"x\"}]",
            "[{\"type\":7}]",
            "[{\"type\":\"\"}]",
            "",
        ] {
            let mut c = ok.to_vec();
            c.push(("authorization_details", bad));
            cases.push(c);
        }
        cases.push(vec![("binding_message", "Approve?")]);
        cases.push(vec![("login_hint", EMU_DEFAULT_SUB)]);
        cases.push(vec![("login_hint", ""), ("binding_message", "x")]);
        cases.push(vec![("login_hint", EMU_DEFAULT_SUB), ("binding_message", "a\nb")]);
        cases.push(vec![
            ("login_hint", EMU_DEFAULT_SUB),
            ("login_hint", "auth0|bob"),
            ("binding_message", "x"),
        ]);
        cases.push(vec![
            ("login_hint", EMU_DEFAULT_SUB),
            ("binding_message", "x"),
            ("scope", " "),
        ]);
        for case in &cases {
            let (status, body, _) = app.ciba(case).await;
            assert_eq!(status, 400, "{}: {case:?}: {body}", app.label());
            assert_eq!(body["error"], "invalid_request", "{case:?}: {body}");
            assert!(body["error_description"].is_string(), "{body}");
        }
        // Not a form at all.
        let r = app
            .http
            .post(format!("{}/ciba", app.base))
            .header("content-type", "application/json")
            .body(r#"{"login_hint":"auth0|alice","binding_message":"x"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert!(app.bc_requests().is_empty(), "nothing may be sent for bad input");
        app.assert_nothing_refused();
    })
    .await;
}

#[tokio::test]
async fn provider_refusals_at_bc_authorize_pass_their_code_through() {
    both(|style| async move {
        let app = App::start(style).await;
        // Unknown user.
        let (status, body, _) = app
            .ciba(&[("login_hint", "auth0|nobody"), ("binding_message", "Approve?")])
            .await;
        assert_eq!(status, 400, "{}: {body}", app.label());
        assert_eq!(body["error"], "unknown_user_id");
        // Auth0 allows 64 characters of binding message.
        let long = "x".repeat(65);
        let (status, body, _) = app
            .ciba(&[("login_hint", EMU_DEFAULT_SUB), ("binding_message", &long)])
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_binding_message");
        // A type not registered on the API.
        let (status, body, _) = app
            .ciba(&[
                ("login_hint", EMU_DEFAULT_SUB),
                ("binding_message", "Approve?"),
                ("audience", API),
                ("authorization_details", r#"[{"type":"unregistered"}]"#),
            ])
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_authorization_details");
        let refused: Vec<String> = app.emu.refused().into_iter().filter_map(|r| r.error).collect();
        assert_eq!(
            refused,
            [
                "unknown_user_id",
                "invalid_binding_message",
                "invalid_authorization_details"
            ]
        );
        assert!(app.polls().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_tenant_without_ciba_is_a_configuration_error_not_a_500() {
    both(|style| async move {
        let app = App::start(style).await;
        app.emu.hide_ciba(true);
        let (status, body, _) = app.ciba_default_user().await;
        assert_eq!(status, 501, "{}: {body}", app.label());
        assert_eq!(body["error"], "configuration_error");
        assert!(app.bc_requests().is_empty());
        app.assert_nothing_refused();
    })
    .await;
}

#[tokio::test]
async fn client_secret_post_authenticates_both_endpoints_in_the_form() {
    both(|style| async move {
        let app = App::start_as(style, POST_CLIENT_ID, POST_CLIENT_SECRET, &[]).await;
        app.emu.script_ciba(CibaScript::new(
            CibaOutcome::Approve { pending_polls: 0 },
            Some(1),
        ));
        let (status, body, _) = app.ciba_default_user().await;
        assert_eq!(status, 200, "{}: {body}", app.label());
        let bc = app.bc_requests();
        assert_eq!(
            keys(&bc[0]),
            [
                "binding_message",
                "client_id",
                "client_secret",
                "login_hint",
                "scope"
            ]
        );
        assert_eq!(bc[0].auth_scheme, None);
        let polls = app.polls();
        assert_eq!(
            keys(&polls[0]),
            ["auth_req_id", "client_id", "client_secret", "grant_type"]
        );
        assert_eq!(polls[0].client_id.as_deref(), Some(POST_CLIENT_ID));
        app.assert_nothing_refused();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The library calls: start, poll once, wait

#[tokio::test]
async fn start_and_poll_once_separately() {
    both(|style| async move {
        let app = App::scripted(
            style,
            CibaScript::new(CibaOutcome::Approve { pending_polls: 1 }, Some(1)),
        )
        .await;
        let mut handle = app
            .client
            .start_backchannel_authentication(
                BackchannelAuthenticationOptions::new(EMU_DEFAULT_SUB, "Approve?")
                    .scope("openid offline_access")
                    .requested_expiry(120),
            )
            .await
            .unwrap();
        assert_eq!(handle.expires_in(), 120);
        assert_eq!(app.bc_requests()[0].param("requested_expiry"), Some("120"));
        assert_eq!(handle.interval(), Duration::from_secs(1));
        assert!(!format!("{handle:?}").contains(&app.only_record().auth_req_id));
        // Calling poll at once still waits for the interval.
        let first = app
            .client
            .poll_backchannel_authentication(&mut handle)
            .await
            .unwrap();
        assert!(matches!(first, BackchannelPoll::Pending), "{first:?}");
        assert!(handle.next_poll_in() > Duration::from_millis(500));
        let second = app
            .client
            .poll_backchannel_authentication(&mut handle)
            .await
            .unwrap();
        let BackchannelPoll::Done(done) = second else {
            panic!("{second:?}")
        };
        assert_eq!(done.sub(), EMU_DEFAULT_SUB);
        assert_eq!(done.token_type, "Bearer");
        assert!(done.refresh_token.is_some());
        assert_eq!(done.scope.as_deref(), Some("openid offline_access"));
        assert!(!format!("{done:?}").contains(done.access_token.expose()));
        assert!(handle.is_finished());
        // Single use: a finished handle is never sent again.
        let before = app.polls().len();
        let e = app
            .client
            .poll_backchannel_authentication(&mut handle)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Ciba(CibaError::Finished)), "{e:?}");
        assert_eq!(app.polls().len(), before);
        assert_paced(&app, &app.only_record(), &[1, 1]);
        app.assert_nothing_refused();

        // The provider refuses a reused auth_req_id: invalid_grant, typed (and the emulator
        // counts the reuse as a refusal: exactly that one).
        let mut reused = BackchannelAuthentication::resume(
            handle.auth_req_id().clone(),
            EMU_DEFAULT_SUB,
            Duration::from_secs(30),
            Some(Duration::from_secs(1)),
        );
        let e = app
            .client
            .poll_backchannel_authentication(&mut reused)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Ciba(CibaError::InvalidGrant)), "{e:?}");
        assert_eq!(e.code(), "invalid_grant");
        let refused: Vec<String> = app.emu.refused().into_iter().filter_map(|r| r.error).collect();
        assert_eq!(refused, ["invalid_grant"]);
    })
    .await;
}

#[tokio::test]
async fn wait_honours_an_interval_from_the_provider_and_returns_typed_errors() {
    both(|style| async move {
        let app = App::scripted(
            style,
            CibaScript::new(CibaOutcome::Deny { pending_polls: 0 }, Some(2)),
        )
        .await;
        let e = app
            .client
            .backchannel_authentication(BackchannelAuthenticationOptions::new(EMU_DEFAULT_SUB, "Approve?"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Ciba(CibaError::AccessDenied)), "{e:?}");
        assert_eq!(e.code(), "access_denied");
        assert_paced(&app, &app.only_record(), &[2]);
        // Options are checked before anything is sent.
        let e = app
            .client
            .backchannel_authentication(
                BackchannelAuthenticationOptions::new(EMU_DEFAULT_SUB, "x")
                    .authorization_details(json!({"type": "x"})),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_parameter");
        assert_eq!(app.bc_requests().len(), 1);
        app.assert_nothing_refused();
    })
    .await;
}

#[tokio::test]
async fn telemetry_off_sends_no_auth0_client_header() {
    both(|style| async move {
        let app = App::start_as(
            style,
            EMU_CLIENT_ID,
            EMU_CLIENT_SECRET,
            &[("AUTH0_TELEMETRY", "false")],
        )
        .await;
        app.emu.script_ciba(CibaScript::new(
            CibaOutcome::Approve { pending_polls: 0 },
            Some(1),
        ));
        let (status, body, _) = app.ciba_default_user().await;
        assert_eq!(status, 200, "{}: {body}", app.label());
        for r in app.bc_requests().iter().chain(app.polls().iter()) {
            assert_eq!(r.header("auth0-client"), None, "{r:?}");
        }
        app.assert_nothing_refused();
    })
    .await;
}

#[tokio::test]
async fn with_dpop_on_the_polls_carry_a_proof_and_the_result_is_usable() {
    both(|style| async move {
        let app = App::start_as(style, EMU_CLIENT_ID, EMU_CLIENT_SECRET, &[("AUTH0_DPOP", "true")]).await;
        app.emu.script_ciba(CibaScript::new(
            CibaOutcome::Approve { pending_polls: 1 },
            Some(1),
        ));
        let (status, body, _) = app.ciba_default_user().await;
        assert_eq!(status, 200, "{}: {body}", app.label());
        // /bc-authorize is not a token request: no proof there.
        assert_eq!(app.bc_requests()[0].header("dpop"), None);
        for p in app.polls() {
            assert!(
                p.header("dpop").is_some(),
                "every token request carries a proof: {p:?}"
            );
        }
        app.assert_nothing_refused();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The emulator itself is strict (so the tests above prove something)

/// A raw `/bc-authorize` with Basic client authentication.
async fn raw_bc_authorize(emu: &Auth0Emulator, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(emu.url("/bc-authorize"))
        .basic_auth(EMU_CLIENT_ID, Some(EMU_CLIENT_SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// A raw CIBA poll.
async fn raw_poll(emu: &Auth0Emulator, auth_req_id: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(emu.url("/oauth/token"))
        .basic_auth(EMU_CLIENT_ID, Some(EMU_CLIENT_SECRET))
        .form(&[("grant_type", CIBA_GRANT_TYPE), ("auth_req_id", auth_req_id)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn the_emulator_refuses_what_auth0_would() {
    let emu = Auth0Emulator::start().await;
    let hint = |iss: &str, sub: &str| json!({"format": "iss_sub", "iss": iss, "sub": sub}).to_string();
    let good = hint(&emu.issuer(), EMU_DEFAULT_SUB);
    let no_slash = hint(emu.issuer().trim_end_matches('/'), EMU_DEFAULT_SUB);
    let bad: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("scope", "profile"),
                ("login_hint", &good),
                ("binding_message", "m"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("scope", "openid"),
                ("login_hint", &no_slash),
                ("binding_message", "m"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("scope", "openid"),
                ("login_hint", EMU_DEFAULT_SUB),
                ("binding_message", "m"),
            ],
            "invalid_request",
        ),
        (
            vec![("scope", "openid"), ("login_hint", &good)],
            "invalid_binding_message",
        ),
        (
            vec![
                ("scope", "openid"),
                ("login_hint", &good),
                ("binding_message", "m"),
                ("id_token_hint", "x"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("scope", "openid"),
                ("login_hint", &good),
                ("binding_message", "m"),
                ("requested_expiry", "0"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("scope", "openid"),
                ("login_hint", &good),
                ("binding_message", "m"),
                ("authorization_details", r#"[{"type":"x"}]"#),
            ],
            "invalid_authorization_details",
        ),
    ];
    for (form, code) in &bad {
        let (status, body) = raw_bc_authorize(&emu, form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(*code)),
            "{form:?}: {body}"
        );
    }
    assert_eq!(emu.refused().len(), bad.len());
    emu.clear_requests();

    // Polling sooner than the interval is refused with slow_down (and the interval grows);
    // an ended request answers invalid_grant.
    emu.script_ciba(CibaScript::new(
        CibaOutcome::Approve { pending_polls: 0 },
        Some(1),
    ));
    let (status, started) = raw_bc_authorize(
        &emu,
        &[
            ("scope", "openid"),
            ("login_hint", &good),
            ("binding_message", "m"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["interval"], 1);
    assert_eq!(started["expires_in"], 300);
    let id = started["auth_req_id"].as_str().unwrap();
    let (status, body) = raw_poll(&emu, id).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("slow_down")),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(6100)).await;
    let (status, body) = raw_poll(&emu, id).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = raw_poll(&emu, id).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant")),
        "{body}"
    );
    let refused: Vec<String> = emu.refused().into_iter().filter_map(|r| r.error).collect();
    assert_eq!(refused, ["slow_down", "invalid_grant"]);
    let polls: Vec<String> = emu.ciba_requests()[0]
        .polls
        .iter()
        .map(|p| p.answer.clone())
        .collect();
    assert_eq!(polls, ["slow_down", "tokens", "invalid_grant"]);
}
