//! Load-test target for `scripts/load`: one small JSON handler served three ways, each on its
//! own loopback port, by a Tokio runtime with one worker thread (so results compare per core):
//!
//! - `bare` (`LOAD_PORT`, default 18080): the handler alone;
//! - `cookie` (`LOAD_PORT + 1`): the same reply, also reading the `Cookie` header's length;
//! - `protected` (`LOAD_PORT + 2`): the same reply behind `auth.layer()` and
//!   `RequireAuth::new()`, extracting `Session`, in an app that also mounts the `/auth/*`
//!   routes. The client has a fake issuer that is never contacted: reading a session needs
//!   no provider metadata.
//!
//! On start it seals a realistic session (ID + access + refresh token, ~3.3 KB of JSON, two
//! cookie chunks) with the app's fixed secret, checks each variant once, and prints:
//!
//! ```text
//! session JSON <n> B, sealed <n> B, <n> cookie chunks, Cookie header <n> B
//! bare http://127.0.0.1:18080/
//! cookie http://127.0.0.1:18081/
//! protected http://127.0.0.1:18082/
//! cookie-header _a0_session_0=…; _a0_session_1=…
//! ready
//! ```
//!
//! It stops on Ctrl-C / SIGTERM, and by itself after `LOAD_TARGET_MAX_SECS` (default 900).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use auth_examples::load::{bare_app, cookie_app, protected_app, realistic_session, session_cookie, unix_now};
use axum::Router;
use serde_json::{Value, json};

fn fail(msg: &str) -> ! {
    eprintln!("load_target: {msg}");
    std::process::exit(1)
}

async fn serve(name: &'static str, port: u16, app: Router) -> String {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail(&format!("cannot listen on {addr} ({name}): {e}")));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("load_target: {name} server stopped: {e}");
        }
    });
    format!("http://{addr}/")
}

/// One request per variant before the load starts, so a broken setup fails loudly.
async fn self_check(urls: &[String; 3], cookie: &str, cookie_bytes: usize) {
    let http = reqwest::Client::new();
    let get = |url: &str, cookie: Option<&str>| {
        let mut req = http.get(url).header("accept", "application/json");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        send(url.to_owned(), req)
    };
    let expect = |what: &str, got: (u16, Value), status: u16, body: Option<Value>| {
        if got.0 != status || body.is_some_and(|b| b != got.1) {
            fail(&format!(
                "self-check {what}: expected {status}, got {} {}",
                got.0, got.1
            ));
        }
    };
    let [bare, cookie_url, protected] = urls;
    expect(
        "bare",
        get(bare, None).await,
        200,
        Some(json!({"ok": true, "cookie_bytes": 0, "logged_in": false})),
    );
    expect(
        "cookie",
        get(cookie_url, Some(cookie)).await,
        200,
        Some(json!({"ok": true, "cookie_bytes": cookie_bytes, "logged_in": false})),
    );
    expect(
        "protected with the session",
        get(protected, Some(cookie)).await,
        200,
        Some(json!({"ok": true, "cookie_bytes": cookie_bytes, "logged_in": true})),
    );
    expect(
        "protected without a session",
        get(protected, None).await,
        401,
        None,
    );
    let mut tampered = cookie.to_owned().into_bytes();
    if let Some(b) = tampered.get_mut(cookie.len() / 2) {
        *b = if *b == b'A' { b'B' } else { b'A' };
    }
    let tampered = String::from_utf8(tampered).unwrap_or_default();
    expect(
        "protected with a tampered session",
        get(protected, Some(&tampered)).await,
        401,
        None,
    );
}

async fn send(url: String, req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("self-check {url}: {e}")));
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn shutdown_signal(max: Duration) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
        () = tokio::time::sleep(max) => eprintln!("load_target: stopping after {} s", max.as_secs()),
    }
}

fn main() {
    let base: u16 = std::env::var("LOAD_PORT")
        .ok()
        .map_or(Ok(18080), |p| p.parse())
        .unwrap_or_else(|_| fail("LOAD_PORT must be a port number"));
    let max_secs: u64 = std::env::var("LOAD_TARGET_MAX_SECS")
        .ok()
        .map_or(Ok(900), |s| s.parse())
        .unwrap_or_else(|_| fail("LOAD_TARGET_MAX_SECS must be a number of seconds"));
    let (Some(p_cookie), Some(p_protected)) = (base.checked_add(1), base.checked_add(2)) else {
        fail("LOAD_PORT is too high");
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("runtime: {e}")));
    runtime.block_on(async move {
        let now = unix_now();
        let s = realistic_session(now).unwrap_or_else(|e| fail(&e));
        let json_len = serde_json::to_vec(&s).map_or(0, |v| v.len());
        let sealed = session_cookie(&s, now).await.unwrap_or_else(|e| fail(&e));
        let (cookie, chunks, sealed) = (sealed.header, sealed.chunks, sealed.sealed_len);

        let protected = protected_app(&format!("http://127.0.0.1:{p_protected}"))
            .await
            .unwrap_or_else(|e| fail(&e));
        let urls = [
            serve("bare", base, bare_app()).await,
            serve("cookie", p_cookie, cookie_app()).await,
            serve("protected", p_protected, protected).await,
        ];
        self_check(&urls, &cookie, cookie.len()).await;

        println!(
            "session JSON {json_len} B, sealed {sealed} B, {chunks} cookie chunks, Cookie header {} B",
            cookie.len()
        );
        for (name, url) in ["bare", "cookie", "protected"].iter().zip(&urls) {
            println!("{name} {url}");
        }
        println!("cookie-header {cookie}");
        println!("ready");
        shutdown_signal(Duration::from_secs(max_secs)).await;
    });
}
