//! Smoke test of the test IdP fixture on its own (no library code): discovery,
//! login through the dev forms, code exchange, refresh token rotation, PAR with
//! rich authorization requests, and the public client.

use auth_tests::{
    API_AUDIENCE, CONF_BASIC_ID, CONF_BASIC_SECRET, CONF_POST_ID, CONF_POST_SECRET, DEFAULT_REDIRECT_URI,
    IdpOptions, PUBLIC_ID, TestIdp, jwt_header, jwt_payload, query,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use url::Url;

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// (code_verifier, code_challenge) for PKCE S256.
fn pkce() -> (String, String) {
    let verifier = random_token();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_url(idp: &TestIdp, params: &[(&str, &str)]) -> String {
    let mut url = Url::parse(idp.authorization_endpoint()).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.into()
}

fn aud_contains(claims: &Value, wanted: &str) -> bool {
    match &claims["aud"] {
        Value::String(aud) => aud == wanted,
        Value::Array(auds) => auds.iter().any(|a| a == wanted),
        _ => false,
    }
}

async fn post_form(req: reqwest::RequestBuilder, form: &[(&str, &str)]) -> (reqwest::StatusCode, Value) {
    let resp = req.form(form).send().await.unwrap();
    let status = resp.status();
    let body = resp.json::<Value>().await.unwrap();
    (status, body)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn discovery_lists_the_features_we_rely_on() {
    let idp = TestIdp::start().await;
    let d = idp.discovery();
    assert!(idp.issuer().starts_with("http://127.0.0.1:"));
    assert!(!idp.issuer().ends_with('/'));
    assert_eq!(d["issuer"], idp.issuer());
    for key in [
        "pushed_authorization_request_endpoint",
        "end_session_endpoint",
        "authorization_details_types_supported",
        "backchannel_logout_supported",
    ] {
        assert!(!d[key].is_null(), "discovery lacks {key}: {d:#}");
    }
    assert_eq!(d["backchannel_logout_supported"], true);
    assert!(
        d["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("RS256"))
    );
    assert_eq!(
        d["authorization_details_types_supported"],
        json!(["payment_initiation", "account_information"])
    );
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
}

#[tokio::test]
async fn confidential_basic_code_flow_with_audience_and_rotation() {
    let idp = TestIdp::start().await;
    let (verifier, challenge) = pkce();
    let state = random_token();
    let nonce = random_token();
    let scope = "openid profile email offline_access";
    let url = authorize_url(
        &idp,
        &[
            ("response_type", "code"),
            ("client_id", CONF_BASIC_ID),
            ("redirect_uri", DEFAULT_REDIRECT_URI),
            ("scope", scope),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("audience", API_AUDIENCE),
        ],
    );

    let callback = idp.login(&url, "alice").await;
    println!("callback: {callback}");
    assert!(callback.as_str().starts_with(DEFAULT_REDIRECT_URI));
    let cb = query(&callback);
    assert_eq!(cb.get("state"), Some(&state), "{callback}");
    assert_eq!(cb.get("iss").map(String::as_str), Some(idp.issuer()));
    let code = cb.get("code").expect("code in callback");

    let http = http();
    let (status, tokens) = post_form(
        http.post(idp.token_endpoint())
            .basic_auth(CONF_BASIC_ID, Some(CONF_BASIC_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", DEFAULT_REDIRECT_URI),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens:#}");
    println!("token response keys: {:?}", tokens.as_object().unwrap().keys());

    let id_token = tokens["id_token"].as_str().expect("id_token");
    assert_eq!(jwt_header(id_token)["alg"], "RS256");
    let id = jwt_payload(id_token);
    println!("id_token claims: {id}");
    assert_eq!(id["iss"], idp.issuer());
    assert_eq!(id["sub"], "alice");
    assert_eq!(id["aud"], CONF_BASIC_ID);
    assert_eq!(id["nonce"], nonce.as_str());
    assert_eq!(id["name"], "Test User alice");
    assert_eq!(id["email"], "alice@example.test");
    assert_eq!(id["email_verified"], true);
    assert!(id["sid"].is_string(), "sid in ID token: {id}");

    let access_token = tokens["access_token"].as_str().expect("access_token");
    let at = jwt_payload(access_token);
    println!("access_token claims: {at}");
    assert!(aud_contains(&at, API_AUDIENCE), "{at}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["expires_in"].as_u64().unwrap() > 3000);

    let rt1 = tokens["refresh_token"]
        .as_str()
        .expect("refresh_token without prompt=consent")
        .to_owned();

    let recorded = idp.requests().await;
    assert_eq!(recorded.authorize.len(), 1, "{recorded:#?}");
    let authz = &recorded.authorize[0];
    assert_eq!(authz["client_id"], CONF_BASIC_ID);
    assert_eq!(authz["scope"], scope);
    assert_eq!(authz["audience"], API_AUDIENCE);
    assert_eq!(authz["code_challenge"], challenge);
    assert!(!authz.contains_key("prompt"));
    assert_eq!(recorded.token.len(), 1, "{recorded:#?}");
    let call = &recorded.token[0];
    assert_eq!(call.auth_header.as_deref(), Some("Basic"));
    assert_eq!(call.client_id.as_deref(), Some(CONF_BASIC_ID));
    assert_eq!(call.status, 200);
    assert_eq!(call.params["grant_type"], "authorization_code");
    assert_eq!(call.params["code_verifier"], verifier);
    assert!(!call.params.contains_key("client_secret"));

    // Refresh: the refresh token rotates and the access token stays for the API.
    let (status, refreshed) = post_form(
        http.post(idp.token_endpoint())
            .basic_auth(CONF_BASIC_ID, Some(CONF_BASIC_SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
    )
    .await;
    assert_eq!(status, 200, "{refreshed:#}");
    let rt2 = refreshed["refresh_token"]
        .as_str()
        .expect("rotated refresh token");
    assert_ne!(rt2, rt1);
    assert!(aud_contains(
        &jwt_payload(refreshed["access_token"].as_str().unwrap()),
        API_AUDIENCE
    ));
    assert!(refreshed["id_token"].is_string());

    // The old refresh token is now rejected (and, being a replay, revokes the grant).
    let (status, replay) = post_form(
        http.post(idp.token_endpoint())
            .basic_auth(CONF_BASIC_ID, Some(CONF_BASIC_SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
    )
    .await;
    assert_eq!(status, 400, "{replay:#}");
    assert_eq!(replay["error"], "invalid_grant");

    idp.reset().await;
    let recorded = idp.requests().await;
    assert!(recorded.authorize.is_empty() && recorded.token.is_empty());
}

#[tokio::test]
async fn par_with_rich_authorization_request() {
    let idp = TestIdp::start().await;
    let (verifier, challenge) = pkce();
    let state = random_token();
    let details = r#"[{"type":"payment_initiation","amount":"10"}]"#;

    let http = http();
    let (status, par) = post_form(
        http.post(idp.par_endpoint()),
        &[
            ("client_id", CONF_POST_ID),
            ("client_secret", CONF_POST_SECRET),
            ("response_type", "code"),
            ("redirect_uri", DEFAULT_REDIRECT_URI),
            ("scope", "openid offline_access"),
            ("state", &state),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("authorization_details", details),
        ],
    )
    .await;
    assert_eq!(status, 201, "{par:#}");
    let request_uri = par["request_uri"].as_str().expect("request_uri");
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));

    let url = authorize_url(&idp, &[("client_id", CONF_POST_ID), ("request_uri", request_uri)]);
    let callback = idp.login(&url, "bob").await;
    println!("callback: {callback}");
    let cb = query(&callback);
    assert_eq!(cb.get("state"), Some(&state), "{callback}");
    let code = cb.get("code").expect("code");

    let (status, tokens) = post_form(
        http.post(idp.token_endpoint()),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CONF_POST_ID),
            ("client_secret", CONF_POST_SECRET),
            ("code", code),
            ("redirect_uri", DEFAULT_REDIRECT_URI),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens:#}");
    println!("authorization_details: {}", tokens["authorization_details"]);
    assert_eq!(
        tokens["authorization_details"],
        json!([{"type": "payment_initiation", "amount": "10"}])
    );
    assert!(tokens["refresh_token"].is_string(), "{tokens:#}");
    assert!(aud_contains(
        &jwt_payload(tokens["access_token"].as_str().unwrap()),
        API_AUDIENCE
    ));

    let recorded = idp.requests().await;
    assert_eq!(recorded.par.len(), 1, "{recorded:#?}");
    assert_eq!(recorded.par[0]["authorization_details"], details);
    assert_eq!(recorded.par[0]["client_secret"], CONF_POST_SECRET);
    assert_eq!(recorded.authorize.len(), 1);
    assert_eq!(recorded.authorize[0]["request_uri"], request_uri);
    let call = &recorded.token[0];
    assert_eq!(call.auth_header, None);
    assert_eq!(call.client_id.as_deref(), Some(CONF_POST_ID));
    assert_eq!(call.params["client_secret"], CONF_POST_SECRET);
}

#[tokio::test]
async fn public_client_with_pkce_and_sso() {
    let idp = TestIdp::start().await;
    let browser = TestIdp::browser();
    let http = http();

    let mut refresh_tokens = Vec::new();
    for round in 0..2 {
        let (verifier, challenge) = pkce();
        let state = random_token();
        let url = authorize_url(
            &idp,
            &[
                ("response_type", "code"),
                ("client_id", PUBLIC_ID),
                ("redirect_uri", DEFAULT_REDIRECT_URI),
                ("scope", "openid profile offline_access"),
                ("state", &state),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        );
        // The second round reuses the provider session: no forms are shown.
        let callback = idp.login_with(&browser, &url, "carol").await;
        println!("round {round} callback: {callback}");
        let cb = query(&callback);
        assert_eq!(cb.get("state"), Some(&state), "{callback}");
        let code = cb.get("code").expect("code");

        let (status, tokens) = post_form(
            http.post(idp.token_endpoint()),
            &[
                ("grant_type", "authorization_code"),
                ("client_id", PUBLIC_ID),
                ("code", code),
                ("redirect_uri", DEFAULT_REDIRECT_URI),
                ("code_verifier", &verifier),
            ],
        )
        .await;
        assert_eq!(status, 200, "{tokens:#}");
        let id = jwt_payload(tokens["id_token"].as_str().unwrap());
        assert_eq!(id["sub"], "carol");
        assert_eq!(id["name"], "Test User carol");
        // No audience: an opaque access token (for userinfo).
        assert_eq!(tokens["access_token"].as_str().unwrap().split('.').count(), 1);
        refresh_tokens.push(
            tokens["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        );
    }
    assert_ne!(refresh_tokens[0], refresh_tokens[1]);

    // Without offline_access there is no refresh token.
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &idp,
        &[
            ("response_type", "code"),
            ("client_id", PUBLIC_ID),
            ("redirect_uri", DEFAULT_REDIRECT_URI),
            ("scope", "openid profile"),
            ("state", "no-offline"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let callback = idp.login_with(&browser, &url, "carol").await;
    let code = query(&callback).remove("code").expect("code");
    let (status, tokens) = post_form(
        http.post(idp.token_endpoint()),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", PUBLIC_ID),
            ("code", &code),
            ("redirect_uri", DEFAULT_REDIRECT_URI),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens:#}");
    assert!(tokens["refresh_token"].is_null(), "{tokens:#}");

    let recorded = idp.requests().await;
    assert_eq!(recorded.authorize.len(), 3);
    assert_eq!(recorded.token.len(), 3);
    for call in &recorded.token {
        assert_eq!(call.auth_header, None);
        assert_eq!(call.client_id.as_deref(), Some(PUBLIC_ID));
    }

    // Without PKCE the request is refused.
    let url = authorize_url(
        &idp,
        &[
            ("response_type", "code"),
            ("client_id", PUBLIC_ID),
            ("redirect_uri", DEFAULT_REDIRECT_URI),
            ("scope", "openid"),
            ("state", "s"),
        ],
    );
    let callback = idp.login(&url, "carol").await;
    assert_eq!(
        query(&callback).get("error").map(String::as_str),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn start_options_are_applied() {
    let redirect_uri = "http://127.0.0.1:4000/extra/callback";
    let idp = TestIdp::start_with(IdpOptions {
        redirect_uris: vec![redirect_uri.to_owned()],
        post_logout_redirect_uris: vec!["http://127.0.0.1:4000/".to_owned()],
        backchannel_logout_uri: Some("http://127.0.0.1:4000/backchannel-logout".to_owned()),
        access_token_ttl: Some(120),
        port: None,
    })
    .await;

    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &idp,
        &[
            ("response_type", "code"),
            ("client_id", CONF_BASIC_ID),
            ("redirect_uri", redirect_uri),
            ("scope", "openid"),
            ("state", "opts"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let callback = idp.login(&url, "dave").await;
    assert!(callback.as_str().starts_with(redirect_uri), "{callback}");
    let code = query(&callback).remove("code").expect("code");

    let (status, tokens) = post_form(
        http()
            .post(idp.token_endpoint())
            .basic_auth(CONF_BASIC_ID, Some(CONF_BASIC_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens:#}");
    assert_eq!(tokens["expires_in"], 120);
    assert!(jwt_payload(tokens["id_token"].as_str().unwrap())["sid"].is_string());

    // A wrong secret is recorded, without an authenticated client.
    let (status, body) = post_form(
        http()
            .post(idp.token_endpoint())
            .basic_auth(CONF_BASIC_ID, Some("wrong")),
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    assert_eq!(status, 401, "{body:#}");
    let recorded = idp.requests().await;
    let last = recorded.token.last().unwrap();
    assert_eq!(last.client_id, None);
    assert_eq!(last.error.as_deref(), Some("invalid_client"));
}
