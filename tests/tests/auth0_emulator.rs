//! Tests of the Auth0 emulator fixture on its own, with raw HTTP calls (no library code):
//! discovery, login, PAR, linking, MRRT, Connected Accounts, Token Vault, logout, and every
//! strict refusal the end-to-end suites rely on.

use std::collections::BTreeMap;

use auth_tests::auth0::{
    Auth0Emulator, EMU_CLIENT_ID, EMU_CLIENT_SECRET, EMU_DEFAULT_SUB, EMU_PUBLIC_ID, EMU_REDIRECT_URI,
    EmulatedClient, EmulatorOptions, FEDERATED_TOKEN_TYPE, MY_ACCOUNT_SCOPES, REFRESH_TOKEN_TYPE,
    TOKEN_VAULT_GRANT_TYPE,
};
use auth_tests::{jwt_payload, query};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore as _;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use url::Url;

/// Query or form pairs.
type Pairs = Vec<(String, String)>;

const ALL_MY_ACCOUNT: &str =
    "create:me:connected_accounts read:me:connected_accounts delete:me:connected_accounts";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

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

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location (status {})", resp.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Default login parameters (PKCE challenge from `challenge`).
fn login_params(challenge: &str, scope: &str) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", EMU_CLIENT_ID),
        ("redirect_uri", EMU_REDIRECT_URI),
        ("scope", scope),
        ("state", "state-123"),
        ("nonce", "nonce-456"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn set(params: &mut Vec<(String, String)>, name: &str, value: Option<&str>) {
    params.retain(|(k, _)| k != name);
    if let Some(value) = value {
        params.push((name.to_owned(), value.to_owned()));
    }
}

async fn get_authorize(emu: &Auth0Emulator, params: &[(String, String)]) -> reqwest::Response {
    let mut url = Url::parse(&emu.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    http().get(url).send().await.unwrap()
}

/// `/authorize` that must succeed; returns the callback query.
async fn authorize_ok(emu: &Auth0Emulator, params: &[(String, String)]) -> BTreeMap<String, String> {
    let resp = get_authorize(emu, params).await;
    let status = resp.status();
    assert_eq!(status, StatusCode::FOUND, "authorize: {:?}", resp.text().await);
    let loc = location(&resp);
    assert!(loc.starts_with(EMU_REDIRECT_URI), "{loc}");
    query(&loc)
}

/// `/authorize` that must be refused with 400; returns the error body.
async fn authorize_refused(emu: &Auth0Emulator, params: &[(String, String)]) -> Value {
    let resp = get_authorize(emu, params).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    body
}

async fn token_basic(emu: &Auth0Emulator, form: &[(&str, &str)]) -> (StatusCode, Value) {
    token_with(emu, Some(basic(EMU_CLIENT_ID, EMU_CLIENT_SECRET)), form).await
}

async fn token_with(emu: &Auth0Emulator, auth: Option<String>, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut req = http().post(emu.url("/oauth/token")).form(form);
    if let Some(auth) = auth {
        req = req.header(AUTHORIZATION, auth);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

/// Logs the current user in with `scope`; returns the token response.
async fn login(emu: &Auth0Emulator, scope: &str) -> Value {
    let (verifier, challenge) = pkce();
    let cb = authorize_ok(emu, &login_params(&challenge, scope)).await;
    let (status, body) = token_basic(
        emu,
        &[
            ("grant_type", "authorization_code"),
            ("code", &cb["code"]),
            ("redirect_uri", EMU_REDIRECT_URI),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// An access token for the My Account API through MRRT.
async fn my_account_token(emu: &Auth0Emulator, refresh_token: &str, scope: &str) -> String {
    let (status, body) = token_basic(
        emu,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("audience", &emu.my_account_audience()),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

fn my_account(emu: &Auth0Emulator, path: &str) -> String {
    emu.url(&format!("/me/v1/connected-accounts{path}"))
}

async fn post_json(url: &str, token: &str, body: &Value) -> (StatusCode, Value, String) {
    let resp = http()
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), ct)
}

async fn get_json(url: &str, token: &str) -> (StatusCode, Value) {
    let resp = http().get(url).bearer_auth(token).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Connects `connection` for the logged-in user: connect → connect_uri → complete.
async fn connect_account(emu: &Auth0Emulator, token: &str, connection: &str) -> Value {
    let (verifier, challenge) = pkce();
    let (status, started, _) = post_json(
        &my_account(emu, "/connect"),
        token,
        &json!({
            "connection": connection,
            "redirect_uri": EMU_REDIRECT_URI,
            "state": "connect-state",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let mut connect = Url::parse(started["connect_uri"].as_str().unwrap()).unwrap();
    connect
        .query_pairs_mut()
        .append_pair("ticket", started["connect_params"]["ticket"].as_str().unwrap());
    let resp = http().get(connect).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let cb = query(location(&resp));
    let (status, account, _) = post_json(
        &my_account(emu, "/complete"),
        token,
        &json!({
            "auth_session": started["auth_session"],
            "connect_code": cb["connect_code"],
            "redirect_uri": EMU_REDIRECT_URI,
            "code_verifier": verifier,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    account
}

fn last_reason(emu: &Auth0Emulator) -> String {
    emu.refused()
        .last()
        .and_then(|r| r.reason.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn discovery_and_jwks_look_like_auth0() {
    let emu = Auth0Emulator::start().await;
    let issuer = emu.issuer();
    assert_eq!(issuer, format!("{}/", emu.domain()));
    assert!(issuer.starts_with("http://127.0.0.1:"));

    let d: Value = http()
        .get(emu.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], issuer);
    assert_eq!(d["authorization_endpoint"], format!("{issuer}authorize"));
    assert_eq!(d["token_endpoint"], format!("{issuer}oauth/token"));
    assert_eq!(d["jwks_uri"], format!("{issuer}.well-known/jwks.json"));
    assert_eq!(
        d["pushed_authorization_request_endpoint"],
        format!("{issuer}oauth/par")
    );
    assert_eq!(d["end_session_endpoint"], format!("{issuer}oidc/logout"));
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));
    assert_eq!(d["response_types_supported"], json!(["code"]));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));

    let jwks: Value = http()
        .get(d["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["alg"], "RS256");
    assert!(keys[0]["kid"].is_string());
    assert!(keys[0].get("d").is_none(), "no private parts in the JWKS");
    assert!(emu.refused().is_empty());
}

#[tokio::test]
async fn login_round_trip_with_basic_auth_verifies_against_the_jwks() {
    let emu = Auth0Emulator::start().await;
    let (verifier, challenge) = pkce();
    let mut params = login_params(&challenge, "openid profile email offline_access");
    set(&mut params, "audience", Some("https://api.example.test/"));
    let cb = authorize_ok(&emu, &params).await;
    assert_eq!(cb["state"], "state-123");
    assert!(!cb.contains_key("iss"), "Auth0 sends no RFC 9207 iss: {cb:?}");

    let resp = http()
        .post(emu.url("/oauth/token"))
        .header(AUTHORIZATION, basic(EMU_CLIENT_ID, EMU_CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &cb["code"]),
            ("redirect_uri", EMU_REDIRECT_URI),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "openid profile email offline_access");
    assert!(body["refresh_token"].is_string());

    // The ID token verifies with the published JWKS.
    let jwks: jsonwebtoken::jwk::JwkSet = http()
        .get(emu.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = body["id_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("kid in JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[EMU_CLIENT_ID]);
    validation.set_issuer(&[emu.issuer()]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["iss"], emu.issuer());
    assert_eq!(claims["sub"], EMU_DEFAULT_SUB);
    assert_eq!(claims["nonce"], "nonce-456");
    assert_eq!(claims["name"], "Alice");
    assert_eq!(claims["email"], "alice@example.test");
    assert!(claims["sid"].is_string());
    assert!(claims["iat"].is_u64() && claims["exp"].is_u64());

    let at = jwt_payload(body["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], "https://api.example.test/");
    assert_eq!(at["azp"], EMU_CLIENT_ID);
    assert_eq!(at["scope"], "openid profile email offline_access");

    assert!(emu.refused().is_empty(), "{:#?}", emu.refused());
    assert_eq!(emu.count("/oauth/token", Some("authorization_code")), 1);
    let rec = emu
        .requests()
        .into_iter()
        .find(|r| r.path == "/oauth/token")
        .unwrap();
    assert_eq!(rec.auth_scheme.as_deref(), Some("Basic"));
    assert_eq!(rec.client_id.as_deref(), Some(EMU_CLIENT_ID));
    assert_eq!(rec.status, 200);
}

#[tokio::test]
async fn set_user_and_scope_filtering_shape_the_id_token() {
    let emu = Auth0Emulator::start().await;
    emu.set_user(
        "google-oauth2|bob",
        json!({"name": "Bob", "email": "bob@example.test", "roles": ["admin"]}),
    );
    let body = login(&emu, "openid").await;
    let claims = jwt_payload(body["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "google-oauth2|bob");
    assert!(claims.get("name").is_none(), "no profile scope: {claims}");
    assert!(claims.get("email").is_none(), "no email scope: {claims}");
    assert_eq!(claims["roles"], json!(["admin"]));
    assert!(body.get("refresh_token").is_none(), "no offline_access");
    assert_eq!(
        jwt_payload(body["access_token"].as_str().unwrap())["aud"],
        format!("{}userinfo", emu.issuer())
    );
}

#[tokio::test]
async fn client_secret_post_and_public_clients() {
    let emu = Auth0Emulator::start_with(EmulatorOptions {
        clients: vec![
            EmulatedClient {
                client_id: "post-client".into(),
                client_secret: Some("post-secret-0123456789".into()),
                auth_method: "client_secret_post",
            },
            EmulatedClient::default_public(),
        ],
        ..EmulatorOptions::default()
    })
    .await;

    for (client, secret) in [
        ("post-client", Some("post-secret-0123456789")),
        (EMU_PUBLIC_ID, None),
    ] {
        let (verifier, challenge) = pkce();
        let mut params = login_params(&challenge, "openid offline_access");
        set(&mut params, "client_id", Some(client));
        let cb = authorize_ok(&emu, &params).await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", cb["code"].as_str()),
            ("redirect_uri", EMU_REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
            ("client_id", client),
        ];
        if let Some(secret) = secret {
            form.push(("client_secret", secret));
        }
        let (status, body) = token_with(&emu, None, &form).await;
        assert_eq!(status, StatusCode::OK, "{client}: {body}");
        assert_eq!(jwt_payload(body["id_token"].as_str().unwrap())["aud"], client);
    }
    assert!(emu.refused().is_empty(), "{:#?}", emu.refused());
}

#[tokio::test]
async fn client_authentication_is_strict() {
    let emu = Auth0Emulator::start().await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", "x")];

    // Wrong secret.
    let (status, body) = token_with(&emu, Some(basic(EMU_CLIENT_ID, "wrong")), &form).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");

    // Basic and a form secret at once.
    let mut both = form.to_vec();
    both.push(("client_secret", EMU_CLIENT_SECRET));
    let (status, body) = token_basic(&emu, &both).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    assert!(body["error_description"].as_str().unwrap().contains("both"));

    // client_secret_post for a client_secret_basic client.
    let mut post = form.to_vec();
    post.extend([("client_id", EMU_CLIENT_ID), ("client_secret", EMU_CLIENT_SECRET)]);
    let (status, body) = token_with(&emu, None, &post).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("client_secret_basic")
    );

    // No credentials at all.
    let (status, body) = token_with(&emu, None, &form).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // Public client sending a secret.
    let mut public = form.to_vec();
    public.extend([("client_id", EMU_PUBLIC_ID), ("client_secret", "s")]);
    let (status, _) = token_with(&emu, None, &public).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // JSON instead of a form.
    let resp = http()
        .post(emu.url("/oauth/token"))
        .header(AUTHORIZATION, basic(EMU_CLIENT_ID, EMU_CLIENT_SECRET))
        .json(&json!({"grant_type": "refresh_token", "refresh_token": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(last_reason(&emu).contains("application/x-www-form-urlencoded"));

    // Unknown grant.
    let (status, body) = token_basic(&emu, &[("grant_type", "password")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");

    // Repeated parameter.
    let (status, body) = token_basic(
        &emu,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "a"),
            ("refresh_token", "b"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error_description"].as_str().unwrap().contains("repeated"));

    assert_eq!(emu.refused().len(), 8);
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded() {
    let secret = "s3cr:t+with/odd%chars";
    let emu = Auth0Emulator::start_with(EmulatorOptions {
        clients: vec![EmulatedClient {
            client_id: "odd client".into(),
            client_secret: Some(secret.into()),
            auth_method: "client_secret_basic",
        }],
        ..EmulatorOptions::default()
    })
    .await;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let form = [("grant_type", "refresh_token"), ("refresh_token", "unknown")];
    // Properly encoded: authenticates, then the unknown refresh token is rejected.
    let (status, body) = token_with(&emu, Some(basic(&enc("odd client"), &enc(secret))), &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_grant"))
    );
    // Raw (not urlencoded): the secret does not match.
    let (status, body) = token_with(&emu, Some(basic("odd client", secret)), &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
}

#[tokio::test]
async fn code_exchange_refusals() {
    let emu = Auth0Emulator::start().await;
    let (verifier, challenge) = pkce();
    let params = login_params(&challenge, "openid");

    // Missing code_verifier.
    let cb = authorize_ok(&emu, &params).await;
    let (status, body) = token_basic(
        &emu,
        &[
            ("grant_type", "authorization_code"),
            ("code", &cb["code"]),
            ("redirect_uri", EMU_REDIRECT_URI),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("code_verifier")
    );

    // Wrong verifier.
    let cb = authorize_ok(&emu, &params).await;
    let (other_verifier, _) = pkce();
    let (status, body) = token_basic(
        &emu,
        &[
            ("grant_type", "authorization_code"),
            ("code", &cb["code"]),
            ("redirect_uri", EMU_REDIRECT_URI),
            ("code_verifier", &other_verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("code_challenge")
    );

    // redirect_uri mismatch (the URI is registered, but not the one used at authorize).
    let cb = authorize_ok(&emu, &params).await;
    let (status, body) = token_basic(
        &emu,
        &[
            ("grant_type", "authorization_code"),
            ("code", &cb["code"]),
            ("redirect_uri", "http://127.0.0.1:3000/auth/callback"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("redirect_uri")
    );

    // Reused code.
    let cb = authorize_ok(&emu, &params).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", cb["code"].as_str()),
        ("redirect_uri", EMU_REDIRECT_URI),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, _) = token_basic(&emu, &form).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = token_basic(&emu, &form).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );

    // An extra parameter on the code exchange.
    let cb = authorize_ok(&emu, &params).await;
    let (status, body) = token_basic(
        &emu,
        &[
            ("grant_type", "authorization_code"),
            ("code", &cb["code"]),
            ("redirect_uri", EMU_REDIRECT_URI),
            ("code_verifier", &verifier),
            ("audience", "https://api.example.test/"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("audience"));

    assert_eq!(emu.refused().len(), 5);
    assert_eq!(emu.count("/oauth/token", Some("authorization_code")), 6);
}

#[tokio::test]
async fn authorize_refusals() {
    let emu = Auth0Emulator::start().await;
    let (_, challenge) = pkce();
    let base = login_params(&challenge, "openid profile");
    let hint = login(&emu, "openid").await["id_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let link = |extra: &[(&str, Option<&str>)]| {
        let mut p = base.clone();
        set(&mut p, "scope", Some("openid link_account"));
        set(&mut p, "requested_connection", Some("google-oauth2"));
        set(&mut p, "id_token_hint", Some(&hint));
        for (k, v) in extra {
            set(&mut p, k, *v);
        }
        p
    };
    let login_with = |extra: &[(&str, Option<&str>)]| {
        let mut p = base.clone();
        for (k, v) in extra {
            set(&mut p, k, *v);
        }
        p
    };
    let mut repeated = base.clone();
    repeated.push(("state".into(), "again".into()));

    let cases: Vec<(&str, Pairs, &str)> = vec![
        (
            "requested_connection_scope=None",
            link(&[("requested_connection_scope", Some("None"))]),
            "placeholder",
        ),
        (
            "link without id_token_hint",
            link(&[("id_token_hint", None)]),
            "id_token_hint",
        ),
        (
            "link without requested_connection",
            link(&[("requested_connection", None)]),
            "requested_connection",
        ),
        (
            "link with extra scope",
            link(&[("scope", Some("openid profile link_account"))]),
            "exactly",
        ),
        (
            "link with forged hint",
            link(&[("id_token_hint", Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"))]),
            "id_token_hint",
        ),
        (
            "unlink with requested_connection_scope",
            link(&[
                ("scope", Some("openid unlink_account")),
                ("requested_connection_scope", Some("x")),
            ]),
            "requested_connection_scope",
        ),
        (
            "requested_connection on a login",
            login_with(&[("requested_connection", Some("github"))]),
            "requested_connection",
        ),
        ("repeated state", repeated, "repeated"),
        ("missing nonce", login_with(&[("nonce", None)]), "nonce"),
        ("empty audience", login_with(&[("audience", Some(""))]), "empty"),
        (
            "unregistered redirect_uri",
            login_with(&[("redirect_uri", Some("http://evil.test/cb"))]),
            "redirect_uri",
        ),
        (
            "plain PKCE",
            login_with(&[("code_challenge_method", Some("plain"))]),
            "S256",
        ),
        (
            "short challenge",
            login_with(&[("code_challenge", Some("abc"))]),
            "43",
        ),
        (
            "no openid",
            login_with(&[("scope", Some("profile email"))]),
            "openid",
        ),
        (
            "double space in scope",
            login_with(&[("scope", Some("openid  email"))]),
            "malformed",
        ),
        (
            "unknown client",
            login_with(&[("client_id", Some("nope"))]),
            "client_id",
        ),
        (
            "token response_type",
            login_with(&[("response_type", Some("token"))]),
            "response_type",
        ),
        (
            "secret in the URL",
            login_with(&[("client_secret", Some("x"))]),
            "client_secret",
        ),
        (
            "invitation without organization",
            login_with(&[("invitation", Some("inv_1"))]),
            "organization",
        ),
    ];
    let n = cases.len();
    for (name, params, needle) in cases {
        let body = authorize_refused(&emu, &params).await;
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(needle), "{name}: {description}");
    }
    assert_eq!(emu.refused().len(), n);
    assert!(emu.refused().iter().all(|r| r.path == "/authorize"));
}

#[tokio::test]
async fn link_and_unlink_accounts() {
    let emu = Auth0Emulator::start().await;
    let tokens = login(&emu, "openid profile email offline_access").await;
    let hint = tokens["id_token"].as_str().unwrap();
    let sid = jwt_payload(hint)["sid"].clone();

    // Someone else logs in next: the link applies to the hint's user anyway.
    emu.set_user("auth0|mallory", json!({"name": "Mallory"}));

    let (verifier, challenge) = pkce();
    let mut params = login_params(&challenge, "openid link_account offline_access");
    set(&mut params, "requested_connection", Some("google-oauth2"));
    set(
        &mut params,
        "requested_connection_scope",
        Some("https://www.googleapis.com/auth/calendar.readonly"),
    );
    set(&mut params, "id_token_hint", Some(hint));
    let cb = authorize_ok(&emu, &params).await;
    assert!(
        emu.linked_identities(EMU_DEFAULT_SUB).is_empty(),
        "linked only on exchange"
    );
    let (status, body) = token_basic(
        &emu,
        &[
            ("grant_type", "authorization_code"),
            ("code", &cb["code"]),
            ("redirect_uri", EMU_REDIRECT_URI),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = jwt_payload(body["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], EMU_DEFAULT_SUB);
    assert_eq!(claims["sid"], sid);
    assert!(body["refresh_token"].is_string());
    assert_eq!(
        emu.linked_identities(EMU_DEFAULT_SUB),
        vec![(
            "google-oauth2".to_owned(),
            "https://www.googleapis.com/auth/calendar.readonly".to_owned()
        )]
    );

    // Unlink.
    let (verifier, challenge) = pkce();
    let mut params = login_params(&challenge, "openid unlink_account");
    set(&mut params, "requested_connection", Some("google-oauth2"));
    set(&mut params, "id_token_hint", Some(hint));
    let cb = authorize_ok(&emu, &params).await;
    let (status, _) = token_basic(
        &emu,
        &[
            ("grant_type", "authorization_code"),
            ("code", &cb["code"]),
            ("redirect_uri", EMU_REDIRECT_URI),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(emu.linked_identities(EMU_DEFAULT_SUB).is_empty());

    // Unlinking again: error redirect.
    let (_, challenge) = pkce();
    let mut params = login_params(&challenge, "openid unlink_account");
    set(&mut params, "requested_connection", Some("google-oauth2"));
    set(&mut params, "id_token_hint", Some(hint));
    let cb = authorize_ok(&emu, &params).await;
    assert_eq!(cb["error"], "invalid_request");
    assert_eq!(cb["state"], "state-123");

    // A hint issued to another client is refused.
    emu.set_user(EMU_DEFAULT_SUB, json!({"name": "Alice"}));
    let (verifier, challenge) = pkce();
    let mut p = login_params(&challenge, "openid");
    set(&mut p, "client_id", Some(EMU_PUBLIC_ID));
    let cb = authorize_ok(&emu, &p).await;
    let (_, public) = token_with(
        &emu,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &cb["code"]),
            ("redirect_uri", EMU_REDIRECT_URI),
            ("code_verifier", &verifier),
            ("client_id", EMU_PUBLIC_ID),
        ],
    )
    .await;
    let mut params = login_params(&challenge, "openid link_account");
    set(&mut params, "requested_connection", Some("github"));
    set(&mut params, "id_token_hint", public["id_token"].as_str());
    let body = authorize_refused(&emu, &params).await;
    assert!(body["error_description"].as_str().unwrap().contains("audience"));
    assert_eq!(emu.refused().len(), 1, "{:#?}", emu.refused());
}

#[tokio::test]
async fn pushed_authorization_requests() {
    let emu = Auth0Emulator::start().await;
    let (verifier, challenge) = pkce();
    let params = login_params(&challenge, "openid offline_access");
    let details = json!([{"type": "payment_initiation", "amount": "10"}]).to_string();
    let mut pushed = params.clone();
    pushed.push(("authorization_details".into(), details));
    let resp = http()
        .post(emu.url("/oauth/par"))
        .header(AUTHORIZATION, basic(EMU_CLIENT_ID, EMU_CLIENT_SECRET))
        .form(&pushed)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let par: Value = resp.json().await.unwrap();
    assert_eq!(par["expires_in"], 60);
    let request_uri = par["request_uri"].as_str().unwrap().to_owned();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));

    // Extra parameters next to request_uri are refused.
    let with_extra = vec![
        ("client_id".to_owned(), EMU_CLIENT_ID.to_owned()),
        ("request_uri".to_owned(), request_uri.clone()),
        ("state".to_owned(), "x".to_owned()),
    ];
    authorize_refused(&emu, &with_extra).await;

    let only = vec![
        ("client_id".to_owned(), EMU_CLIENT_ID.to_owned()),
        ("request_uri".to_owned(), request_uri.clone()),
    ];
    let cb = authorize_ok(&emu, &only).await;
    assert_eq!(cb["state"], "state-123");
    let (status, body) = token_basic(
        &emu,
        &[
            ("grant_type", "authorization_code"),
            ("code", &cb["code"]),
            ("redirect_uri", EMU_REDIRECT_URI),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["authorization_details"][0]["type"], "payment_initiation");

    // Single use.
    authorize_refused(&emu, &only).await;

    // PAR without client authentication.
    let resp = http()
        .post(emu.url("/oauth/par"))
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(emu.refused().len(), 3);
}

#[tokio::test]
async fn form_post_response_mode_renders_an_auto_submitting_form() {
    let emu = Auth0Emulator::start().await;
    let (_, challenge) = pkce();
    let mut params = login_params(&challenge, "openid");
    set(&mut params, "response_mode", Some("form_post"));
    let resp = get_authorize(&emu, &params).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(html.contains(&format!("action=\"{EMU_REDIRECT_URI}\"")), "{html}");
    assert!(html.contains("name=\"code\""));
    assert!(html.contains("value=\"state-123\""));
}

#[tokio::test]
async fn mrrt_refresh_for_the_my_account_api() {
    let emu = Auth0Emulator::start().await;
    let tokens = login(&emu, "openid profile email offline_access").await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let me = emu.my_account_audience();
    assert_eq!(me, format!("{}me/", emu.issuer()));

    let (status, body) = token_basic(
        &emu,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("audience", &me),
            ("scope", "create:me:connected_accounts"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "create:me:connected_accounts");
    assert!(body.get("refresh_token").is_none(), "no rotation by default");
    assert!(body.get("id_token").is_none(), "no openid in the MRRT scope");
    let at = jwt_payload(body["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], me);
    assert_eq!(at["scope"], "create:me:connected_accounts");
    assert_eq!(at["sub"], EMU_DEFAULT_SUB);

    // Any other API of the tenant.
    let (status, body) = token_basic(
        &emu,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("audience", "https://api.example.test/"),
            ("scope", "read:data"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        jwt_payload(body["access_token"].as_str().unwrap())["aud"],
        "https://api.example.test/"
    );

    // Plain refresh: new ID token (no nonce), same scope.
    let (status, body) = token_basic(&emu, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["scope"], "openid profile email offline_access");
    let id = jwt_payload(body["id_token"].as_str().unwrap());
    assert!(id.get("nonce").is_none());
    assert_eq!(
        id["sid"],
        jwt_payload(tokens["id_token"].as_str().unwrap())["sid"]
    );

    // A scope the MRRT policy does not allow for the My Account API.
    let (status, body) = token_basic(
        &emu,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("audience", &me),
            ("scope", "read:me:authentication_methods"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope");

    // Widening the original grant.
    let (status, body) = token_basic(
        &emu,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("scope", "openid admin"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );

    // Unknown refresh token.
    let (status, body) = token_basic(
        &emu,
        &[("grant_type", "refresh_token"), ("refresh_token", "v1.nope")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_grant"))
    );
    assert_eq!(emu.count("/oauth/token", Some("refresh_token")), 6);
}

#[tokio::test]
async fn refresh_token_rotation_and_revocation() {
    let emu = Auth0Emulator::start_with(EmulatorOptions {
        rotate_refresh_tokens: true,
        ..EmulatorOptions::default()
    })
    .await;
    let tokens = login(&emu, "openid offline_access").await;
    let rt1 = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = token_basic(&emu, &[("grant_type", "refresh_token"), ("refresh_token", rt1)]).await;
    assert_eq!(status, StatusCode::OK);
    let rt2 = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    let (status, body) = token_basic(&emu, &[("grant_type", "refresh_token"), ("refresh_token", rt1)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_grant"))
    );

    emu.revoke_refresh_tokens(EMU_DEFAULT_SUB);
    let (status, body) = token_basic(&emu, &[("grant_type", "refresh_token"), ("refresh_token", &rt2)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_grant"))
    );
    assert!(last_reason(&emu).contains("revoke_refresh_tokens"));
}

#[tokio::test]
async fn connected_accounts_round_trip() {
    let emu = Auth0Emulator::start().await;
    let tokens = login(&emu, "openid profile email offline_access").await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let token = my_account_token(&emu, rt, ALL_MY_ACCOUNT).await;

    // Start with scopes and authorization_params.
    let (verifier, challenge) = pkce();
    let (status, started, _) = post_json(
        &my_account(&emu, "/connect"),
        &token,
        &json!({
            "connection": "google-oauth2",
            "redirect_uri": EMU_REDIRECT_URI,
            "state": "xyz",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "scopes": ["openid", "https://www.googleapis.com/auth/calendar.readonly"],
            "authorization_params": {"login_hint": "jdoe@example.org"},
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert_eq!(started["connect_uri"], format!("{}connect", emu.issuer()));
    assert_eq!(started["expires_in"], 300);
    let ticket = started["connect_params"]["ticket"].as_str().unwrap();

    let resp = http()
        .get(format!("{}connect?ticket={ticket}", emu.issuer()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = location(&resp);
    assert!(loc.starts_with(EMU_REDIRECT_URI));
    let cb = query(&loc);
    assert_eq!(cb["state"], "xyz");
    assert!(!cb.contains_key("code"));

    let (status, account, _) = post_json(
        &my_account(&emu, "/complete"),
        &token,
        &json!({
            "auth_session": started["auth_session"],
            "connect_code": cb["connect_code"],
            "redirect_uri": EMU_REDIRECT_URI,
            "code_verifier": verifier,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    assert!(account["id"].as_str().unwrap().starts_with("cac_"));
    assert_eq!(account["connection"], "google-oauth2");
    assert_eq!(account["access_type"], "offline");
    assert_eq!(
        account["scopes"],
        json!(["openid", "https://www.googleapis.com/auth/calendar.readonly"])
    );
    assert!(account["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(account["expires_at"].is_string());
    assert_eq!(emu.connected_accounts(EMU_DEFAULT_SUB), vec![account.clone()]);

    // Completing twice fails (single use).
    let (status, problem, ct) = post_json(
        &my_account(&emu, "/complete"),
        &token,
        &json!({
            "auth_session": started["auth_session"],
            "connect_code": cb["connect_code"],
            "redirect_uri": EMU_REDIRECT_URI,
            "code_verifier": verifier,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(ct, "application/problem+json");
    assert_eq!(problem["status"], 400);

    // Two more accounts, then page through with take=2.
    let second = connect_account(&emu, &token, "github").await;
    let third = connect_account(&emu, &token, "google-oauth2").await;
    let (status, page1) = get_json(&my_account(&emu, "/accounts?take=2"), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page1["accounts"], json!([account, second]));
    let next = page1["next"].as_str().unwrap();
    let (status, page2) = get_json(
        &my_account(&emu, &format!("/accounts?take=2&from={next}")),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page2["accounts"], json!([third]));
    assert!(page2.get("next").is_none());
    let (_, google) = get_json(&my_account(&emu, "/accounts?connection=google-oauth2"), &token).await;
    assert_eq!(google["accounts"].as_array().unwrap().len(), 2);
    let (status, _) = get_json(&my_account(&emu, "/accounts?from=garbage"), &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Connections.
    let (status, conns) = get_json(&my_account(&emu, "/connections"), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(conns["connections"][0]["name"], "google-oauth2");
    assert_eq!(conns["connections"][0]["strategy"], "google-oauth2");
    assert_eq!(conns["connections"][1]["name"], "github");
    let (_, conns) = get_json(&my_account(&emu, "/connections?take=1"), &token).await;
    assert_eq!(conns["connections"].as_array().unwrap().len(), 1);
    assert!(conns["next"].is_string());

    // Delete: the id arrives percent-encoded (here the `c` of `cac_` as %63) and is decoded once.
    let id = second["id"].as_str().unwrap();
    let encoded = format!("%63{}", &id[1..]);
    let resp = http()
        .delete(my_account(&emu, &format!("/accounts/{encoded}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(emu.connected_accounts(EMU_DEFAULT_SUB).len(), 2);
    let resp = http()
        .delete(my_account(&emu, &format!("/accounts/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        resp.headers()[CONTENT_TYPE].to_str().unwrap(),
        "application/problem+json"
    );

    let refused: Vec<_> = emu.refused().into_iter().map(|r| r.status).collect();
    assert_eq!(refused, vec![400, 400, 404]);
}

#[tokio::test]
async fn my_account_refusals() {
    let emu = Auth0Emulator::start().await;
    let tokens = login(&emu, "openid profile email offline_access").await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let create = my_account_token(&emu, rt, "create:me:connected_accounts").await;
    let read_only = my_account_token(&emu, rt, "read:me:connected_accounts").await;
    let (verifier, challenge) = pkce();
    let good = json!({
        "connection": "google-oauth2",
        "redirect_uri": EMU_REDIRECT_URI,
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    });

    // No token.
    let resp = http().get(my_account(&emu, "/accounts")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key("www-authenticate"));
    // Wrong audience: the login access token.
    let (status, problem, ct) = post_json(
        &my_account(&emu, "/connect"),
        tokens["access_token"].as_str().unwrap(),
        &good,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(ct, "application/problem+json");
    assert!(
        problem["detail"].as_str().unwrap().contains("audience"),
        "{problem}"
    );
    for key in ["type", "title", "detail", "status"] {
        assert!(problem.get(key).is_some(), "{key} in {problem}");
    }
    // Wrong scope.
    let (status, problem, _) = post_json(&my_account(&emu, "/connect"), &read_only, &good).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("create:me:connected_accounts")
    );
    let (status, _) = get_json(&my_account(&emu, "/accounts"), &create).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Expired token.
    let expired = emu.mint_access_token(EMU_DEFAULT_SUB, &emu.my_account_audience(), ALL_MY_ACCOUNT, -60);
    let (status, _) = get_json(&my_account(&emu, "/accounts"), &expired).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Body problems → 400 with validation_errors.
    let mut cases = Vec::new();
    let mut unknown = good.clone();
    unknown["connection_scope"] = json!("x");
    cases.push(("unknown field", unknown, "connection_scope"));
    let mut null = good.clone();
    null["scopes"] = Value::Null;
    cases.push(("null", null, "null"));
    let mut wrong_type = good.clone();
    wrong_type["scopes"] = json!("openid");
    cases.push(("scopes as a string", wrong_type, "array"));
    let mut not_subset = good.clone();
    not_subset["scopes"] = json!(["https://mail.google.com/"]);
    cases.push(("scope outside the connection", not_subset, "not configured"));
    let mut plain = good.clone();
    plain["code_challenge_method"] = json!("plain");
    cases.push(("plain PKCE", plain, "S256"));
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("state");
    cases.push(("missing state", missing, "state"));
    let mut unknown_conn = good.clone();
    unknown_conn["connection"] = json!("facebook");
    cases.push(("unknown connection", unknown_conn, "facebook"));
    let mut bad_redirect = good.clone();
    bad_redirect["redirect_uri"] = json!("http://evil.test/cb");
    cases.push(("unregistered redirect_uri", bad_redirect, "redirect_uri"));
    let mut bad_params = good.clone();
    bad_params["authorization_params"] = json!({"redirect_uri": "x", "login_hint": 3});
    cases.push(("bad authorization_params", bad_params, "authorization_params"));
    for (name, body, needle) in cases {
        let (status, problem, ct) = post_json(&my_account(&emu, "/connect"), &create, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {problem}");
        assert_eq!(ct, "application/problem+json");
        let errors = problem["validation_errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {problem}"));
        assert!(!errors.is_empty());
        assert!(problem.to_string().contains(needle), "{name}: {problem}");
    }

    // Complete with the wrong verifier / redirect_uri / connect_code.
    let (status, started, _) = post_json(&my_account(&emu, "/connect"), &create, &good).await;
    assert_eq!(status, StatusCode::CREATED);
    let ticket = started["connect_params"]["ticket"].as_str().unwrap();
    let resp = http()
        .get(format!("{}connect?ticket={ticket}", emu.issuer()))
        .send()
        .await
        .unwrap();
    let cb = query(location(&resp));
    let complete = |patch: Value| {
        let mut body = json!({
            "auth_session": started["auth_session"],
            "connect_code": cb["connect_code"],
            "redirect_uri": EMU_REDIRECT_URI,
            "code_verifier": verifier,
        });
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let (other_verifier, _) = pkce();
    for (patch, needle) in [
        (json!({"code_verifier": other_verifier}), "code_verifier"),
        (
            json!({"redirect_uri": "http://localhost:3000/auth/callback"}),
            "redirect_uri",
        ),
        (json!({"connect_code": "nope"}), "connect_code"),
        (json!({"state": "extra"}), "unknown field"),
    ] {
        let (status, problem, _) = post_json(&my_account(&emu, "/complete"), &create, &complete(patch)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert!(problem.to_string().contains(needle), "{needle}: {problem}");
    }
    // The ticket is single-use.
    let resp = http()
        .get(format!("{}connect?ticket={ticket}", emu.issuer()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // And the right values still complete.
    let (status, _, _) = post_json(&my_account(&emu, "/complete"), &create, &complete(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn fail_next_my_account_injects_one_problem() {
    let emu = Auth0Emulator::start().await;
    let tokens = login(&emu, "openid offline_access").await;
    let token = my_account_token(&emu, tokens["refresh_token"].as_str().unwrap(), ALL_MY_ACCOUNT).await;
    let problem = json!({"type": "https://example.test/rate", "title": "Too Many Requests", "detail": "slow down", "status": 429});
    emu.fail_next_my_account(429, problem.clone());
    let resp = http()
        .get(my_account(&emu, "/accounts"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()[CONTENT_TYPE], "application/problem+json");
    assert_eq!(resp.json::<Value>().await.unwrap(), problem);
    let (status, body) = get_json(&my_account(&emu, "/accounts"), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["accounts"], json!([]));
    assert!(emu.refused().is_empty(), "injected failures are not refusals");
    assert!(emu.requests().iter().any(|r| r.injected));
}

#[tokio::test]
async fn token_vault_exchange() {
    let emu = Auth0Emulator::start().await;
    let tokens = login(&emu, "openid profile email offline_access").await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let token = my_account_token(&emu, rt, ALL_MY_ACCOUNT).await;
    connect_account(&emu, &token, "google-oauth2").await;

    let exchange = |extra: &[(&'static str, &'static str)]| {
        let mut form = vec![
            ("grant_type", TOKEN_VAULT_GRANT_TYPE.to_owned()),
            ("subject_token_type", REFRESH_TOKEN_TYPE.to_owned()),
            ("subject_token", rt.to_owned()),
            ("requested_token_type", FEDERATED_TOKEN_TYPE.to_owned()),
            ("connection", "google-oauth2".to_owned()),
        ];
        for (k, v) in extra {
            form.retain(|(name, _)| name != k);
            if !v.is_empty() {
                form.push((k, (*v).to_owned()));
            }
        }
        form
    };
    let call = |form: Vec<(&'static str, String)>| {
        let emu = &emu;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token_basic(emu, &form).await
        }
    };

    let (status, first) = call(exchange(&[])).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["issued_token_type"], FEDERATED_TOKEN_TYPE);
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["expires_in"], 3600);
    assert_eq!(
        first["scope"],
        "openid email profile https://www.googleapis.com/auth/calendar.readonly"
    );
    let (status, second) = call(exchange(&[("login_hint", "jdoe@example.org")])).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(first["access_token"], second["access_token"], "unique per call");
    assert_eq!(emu.count("/oauth/token", Some(TOKEN_VAULT_GRANT_TYPE)), 2);

    // Refusals.
    for (extra, code, needle) in [
        (vec![("scope", "openid")], "invalid_request", "scope"),
        (
            vec![("audience", "https://api.example.test/")],
            "invalid_request",
            "audience",
        ),
        (
            vec![("connection", "github")],
            "federated_connection_refresh_token_not_found",
            "github",
        ),
        (vec![("connection", "")], "invalid_request", "connection"),
        (
            vec![(
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            )],
            "invalid_request",
            "subject_token_type",
        ),
        (
            vec![("requested_token_type", "")],
            "invalid_request",
            "requested_token_type",
        ),
    ] {
        let (status, body) = call(exchange(&extra)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra:?}: {body}");
        assert_eq!(body["error"], code, "{extra:?}: {body}");
        assert!(
            body["error_description"].as_str().unwrap().contains(needle),
            "{body}"
        );
    }
    let (status, body) = call(exchange(&[("subject_token", "v1.unknown")])).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_grant"))
    );
    assert_eq!(emu.count("/oauth/token", Some(TOKEN_VAULT_GRANT_TYPE)), 9);
    assert_eq!(emu.refused().len(), 7);
}

#[tokio::test]
async fn logout_endpoints() {
    let emu = Auth0Emulator::start().await;
    let id_token = login(&emu, "openid").await["id_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let resp = http()
        .get(emu.url("/v2/logout"))
        .query(&[
            ("client_id", EMU_CLIENT_ID),
            ("returnTo", "http://127.0.0.1:3000/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(location(&resp), "http://127.0.0.1:3000/");

    let resp = http()
        .get(emu.url("/v2/logout"))
        .query(&[("client_id", EMU_CLIENT_ID), ("returnTo", "http://evil.test/")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let resp = http()
        .get(emu.url("/oidc/logout"))
        .query(&[
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", "http://localhost:3000/"),
            ("client_id", EMU_CLIENT_ID),
            ("state", "bye"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(location(&resp), "http://localhost:3000/?state=bye");

    let resp = http()
        .get(emu.url("/oidc/logout"))
        .query(&[
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", "http://localhost:3000/"),
            ("client_id", EMU_PUBLIC_ID),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(last_reason(&emu).contains("audience"));

    let resp = http().get(emu.url("/oauth/device/code")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(emu.refused().len(), 3);
    assert_eq!(emu.count("/oidc/logout", None), 2);
}

#[tokio::test]
async fn my_account_scopes_constant_matches_the_wire_doc() {
    assert_eq!(MY_ACCOUNT_SCOPES.join(" "), ALL_MY_ACCOUNT);
}
