//! Interactive login end to end against the real test IdP (panva oidc-provider).

use std::time::Duration;

use auth_core::cookies::{CookieJar, MemoryCookieJar};
use auth_core::{
    AuthorizationParams, CallbackError, ClientAuth, ConfigError, Error, LoginOptions, ServerClient,
    SigningAlgorithm,
};
use auth_tests::*;
use serde_json::json;
use url::Url;

const SECRET: &str = "test-cookie-secret-0123456789abcdef0123";

fn builder(idp: &TestIdp, client_id: &str, auth: ClientAuth) -> auth_core::ServerClientBuilder {
    ServerClient::builder()
        .issuer(idp.issuer())
        .client_id(client_id)
        .client_auth(auth)
        .secret(SECRET)
        .authorization_params(AuthorizationParams::new().redirect_uri(DEFAULT_REDIRECT_URI))
}

fn basic(idp: &TestIdp) -> ServerClient {
    builder(idp, CONF_BASIC_ID, ClientAuth::secret(CONF_BASIC_SECRET))
        .build()
        .unwrap()
}

/// Start → log in at the IdP → complete, as a browser would across three requests.
async fn full_login(
    idp: &TestIdp,
    client: &ServerClient,
    options: LoginOptions,
) -> (auth_core::LoginResult, MemoryCookieJar) {
    let mut jar = MemoryCookieJar::default();
    let url = client.start_interactive_login(options, &mut jar).await.unwrap();
    let callback = idp.login(url.as_str(), "alice").await;
    let mut jar = jar.next_request();
    let result = client
        .complete_interactive_login(callback.as_str(), &mut jar)
        .await
        .unwrap();
    (result, jar.next_request())
}

/// A failed callback deletes its transaction cookie and writes no session.
async fn assert_failed_cleanly(client: &ServerClient, jar: &MemoryCookieJar) {
    let written = jar.response_cookies();
    assert!(
        written.iter().any(|c| c.removed && c.name.starts_with("_a0_tx_")),
        "transaction deleted"
    );
    assert!(
        !written
            .iter()
            .any(|c| !c.removed && c.name.starts_with("_a0_session")),
        "no session written"
    );
    assert!(
        client
            .get_session(&mut jar.next_request())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn confidential_login_with_client_secret_basic() {
    let idp = TestIdp::start().await;
    let client = basic(&idp);
    let mut jar = MemoryCookieJar::default();
    let url = client
        .start_interactive_login(LoginOptions::new(), &mut jar)
        .await
        .unwrap();

    let q = query(&url);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CONF_BASIC_ID);
    assert_eq!(q["redirect_uri"], DEFAULT_REDIRECT_URI);
    assert_eq!(q["scope"], "openid profile email offline_access");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43);
    assert_ne!(q["state"], q["nonce"]);

    // One transaction cookie, named from the state, with the documented attributes.
    let tx_cookies = jar.response_cookies();
    assert_eq!(tx_cookies.len(), 1);
    assert_eq!(tx_cookies[0].name, format!("_a0_tx_{}", q["state"]));
    let a = &tx_cookies[0].attributes;
    assert!(a.http_only && !a.secure && a.path == "/" && a.same_site == cookie::SameSite::Lax);
    assert!(a.max_age.is_some_and(|m| m <= Duration::from_secs(900)));

    let callback = idp.login(url.as_str(), "alice").await;
    let mut jar = jar.next_request();
    let done = client
        .complete_interactive_login(callback.as_str(), &mut jar)
        .await
        .unwrap();
    assert_eq!(done.user["sub"], "alice");
    assert_eq!(done.user["email"], "alice@example.test");
    assert!(
        done.user.get("nonce").is_none() && done.user.get("exp").is_none(),
        "protocol claims are not user claims"
    );

    // The transaction cookie is gone; session chunks were written.
    let written = jar.response_cookies();
    assert!(written.iter().any(|c| c.removed && c.name.starts_with("_a0_tx_")));
    assert!(written.iter().any(|c| !c.removed && c.name == "_a0_session_0"));

    let mut next = jar.next_request();
    let session = client.get_session(&mut next).await.unwrap().unwrap();
    assert_eq!(session.sub(), Some("alice"));
    assert!(session.refresh_token().is_none(), "not exposed unless asked for");
    assert!(session.id_token().is_some());
    let sets = session.token_sets();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].audience, "default");
    assert!(sets[0].expires_at > 0);
    assert!(!session.sid().is_empty());
    let full = client
        .get_session_with_refresh_token(&mut next)
        .await
        .unwrap()
        .unwrap();
    assert!(
        full.refresh_token().is_some(),
        "the fixture issues refresh tokens for offline_access"
    );
    assert_eq!(client.get_user(&mut next).await.unwrap().unwrap()["sub"], "alice");
    let dbg = format!("{session:?}{full:?}");
    assert!(!dbg.contains(full.refresh_token().unwrap()) && !dbg.contains(full.id_token().unwrap()));

    // What the IdP saw at its token endpoint: Basic auth, the transaction's redirect_uri and verifier.
    let rec = idp.requests().await;
    let token = rec.token.last().unwrap();
    assert_eq!(token.auth_header.as_deref(), Some("Basic"));
    assert_eq!(token.params["grant_type"], "authorization_code");
    assert_eq!(token.params["redirect_uri"], DEFAULT_REDIRECT_URI);
    assert_eq!(token.params["code_verifier"].len(), 43);
    assert!(!token.params.contains_key("client_secret"));
    assert_eq!(token.client_id.as_deref(), Some(CONF_BASIC_ID));
}

