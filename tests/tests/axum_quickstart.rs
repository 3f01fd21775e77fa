//! The quickstart through the real Axum router on a real listener, driven by a cookie-keeping
//! HTTP client, against the real IdP.

use auth_tests::*;
use serde_json::Value;

#[tokio::test]
async fn login_then_profile_has_the_right_sub() {
    let app = TestApp::start().await;
    let http = TestApp::browser();
    let done = app.login(&http, "returnTo=%2Fprofile", "alice").await;
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), "/profile");
    let profile: Value = http
        .get(app.url("/profile"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(profile["sub"], "alice");
    let token: Value = http
        .get(app.url("/token"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(token["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    let home = http.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("Test User alice"), "{home}");
}
