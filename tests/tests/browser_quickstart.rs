//! A real browser (headless Chromium over WebDriver) logs in to the quickstart through the
//! test IdP's login page and comes back to a page that shows the user.

use auth_tests::{Browser, TestApp};

#[tokio::test]
async fn browser_logs_in_to_the_quickstart_and_sees_the_user() {
    let app = TestApp::start().await;
    let browser = Browser::start().await;

    browser.goto(&app.url("/")).await;
    assert!(browser.page_source().await.contains("You are not logged in"));

    // Click the page's own login link, as a person would.
    browser
        .client()
        .find(fantoccini::Locator::Id("login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let idp_origin = url::Url::parse(app.idp.issuer()).unwrap().origin();
    assert_eq!(
        browser.current_url().await.origin(),
        idp_origin,
        "sent to the IdP"
    );

    let landed = browser.fill_and_submit_idp_login("alice").await;
    assert_eq!(
        landed.as_str(),
        app.url("/"),
        "callback redirected back to the app"
    );
    let page = browser.page_source().await;
    assert!(page.contains("Logged in as"), "{page}");
    assert!(page.contains("Test User alice"), "{page}");

    // The session is a real browser cookie: the protected JSON route answers too.
    browser.goto(&app.url("/profile")).await;
    let profile = browser.page_source().await;
    assert!(profile.contains("\"sub\":\"alice\""), "{profile}");

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("quickstart-logged-in.png");
    browser.goto(&app.url("/")).await;
    browser.screenshot(&shot).await;

    // Logging out through the page's link ends the session.
    browser
        .client()
        .find(fantoccini::Locator::Id("logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.goto(&app.url("/")).await;
    assert!(browser.page_source().await.contains("You are not logged in"));
    browser.close().await;
}