#[tokio::test]
async fn confidential_login_with_client_secret_post() {
    let idp = TestIdp::start().await;
    let client = builder(&idp, CONF_POST_ID, ClientAuth::secret_post(CONF_POST_SECRET))
        .build()
        .unwrap();
    let (done, _) = full_login(&idp, &client, LoginOptions::new()).await;
    assert_eq!(done.user["sub"], "alice");
    let rec = idp.requests().await;
    let token = rec.token.last().unwrap();
    assert_eq!(token.auth_header, None);
    assert_eq!(token.params["client_id"], CONF_POST_ID);
    assert_eq!(token.params["client_secret"], CONF_POST_SECRET);
}

#[tokio::test]
async fn confidential_login_with_private_key_jwt() {
    let idp = TestIdp::start().await;
    for (pem, alg, kid) in [
        (conf_jwt_rsa_pem(), SigningAlgorithm::RS256, CONF_JWT_RSA_KID),
        (conf_jwt_rsa_pem(), SigningAlgorithm::PS256, CONF_JWT_RSA_KID),
        (conf_jwt_es256_pem(), SigningAlgorithm::ES256, CONF_JWT_ES256_KID),
    ] {
        let auth = ClientAuth::private_key_jwt(&pem, alg).unwrap().with_kid(kid);
        let client = builder(&idp, CONF_JWT_ID, auth).build().unwrap();
        let (done, _) = full_login(&idp, &client, LoginOptions::new()).await;
        assert_eq!(done.user["sub"], "alice");
        let rec = idp.requests().await;
        let token = rec.token.last().unwrap();
        assert_eq!(
            token.params["client_assertion_type"],
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        assert_eq!(token.client_id.as_deref(), Some(CONF_JWT_ID), "{alg:?}");
        assert_eq!(token.status, 200);
    }
}

#[tokio::test]
async fn public_client_login_uses_pkce_only() {
    let idp = TestIdp::start().await;
    let client = builder(&idp, PUBLIC_ID, ClientAuth::none()).build().unwrap();
    let (done, _) = full_login(&idp, &client, LoginOptions::new()).await;
    assert_eq!(done.user["sub"], "alice");
    let rec = idp.requests().await;
    let token = rec.token.last().unwrap();
    assert_eq!(token.auth_header, None);
    assert_eq!(token.params["client_id"], PUBLIC_ID);
    assert!(!token.params.contains_key("client_secret"));
    assert!(token.params.contains_key("code_verifier"));
}

#[tokio::test]
async fn login_with_par() {
    let idp = TestIdp::start().await;
    let client = builder(&idp, CONF_BASIC_ID, ClientAuth::secret(CONF_BASIC_SECRET))
        .pushed_authorization_requests(true)
        .build()
        .unwrap();
    let mut jar = MemoryCookieJar::default();
    let url = client
        .start_interactive_login(LoginOptions::new(), &mut jar)
        .await
        .unwrap();
    let q = query(&url);
    assert_eq!(
        q.keys().collect::<Vec<_>>(),
        ["client_id", "request_uri"],
        "only a reference goes through the browser"
    );
    assert!(q["request_uri"].starts_with("urn:ietf:params:oauth:request_uri:"));
    let rec = idp.requests().await;
    let par = rec.par.last().unwrap();
    assert_eq!(par["response_type"], "code");
    assert_eq!(par["code_challenge_method"], "S256");
    assert_eq!(par["redirect_uri"], DEFAULT_REDIRECT_URI);
    assert!(!par.contains_key("client_secret"), "Basic auth by default");

    let callback = idp.login(url.as_str(), "bob").await;
    let mut jar = jar.next_request();
    let done = client
        .complete_interactive_login(callback.as_str(), &mut jar)
        .await
        .unwrap();
    assert_eq!(done.user["sub"], "bob");

    // Per call: PAR off for this login only.
    let mut jar = MemoryCookieJar::default();
    let url = client
        .start_interactive_login(LoginOptions::new().pushed_authorization_requests(false), &mut jar)
        .await
        .unwrap();
    assert!(query(&url).contains_key("code_challenge"));
}

#[tokio::test]
async fn par_with_rar_returns_authorization_details() {
    let idp = TestIdp::start().await;
    let client = basic(&idp);
    let details = json!([{"type": "payment_initiation", "amount": "42.00", "currency": "EUR"}]);
    let options = LoginOptions::new()
        .pushed_authorization_requests(true)
        .authorization_params(AuthorizationParams::new().authorization_details(&details));
    let (done, _) = full_login(&idp, &client, options).await;
    let granted = done
        .authorization_details
        .expect("token response carries authorization_details");
    assert_eq!(granted[0]["type"], "payment_initiation");
    assert_eq!(granted[0]["amount"], "42.00");
    let rec = idp.requests().await;
    let sent: serde_json::Value =
        serde_json::from_str(&rec.par.last().unwrap()["authorization_details"]).unwrap();
    assert_eq!(sent, details);
}

#[tokio::test]
async fn per_call_params_override_global_ones() {
    let idp = TestIdp::start().await;
    let client = builder(&idp, CONF_BASIC_ID, ClientAuth::secret(CONF_BASIC_SECRET))
        .authorization_params(
            AuthorizationParams::new()
                .redirect_uri(DEFAULT_REDIRECT_URI)
                .scope("openid profile")
                .param("ui_locales", "de")
                .param("login_hint", "global@example.test"),
        )
        .build()
        .unwrap();
    let options = LoginOptions::new().authorization_params(
        AuthorizationParams::new()
            .scope("email offline_access")
            .audience(API_AUDIENCE)
            .param("login_hint", "call@example.test"),
    );
    let (done, jar) = full_login(&idp, &client, options).await;
    assert_eq!(done.user["sub"], "alice");
    let rec = idp.requests().await;
    let sent = rec.authorize.first().unwrap();
    assert_eq!(
        sent["scope"], "openid email offline_access",
        "per-call scope wins, openid added"
    );
    assert_eq!(sent["login_hint"], "call@example.test");
    assert_eq!(sent["ui_locales"], "de", "globals not overridden stay");
    assert_eq!(sent["audience"], API_AUDIENCE);

    // The access token was issued for the API audience and stored under it.
    let mut jar = jar;
    let session = client.get_session(&mut jar).await.unwrap().unwrap();
    assert_eq!(session.token_sets()[0].audience, API_AUDIENCE);

    // Reserved parameters cannot be overridden.
    for reserved in [
        "state",
        "nonce",
        "client_id",
        "response_type",
        "code_challenge",
        "code_challenge_method",
    ] {
        let mut jar = MemoryCookieJar::default();
        let err = client
            .start_interactive_login(
                LoginOptions::new().authorization_params(AuthorizationParams::new().param(reserved, "x")),
                &mut jar,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_parameter", "{reserved}");
        assert!(jar.response_cookies().is_empty(), "no transaction left behind");
    }
}

#[tokio::test]
async fn app_state_round_trip() {
    let idp = TestIdp::start().await;
    let client = basic(&idp);
    let state = json!({"returnTo": "/dashboard?tab=1", "n": [1, 2, {"deep": true}], "unicode": "héllo ✓"});
    let (done, _) = full_login(&idp, &client, LoginOptions::new().app_state(state.clone())).await;
    assert_eq!(done.app_state, Some(state));

    let mut jar = MemoryCookieJar::default();
    let err = client
        .start_interactive_login(
            LoginOptions::new().app_state(json!({"big": "x".repeat(5000)})),
            &mut jar,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_parameter");
}

#[tokio::test]
async fn two_logins_in_flight_in_one_jar_both_complete() {
    let idp = TestIdp::start().await;
    let client = basic(&idp);
    let mut jar = MemoryCookieJar::default();
    let url_a = client
        .start_interactive_login(LoginOptions::new().app_state(json!("tab-a")), &mut jar)
        .await
        .unwrap();
    let mut jar = jar.next_request();
    let url_b = client
        .start_interactive_login(LoginOptions::new().app_state(json!("tab-b")), &mut jar)
        .await
        .unwrap();
    let mut jar = jar.next_request();
    assert_eq!(jar.names().iter().filter(|n| n.starts_with("_a0_tx_")).count(), 2);

    let cb_a = idp.login(url_a.as_str(), "alice").await;
    let cb_b = idp.login(url_b.as_str(), "bob").await;
    // B finishes first, then A.
    let b = client
        .complete_interactive_login(cb_b.as_str(), &mut jar)
        .await
        .unwrap();
    let mut jar = jar.next_request();
    let a = client
        .complete_interactive_login(cb_a.as_str(), &mut jar)
        .await
        .unwrap();
    assert_eq!(b.app_state, Some(json!("tab-b")));
    assert_eq!(a.app_state, Some(json!("tab-a")));
    let mut jar = jar.next_request();
    assert_eq!(
        client.get_user(&mut jar).await.unwrap().unwrap()["sub"],
        "alice",
        "the last completed wins"
    );
    assert!(
        jar.names().iter().all(|n| !n.starts_with("_a0_tx_")),
        "both transactions cleaned up"
    );
}

#[tokio::test]
async fn replayed_and_tampered_callbacks_are_refused() {
    let idp = TestIdp::start().await;
    let client = basic(&idp);
    let mut jar = MemoryCookieJar::default();
    let url = client
        .start_interactive_login(LoginOptions::new(), &mut jar)
        .await
        .unwrap();
    let callback = idp.login(url.as_str(), "alice").await;
    let before = jar.next_request();

    // Tampered state: no transaction, and the real one is untouched.
    let mut tampered = callback.clone();
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .map(|(k, v)| {
            if k == "state" {
                (k.into_owned(), format!("{v}x"))
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(&pairs);
    let mut jar = before.clone();
    assert!(matches!(
        client
            .complete_interactive_login(tampered.as_str(), &mut jar)
            .await,
        Err(Error::MissingTransaction)
    ));

    // Missing state.
    let mut no_state = callback.clone();
    let pairs: Vec<_> = pairs.iter().filter(|(k, _)| k != "state").cloned().collect();
    no_state.query_pairs_mut().clear().extend_pairs(&pairs);
    let err = client
        .complete_interactive_login(no_state.as_str(), &mut before.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_state");

    // The genuine callback works once…
    let mut jar = before.clone();
    client
        .complete_interactive_login(callback.as_str(), &mut jar)
        .await
        .unwrap();
    // …and not again: the browser's transaction cookie is gone.
    let mut after = jar.next_request();
    let err = client
        .complete_interactive_login(callback.as_str(), &mut after)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "missing_transaction");
    // Replaying with a stolen copy of the old cookie: the IdP refuses the used code, and the
    // transaction is deleted again.
    let mut stolen = before.clone();
    let err = client
        .complete_interactive_login(callback.as_str(), &mut stolen)
        .await
        .unwrap_err();
    assert_eq!(err.oauth_error().map(|e| e.error.as_str()), Some("invalid_grant"));
    assert!(
        stolen
            .response_cookies()
            .iter()
            .any(|c| c.removed && c.name.starts_with("_a0_tx_"))
    );
}

#[tokio::test]
async fn issuer_in_the_response_is_checked() {
    let idp = TestIdp::start().await;
    let client = basic(&idp);
    assert!(
        client
            .metadata()
            .await
            .unwrap()
            .authorization_response_iss_parameter_supported
    );
    for (iss, expected) in [
        (Some("https://evil.example/"), CallbackError::IssuerMismatch),
        (None, CallbackError::MissingIssuer),
    ] {
        let mut jar = MemoryCookieJar::default();
        let url = client
            .start_interactive_login(LoginOptions::new(), &mut jar)
            .await
            .unwrap();
        let callback = idp.login(url.as_str(), "alice").await;
        let mut forged = callback.clone();
        let mut pairs: Vec<(String, String)> = callback
            .query_pairs()
            .into_owned()
            .filter(|(k, _)| k != "iss")
            .collect();
        if let Some(iss) = iss {
            pairs.push(("iss".into(), iss.into()));
        }
        forged.query_pairs_mut().clear().extend_pairs(&pairs);
        let mut jar = jar.next_request();
        let err = client
            .complete_interactive_login(forged.as_str(), &mut jar)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidCallback(e) if *e == expected),
            "{err:?}"
        );
        assert_failed_cleanly(&client, &jar).await;
    }
}

#[tokio::test]
async fn idp_error_callback_is_a_typed_error() {
    let idp = TestIdp::start().await;
    let client = basic(&idp);
    let mut jar = MemoryCookieJar::default();
    // prompt=none without a session at the IdP: it answers login_required at once.
    let url = client
        .start_interactive_login(
            LoginOptions::new().authorization_params(AuthorizationParams::new().param("prompt", "none")),
            &mut jar,
        )
        .await
        .unwrap();
    let callback = idp.login(url.as_str(), "alice").await;
    let mut jar = jar.next_request();
    let err = client
        .complete_interactive_login(callback.as_str(), &mut jar)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "authorization_error");
    let oauth = err.oauth_error().unwrap();
    assert_eq!(oauth.error, "login_required");
    assert_failed_cleanly(&client, &jar).await;
}

#[tokio::test]
async fn unreachable_idp_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = ServerClient::builder()
        .issuer(format!("http://{addr}"))
        .client_id("x")
        .client_auth(ClientAuth::none())
        .secret(SECRET)
        .app_base_url("http://127.0.0.1:3000")
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut jar = MemoryCookieJar::default();
    let started = std::time::Instant::now();
    let err = client
        .start_interactive_login(LoginOptions::new(), &mut jar)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "transport_error");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(jar.response_cookies().is_empty());
    let msg = err.to_string();
    assert!(msg.contains("could not talk to the identity provider"), "{msg}");
}

#[tokio::test]
async fn par_without_a_par_endpoint_is_a_configuration_error() {
    // A provider whose metadata lacks a PAR endpoint: the real IdP's metadata minus that field,
    // served under its own issuer from a tiny loopback server.
    let idp = TestIdp::start().await;
    let mut meta = idp.discovery().clone();
    meta.as_object_mut()
        .unwrap()
        .remove("pushed_authorization_request_endpoint");
    meta.as_object_mut()
        .unwrap()
        .remove("require_pushed_authorization_requests");
    let issuer = serve_metadata(meta).await;
    let client = ServerClient::builder()
        .issuer(issuer)
        .client_id(CONF_BASIC_ID)
        .client_auth(ClientAuth::secret(CONF_BASIC_SECRET))
        .secret(SECRET)
        .app_base_url("http://127.0.0.1:3000")
        .pushed_authorization_requests(true)
        .build()
        .unwrap();
    let mut jar = MemoryCookieJar::default();
    let err = client
        .start_interactive_login(LoginOptions::new(), &mut jar)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(ConfigError::ParNotSupported)),
        "{err:?}"
    );
    assert!(err.to_string().contains("pushed_authorization_request_endpoint"));
    assert!(jar.response_cookies().is_empty());
}

