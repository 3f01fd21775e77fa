//! Proves the real-browser harness ([`auth_tests::Browser`]): headless Chromium
//! goes through the test IdP's authorization endpoint, dev login and consent
//! pages, and lands on a redirect URI served by a tiny HTTP server started here.
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`.ci/run`
//! installs them); without them the test fails rather than being skipped.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use auth_tests::{Browser, IdpOptions, PUBLIC_ID, TestIdp};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

const CALLBACK_HTML: &str =
    "<!DOCTYPE html><html><head><title>callback</title></head><body><p>callback ok</p></body></html>";

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A minimal HTTP/1.1 server on loopback that answers every request with
/// [`CALLBACK_HTML`] and records the request targets (path and query).
struct CallbackServer {
    base: String,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CallbackServer {
    async fn start() -> CallbackServer {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind callback server");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                tokio::spawn(serve(stream, record.clone()));
            }
        });
        CallbackServer { base, seen, task }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for CallbackServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head, records its target and answers 200 with the page.
async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
    seen.lock().unwrap().push(target);

    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{CALLBACK_HTML}",
        CALLBACK_HTML.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[tokio::test]
async fn browser_logs_in_at_the_test_idp_and_lands_on_the_callback() {
    let callback = CallbackServer::start().await;
    let redirect_uri = format!("{}/callback", callback.base);
    let idp = TestIdp::start_with(IdpOptions {
        redirect_uris: vec![redirect_uri.clone()],
        ..Default::default()
    })
    .await;

    let state = random_token();
    let nonce = random_token();
    let verifier = random_token();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut authorize = Url::parse(idp.authorization_endpoint()).unwrap();
    authorize.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", PUBLIC_ID),
        ("redirect_uri", redirect_uri.as_str()),
        ("scope", "openid profile email"),
        ("state", state.as_str()),
        ("nonce", nonce.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);

    let browser = Browser::start().await;
    browser.goto(authorize.as_str()).await;
    let login_page = browser.current_url().await;
    assert_eq!(
        login_page.origin(),
        Url::parse(idp.issuer()).unwrap().origin(),
        "the authorization endpoint should show the IdP's login page, got {login_page}"
    );
    assert!(
        browser.page_source().await.contains("name=\"login\""),
        "no login form at {login_page}"
    );

    let landed = browser.fill_and_submit_idp_login("alice").await;

    let expected = Url::parse(&redirect_uri).unwrap();
    assert_eq!(landed.origin(), expected.origin(), "landed on {landed}");
    assert_eq!(landed.path(), expected.path(), "landed on {landed}");
    let query: BTreeMap<String, String> = landed.query_pairs().into_owned().collect();
    assert!(
        !query.contains_key("error"),
        "the IdP returned an error: {query:?}"
    );
    let code = query.get("code").unwrap_or_else(|| panic!("no code in {landed}"));
    assert!(!code.is_empty());
    assert_eq!(query.get("state"), Some(&state), "state round trip: {landed}");
    assert_eq!(query.get("iss").map(String::as_str), Some(idp.issuer()));

    assert_eq!(browser.current_url().await, landed);
    let page = browser.page_source().await;
    assert!(page.contains("callback ok"), "callback page: {page}");
    assert!(
        callback
            .seen()
            .iter()
            .any(|target| target.starts_with("/callback?") && target.contains("code=")),
        "the callback server saw {:?}",
        callback.seen()
    );

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser_idp/callback.png");
    browser.screenshot(&shot).await;
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "screenshot is not a PNG");

    browser.close().await;

    // The code is good: the public client redeems it with the PKCE verifier.
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(idp.token_endpoint())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("client_id", PUBLIC_ID),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(status.is_success(), "token endpoint: {status} {body}");
    assert!(body["id_token"].is_string(), "no id_token: {body}");
}