#[tokio::test]
async fn auth0_tenant_without_end_session_endpoint_falls_back_to_v2_logout() {
    let idp = TestIdp::start().await;
    let mut meta = idp.discovery().clone();
    meta.as_object_mut().unwrap().remove("end_session_endpoint");
    let issuer = serve_metadata(meta).await;
    let client = ServerClient::builder()
        .domain(&issuer)
        .client_id(CONF_BASIC_ID)
        .client_auth(ClientAuth::secret(CONF_BASIC_SECRET))
        .secret(SECRET)
        .app_base_url("http://127.0.0.1:3000")
        .build()
        .unwrap();
    assert_eq!(client.auth0_domain(), Some(issuer.trim_start_matches("http://")));
    let mut jar = MemoryCookieJar::default();
    let url = client
        .logout(
            auth_core::LogoutOptions::new().return_to("http://127.0.0.1:3000/bye"),
            &mut jar,
        )
        .await
        .unwrap();
    assert_eq!(url.path(), "/v2/logout");
    assert_eq!(url.origin(), Url::parse(&issuer).unwrap().origin());
    let q = query(&url);
    assert_eq!(q["client_id"], CONF_BASIC_ID);
    assert_eq!(q["returnTo"], "http://127.0.0.1:3000/bye");
    assert!(!q.contains_key("id_token_hint"));
}

/// Serves `meta` as a discovery document with `issuer` set to the server's own URL.
async fn serve_metadata(mut meta: serde_json::Value) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    meta["issuer"] = json!(issuer);
    let body = meta.to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    issuer
}

#[tokio::test]
async fn access_token_refresh_rotates_and_updates_the_session() {
    let idp = TestIdp::start().await;
    let client = basic(&idp);
    let (_, mut jar) = full_login(&idp, &client, LoginOptions::new()).await;
    let before = client
        .get_session_with_refresh_token(&mut jar)
        .await
        .unwrap()
        .unwrap();
    let held = client
        .get_access_token(auth_core::AccessTokenOptions::new(), &mut jar)
        .await
        .unwrap();
    assert_eq!(
        held.token.expose(),
        before.token_sets()[0].access_token.expose(),
        "valid token served from the session"
    );
    assert!(
        jar.response_cookies().is_empty(),
        "nothing rewritten when nothing changed"
    );

    let stale_copy = jar.clone();
    let fresh = client
        .get_access_token(auth_core::AccessTokenOptions::new().force_refresh(true), &mut jar)
        .await
        .unwrap();
    assert_ne!(fresh.token.expose(), held.token.expose());
    let mut next = jar.next_request();
    let after = client
        .get_session_with_refresh_token(&mut next)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        after.refresh_token(),
        before.refresh_token(),
        "rotated refresh token persisted"
    );
    assert_eq!(after.token_sets().len(), 1, "replaced, not duplicated");
    assert_eq!(after.token_sets()[0].access_token.expose(), fresh.token.expose());
    let rec = idp.requests().await;
    let refresh = rec
        .token
        .iter()
        .find(|t| t.params["grant_type"] == "refresh_token")
        .unwrap();
    assert_eq!(refresh.auth_header.as_deref(), Some("Basic"));
    assert!(
        !refresh.params.contains_key("audience"),
        "default audience sends none"
    );

    // A request still carrying the old cookie (the rotated-away refresh token) never replays
    // the old refresh token at the IdP: a forced refresh (issue 10 item 9: `force_refresh`
    // always reaches the token endpoint) follows the rotation and uses the new one.
    let mut stale = stale_copy;
    let again = client
        .get_access_token(
            auth_core::AccessTokenOptions::new().force_refresh(true),
            &mut stale,
        )
        .await
        .unwrap();
    assert_ne!(again.token.expose(), fresh.token.expose(), "really refreshed");
    let after_stale = client
        .get_session_with_refresh_token(&mut stale.next_request())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        after_stale.refresh_token(),
        before.refresh_token(),
        "the stale cookie is upgraded"
    );
    let rec = idp.requests().await;
    let refreshes: Vec<_> = rec
        .token
        .iter()
        .filter(|t| t.params["grant_type"] == "refresh_token")
        .collect();
    assert_eq!(refreshes.len(), 2);
    assert_eq!(
        refreshes[1].params.get("refresh_token").map(String::as_str),
        after.refresh_token(),
        "the second refresh used the rotated token, not the stale cookie's"
    );

    // A genuinely new refresh uses the rotated token and works.
    let third = client
        .get_access_token(
            auth_core::AccessTokenOptions::new().force_refresh(true),
            &mut next,
        )
        .await
        .unwrap();
    assert_ne!(third.token.expose(), fresh.token.expose());
}

#[tokio::test]
async fn logout_builds_the_rp_initiated_logout_url_and_clears_everything() {
    let idp = TestIdp::start().await;
    let client = builder(&idp, CONF_BASIC_ID, ClientAuth::secret(CONF_BASIC_SECRET))
        .app_base_url("http://127.0.0.1:3000")
        .build()
        .unwrap();
    let (_, mut jar) = full_login(&idp, &client, LoginOptions::new()).await;
    let id_token = client
        .get_session(&mut jar)
        .await
        .unwrap()
        .unwrap()
        .id_token()
        .unwrap()
        .to_owned();
    // A login in flight too.
    client
        .start_interactive_login(LoginOptions::new(), &mut jar)
        .await
        .unwrap();
    let mut jar = jar.next_request();
    let url = client
        .logout(auth_core::LogoutOptions::new(), &mut jar)
        .await
        .unwrap();
    assert!(url.as_str().starts_with(idp.end_session_endpoint()));
    let q = query(&url);
    assert_eq!(q["id_token_hint"], id_token);
    assert_eq!(q["post_logout_redirect_uri"], "http://127.0.0.1:3000/");
    assert_eq!(q["client_id"], CONF_BASIC_ID);
    let removed: Vec<_> = jar
        .response_cookies()
        .into_iter()
        .filter(|c| c.removed)
        .map(|c| c.name)
        .collect();
    assert!(removed.iter().any(|n| n == "_a0_session_0"));
    assert!(removed.iter().any(|n| n.starts_with("_a0_tx_")));
    assert!(
        jar.next_request().names().is_empty(),
        "no auth cookie survives: {:?}",
        jar.next_request().names()
    );
    let err = client
        .logout(auth_core::LogoutOptions::new().return_to("/relative"), &mut jar)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_parameter");
}
