//! The test identity provider: `tests/idp/idp.mjs` (panva `oidc-provider` 9.x)
//! run as a child process on `127.0.0.1`.
//!
//! [`TestIdp::start`] installs the Node dependencies on first use (`npm ci`,
//! serialised across threads and processes), spawns `node idp.mjs`, waits for
//! its `READY <issuer>` line and fetches discovery. The process is killed when
//! the [`TestIdp`] is dropped, and also exits on its own when this process
//! goes away (its stdin closes).
//!
//! The provider's clients are fixed; their ids and secrets are the constants
//! of this module. Every client uses the authorization code grant with
//! mandatory PKCE (S256) and may use refresh tokens; `offline_access` yields a
//! refresh token without `prompt=consent`, and the Auth0-style `audience`
//! parameter selects the API ([`API_AUDIENCE`]) when `resource` is absent.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde::Deserialize;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;
use url::Url;

/// `client_id` of the confidential client that authenticates with `client_secret_basic`.
pub const CONF_BASIC_ID: &str = "conf-basic";
/// Secret of [`CONF_BASIC_ID`].
pub const CONF_BASIC_SECRET: &str = "conf-basic-secret-0123456789abcdef";
/// `client_id` of the confidential client that authenticates with `client_secret_post`.
pub const CONF_POST_ID: &str = "conf-post";
/// Secret of [`CONF_POST_ID`].
pub const CONF_POST_SECRET: &str = "conf-post-secret-0123456789abcdef";
/// `client_id` of the confidential client that authenticates with `private_key_jwt`
/// (keys: [`conf_jwt_rsa_pem`] for RS256/PS256, [`conf_jwt_es256_pem`] for ES256).
pub const CONF_JWT_ID: &str = "conf-jwt";
/// `kid` under which the provider knows the RSA key of [`CONF_JWT_ID`].
pub const CONF_JWT_RSA_KID: &str = "conf-jwt-rsa";
/// `kid` under which the provider knows the EC P-256 key of [`CONF_JWT_ID`].
pub const CONF_JWT_ES256_KID: &str = "conf-jwt-es256";
/// `client_id` of the public client (`token_endpoint_auth_method: none`).
pub const PUBLIC_ID: &str = "public";
/// Identifier (and access token `aud`) of the one API resource server; pass it
/// as `audience` (Auth0 style) or `resource`.
pub const API_AUDIENCE: &str = "https://api.example.test/";
/// Scopes the API resource server knows.
pub const API_SCOPES: &str = "read:data write:data";
/// `authorization_details` types the provider accepts (any object of these types).
pub const RAR_TYPES: [&str; 2] = ["payment_initiation", "account_information"];
/// A redirect URI registered for every client. Nothing listens there: use it
/// with [`TestIdp::login`], which stops at the redirect back to the client.
pub const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1:1/callback";
/// A post-logout redirect URI registered for every client.
pub const DEFAULT_POST_LOGOUT_REDIRECT_URI: &str = "http://127.0.0.1:3000/";

/// How long [`TestIdp::start`] waits for the provider to report that it listens.
// Generous: on a loaded 2-core CI machine several providers may start at once.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);
/// Provider processes tried before a suite gives up.
const STARTUP_ATTEMPTS: u32 = 2;
/// How long an `npm ci` may take before the fixture gives up.
const NPM_TIMEOUT: Duration = Duration::from_secs(600);
/// A lock directory older than this is taken to be left over from a crashed process.
const STALE_LOCK_AGE: Duration = Duration::from_secs(600);
/// Most HTTP requests [`TestIdp::login`] makes before giving up.
const LOGIN_MAX_STEPS: usize = 16;
/// Most bytes of the provider's stderr kept for diagnostics.
const STDERR_KEEP: usize = 64 * 1024;
/// Password typed into the dev login form (any value is accepted).
const LOGIN_PASSWORD: &str = "test-password";

/// PEM (PKCS#8) of the RSA 2048 private key registered for [`CONF_JWT_ID`]
/// (RS256 and PS256 client assertions; JWKS `kid` [`CONF_JWT_RSA_KID`]).
pub fn conf_jwt_rsa_pem() -> String {
    include_str!("../idp/keys/conf-jwt.private.pem").to_owned()
}

/// PEM (PKCS#8) of the EC P-256 private key registered for [`CONF_JWT_ID`]
/// (ES256 client assertions; JWKS `kid` [`CONF_JWT_ES256_KID`]).
pub fn conf_jwt_es256_pem() -> String {
    include_str!("../idp/keys/conf-jwt-es256.private.pem").to_owned()
}

/// Request parameters as recorded by the provider: name → value (the first
/// value when a parameter was repeated).
pub type Params = BTreeMap<String, String>;

/// Startup options of a [`TestIdp`].
#[derive(Debug, Clone, Default)]
pub struct IdpOptions {
    /// Extra redirect URIs registered for every client (in addition to the defaults
    /// `http://127.0.0.1:3000/auth/callback`, `http://localhost:3000/auth/callback`
    /// and [`DEFAULT_REDIRECT_URI`]).
    pub redirect_uris: Vec<String>,
    /// Extra post-logout redirect URIs registered for every client (in addition to
    /// `http://127.0.0.1:3000/` and `http://localhost:3000/`).
    pub post_logout_redirect_uris: Vec<String>,
    /// `backchannel_logout_uri` of [`CONF_BASIC_ID`] (with `backchannel_logout_session_required`).
    pub backchannel_logout_uri: Option<String>,
    /// Access token lifetime in seconds (default 3600).
    pub access_token_ttl: Option<u64>,
    /// Port to listen on (default: a free one chosen by the OS).
    pub port: Option<u16>,
}

/// What the provider recorded (`GET /__test/requests`) since start or the last
/// [`TestIdp::reset`], oldest first.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Recorded {
    /// Query (GET) or form (POST) parameters of each authorization endpoint request,
    /// as sent by the client (before the provider adjusted anything).
    pub authorize: Vec<Params>,
    /// Form parameters of each pushed authorization request (secrets included).
    pub par: Vec<Params>,
    /// Each token endpoint request.
    pub token: Vec<RecordedClientCall>,
    /// Each token revocation request.
    #[serde(default)]
    pub revocation: Vec<RecordedClientCall>,
    /// Query or form parameters of each end-session (RP-initiated logout) request.
    #[serde(default)]
    pub end_session: Vec<Params>,
}

impl Recorded {
    /// How many token endpoint requests were `refresh_token` grants.
    #[must_use]
    pub fn refreshes(&self) -> usize {
        self.token
            .iter()
            .filter(|t| t.params.get("grant_type").map(String::as_str) == Some("refresh_token"))
            .count()
    }
}

/// One recorded client-authenticated call (token or revocation endpoint).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RecordedClientCall {
    /// Form parameters, secrets and `client_assertion` included.
    pub params: Params,
    /// Scheme of the `Authorization` header (e.g. `"Basic"`), `None` without one.
    pub auth_header: Option<String>,
    /// The whole `Authorization` header value, `None` without one.
    #[serde(default)]
    pub auth_header_value: Option<String>,
    /// The client the provider authenticated, `None` when client authentication failed.
    #[serde(default)]
    pub client_id: Option<String>,
    /// HTTP status of the provider's response.
    #[serde(default)]
    pub status: u16,
    /// The `error` code of the provider's response, `None` on success.
    #[serde(default)]
    pub error: Option<String>,
}

/// A running test OpenID Provider (see the [module docs](self)).
#[derive(Debug)]
pub struct TestIdp {
    issuer: String,
    discovery: serde_json::Value,
    http: reqwest::Client,
    stderr: Arc<Mutex<String>>,
    child: Child,
    // Held open so that the provider exits (IDP_EXIT_WITH_STDIN) if this process dies.
    _stdin: Option<ChildStdin>,
}

impl TestIdp {
    /// Starts a provider with default [`IdpOptions`].
    pub async fn start() -> TestIdp {
        TestIdp::start_with(IdpOptions::default()).await
    }

    /// Starts a provider; panics (with the provider's stderr) if it does not come up.
    pub async fn start_with(opts: IdpOptions) -> TestIdp {
        let dir = idp_dir();
        ensure_node_modules(&dir).await;

        let mut attempt = 0;
        let (child, stderr, stdin, issuer) = loop {
            attempt += 1;
            let node = std::env::var("IDP_NODE").unwrap_or_else(|_| "node".to_owned());
            let mut cmd = Command::new(&node);
            cmd.arg("idp.mjs")
                .current_dir(&dir)
                .env("PORT", opts.port.unwrap_or(0).to_string())
                .env("IDP_REDIRECT_URIS", opts.redirect_uris.join(","))
                .env(
                    "IDP_POST_LOGOUT_REDIRECT_URIS",
                    opts.post_logout_redirect_uris.join(","),
                )
                .env("IDP_EXIT_WITH_STDIN", "1")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            match &opts.backchannel_logout_uri {
                Some(uri) => cmd.env("IDP_BACKCHANNEL_LOGOUT_URI", uri),
                None => cmd.env_remove("IDP_BACKCHANNEL_LOGOUT_URI"),
            };
            match opts.access_token_ttl {
                Some(ttl) => cmd.env("IDP_ACCESS_TOKEN_TTL", ttl.to_string()),
                None => cmd.env_remove("IDP_ACCESS_TOKEN_TTL"),
            };

            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("test IdP: cannot run `{node} idp.mjs` in {dir:?}: {e}"));

            let stderr = Arc::new(Mutex::new(String::new()));
            let (ready_tx, ready_rx) = oneshot::channel::<String>();
            drain_stdout(child.stdout.take().expect("piped stdout"), ready_tx);
            let stderr_done = drain_stderr(child.stderr.take().expect("piped stderr"), stderr.clone());
            let stdin = child.stdin.take();

            let ready = tokio::time::timeout(STARTUP_TIMEOUT, ready_rx).await;
            match ready {
                Ok(Ok(issuer)) => break (child, stderr, stdin, issuer),
                failure => {
                    let why = match failure {
                        Err(_) => format!("no READY line within {STARTUP_TIMEOUT:?}"),
                        _ => "the process closed stdout without a READY line".to_owned(),
                    };
                    let _ = child.start_kill();
                    let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                    let _ = tokio::time::timeout(Duration::from_secs(2), stderr_done).await;
                    let message = format!(
                        "test IdP failed to start ({why}; exit: {status:?})\n--- stderr ---\n{}",
                        stderr.lock().unwrap()
                    );
                    // A provider that hangs before listening (seen once in CI under load) gets
                    // one fresh process before the suite gives up.
                    assert!(attempt < STARTUP_ATTEMPTS, "{message}");
                    eprintln!("{message}\nretrying ({attempt}/{STARTUP_ATTEMPTS})");
                }
            }
        };

        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client");

        let discovery_url = format!("{issuer}/.well-known/openid-configuration");
        let discovery: serde_json::Value = match http.get(&discovery_url).send().await {
            Ok(resp) if resp.status().is_success() => resp.json().await.expect("discovery JSON"),
            other => panic!(
                "test IdP: GET {discovery_url} failed: {other:?}\n--- stderr ---\n{}",
                stderr.lock().unwrap()
            ),
        };
        let discovered = discovery["issuer"]
            .as_str()
            .expect("discovery has an issuer")
            .to_owned();
        assert_eq!(
            discovered, issuer,
            "test IdP: discovery issuer differs from the READY line"
        );

        TestIdp {
            issuer: discovered,
            discovery,
            http,
            stderr,
            child,
            _stdin: stdin,
        }
    }

    /// The issuer identifier exactly as discovery states it (`http://127.0.0.1:<port>`,
    /// no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The discovery document (`/.well-known/openid-configuration`).
    pub fn discovery(&self) -> &serde_json::Value {
        &self.discovery
    }

    /// An endpoint URL from discovery, e.g. `endpoint("token_endpoint")`;
    /// panics if discovery lacks it.
    pub fn endpoint(&self, name: &str) -> &str {
        self.discovery[name]
            .as_str()
            .unwrap_or_else(|| panic!("test IdP discovery has no {name}"))
    }

    /// `authorization_endpoint` from discovery.
    pub fn authorization_endpoint(&self) -> &str {
        self.endpoint("authorization_endpoint")
    }

    /// `token_endpoint` from discovery.
    pub fn token_endpoint(&self) -> &str {
        self.endpoint("token_endpoint")
    }

    /// `pushed_authorization_request_endpoint` from discovery.
    pub fn par_endpoint(&self) -> &str {
        self.endpoint("pushed_authorization_request_endpoint")
    }

    /// `end_session_endpoint` from discovery.
    pub fn end_session_endpoint(&self) -> &str {
        self.endpoint("end_session_endpoint")
    }

    /// Everything the provider wrote to stderr so far (the last 64 KiB).
    pub fn stderr_output(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// A fresh "browser" for [`TestIdp::login_with`]: keeps cookies, follows no
    /// redirects, ignores proxy settings.
    pub fn browser() -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client")
    }

    /// Logs `user` in through the provider's dev login and consent forms,
    /// starting at `authorize_url`, with a fresh cookie jar. Returns the URL the
    /// provider finally redirects to outside itself: the client's redirect URI
    /// with `code`, `state` and `iss` (or `error`).
    pub async fn login(&self, authorize_url: &str, user: &str) -> Url {
        self.login_with(&TestIdp::browser(), authorize_url, user).await
    }

    /// Like [`TestIdp::login`] with the caller's client, so that a second login
    /// can reuse the provider session kept in its cookies. `http` must keep
    /// cookies and must not follow redirects (see [`TestIdp::browser`]).
    ///
    /// Forms are submitted as they come (login: `login=<user>` and any password;
    /// consent: as is), in any number and order. With `response_mode=form_post`
    /// the returned URL is the form's action with its fields as query parameters.
    pub async fn login_with(&self, http: &reqwest::Client, authorize_url: &str, user: &str) -> Url {
        let mut url = Url::parse(authorize_url)
            .unwrap_or_else(|e| panic!("login: bad authorize URL {authorize_url:?}: {e}"));
        let mut form: Option<Vec<(String, String)>> = None;
        let mut trail: Vec<String> = Vec::new();

        for _ in 0..LOGIN_MAX_STEPS {
            trail.push(format!("{} {url}", if form.is_some() { "POST" } else { "GET" }));
            let request = match form.take() {
                Some(fields) => http.post(url.clone()).form(&fields),
                None => http.get(url.clone()),
            };
            let resp = request
                .send()
                .await
                .unwrap_or_else(|e| panic!("login: request to {url} failed: {e}"));
            let status = resp.status();

            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_else(|| panic!("login: {status} from {url} without Location"));
                let next = url
                    .join(location)
                    .unwrap_or_else(|e| panic!("login: bad Location {location:?}: {e}"));
                if !self.is_on_idp(&next) {
                    return next;
                }
                url = next;
                continue;
            }

            let is_html = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/html"));
            let body = resp.text().await.unwrap_or_default();
            if !status.is_success() || !is_html {
                panic!(
                    "login: unexpected {status} from {url}\n--- steps ---\n{}\n--- body ---\n{body}",
                    trail.join("\n")
                );
            }

            let Some(html_form) = find_post_form(&body) else {
                panic!(
                    "login: no POST form on the page at {url}\n--- steps ---\n{}\n--- body ---\n{body}",
                    trail.join("\n")
                );
            };
            let action = match html_form.action.as_deref() {
                Some(action) if !action.is_empty() => url
                    .join(action)
                    .unwrap_or_else(|e| panic!("login: bad form action {action:?}: {e}")),
                _ => url.clone(),
            };

            let mut fields = html_form.fields;
            let has_login = fields.iter().any(|(name, _)| name == "login");
            if has_login {
                for (name, value) in &mut fields {
                    match name.as_str() {
                        "login" => user.clone_into(value),
                        "password" => LOGIN_PASSWORD.clone_into(value),
                        _ => {}
                    }
                }
                if !fields.iter().any(|(name, _)| name == "password") {
                    fields.push(("password".to_owned(), LOGIN_PASSWORD.to_owned()));
                }
            }

            if !self.is_on_idp(&action) {
                // response_mode=form_post: the page posts the result to the client.
                let mut result = action;
                result.query_pairs_mut().extend_pairs(&fields);
                return result;
            }
            url = action;
            form = Some(fields);
        }

        panic!(
            "login: still on the provider after {LOGIN_MAX_STEPS} requests\n--- steps ---\n{}\n--- provider stderr ---\n{}",
            trail.join("\n"),
            self.stderr_output()
        );
    }

    /// The requests recorded by the provider (`GET /__test/requests`).
    pub async fn requests(&self) -> Recorded {
        let url = format!("{}/__test/requests", self.issuer);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
        resp.json().await.expect("/__test/requests JSON")
    }

    /// Clears the provider's request records (`POST /__test/reset`).
    pub async fn reset(&self) {
        let url = format!("{}/__test/reset", self.issuer);
        let resp = self
            .http
            .post(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert!(resp.status().is_success(), "POST {url}: {}", resp.status());
    }

    /// RP-initiated logout at the provider as a browser would do it: opens `end_session_url`
    /// (with `id_token_hint` etc.) with `http`, confirms the sign-out form with
    /// `logout=yes`, and returns where the provider finally redirects (the
    /// `post_logout_redirect_uri`, or a provider page). Back-channel logout requests to
    /// registered clients are sent by the provider during the confirmation.
    pub async fn end_session(&self, http: &reqwest::Client, end_session_url: &str) -> Url {
        let url = Url::parse(end_session_url).unwrap_or_else(|e| panic!("end_session: bad URL: {e}"));
        let page = http
            .get(url.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = page.status();
        let body = page.text().await.unwrap_or_default();
        assert!(status.is_success(), "end_session: {status}\n{body}");
        let form = find_post_form(&body).unwrap_or_else(|| panic!("end_session: no confirm form\n{body}"));
        let action = url
            .join(form.action.as_deref().unwrap_or(""))
            .expect("form action");
        let mut fields = form.fields;
        fields.push(("logout".into(), "yes".into()));
        let resp = http
            .post(action.clone())
            .form(&fields)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {action}: {e}"));
        let mut next = resp;
        for _ in 0..5 {
            let Some(loc) = next
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return next.url().clone();
            };
            let target = next.url().join(loc).expect("location");
            if !self.is_on_idp(&target) {
                return target;
            }
            next = http
                .get(target.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {target}: {e}"));
        }
        next.url().clone()
    }

    /// A JWS signed RS256 with the provider's own signing key (test-only route): for logout
    /// tokens that break exactly one rule.
    pub async fn sign(&self, header: serde_json::Value, claims: serde_json::Value) -> String {
        let url = format!("{}/__test/sign", self.issuer);
        let resp = self
            .http
            .post(&url)
            .json(&serde_json::json!({ "header": header, "claims": claims }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert!(resp.status().is_success(), "POST {url}: {}", resp.status());
        resp.text().await.expect("signed token")
    }

    fn is_on_idp(&self, url: &Url) -> bool {
        Url::parse(&self.issuer).is_ok_and(|issuer| issuer.origin() == url.origin())
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        // kill_on_drop does this too; doing it here makes the intent explicit and
        // also covers a child that was moved out of the runtime's reach.
        let _ = self.child.start_kill();
    }
}

/// `tests/idp`, where `idp.mjs` and its `package.json` live.
fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("idp")
}

fn node_modules_ready(dir: &Path) -> bool {
    dir.join("node_modules/oidc-provider/package.json").is_file()
}

/// Removes the inter-process lock directory when dropped.
struct LockDir(PathBuf);

impl Drop for LockDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lock_is_stale(lock: &Path) -> bool {
    std::fs::metadata(lock)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > STALE_LOCK_AGE)
}

/// Runs `npm ci` in `dir` unless `node_modules/oidc-provider` is already there.
///
/// Threads of one process are serialised by a mutex, processes (parallel test
/// binaries) by a lock directory (`mkdir` is atomic). The install happens in a
/// private staging directory whose `node_modules` is then renamed into place,
/// so a half-finished install is never mistaken for a complete one.
async fn ensure_node_modules(dir: &Path) {
    static IN_PROCESS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    if node_modules_ready(dir) {
        return;
    }
    let _guard = IN_PROCESS.lock().await;
    if node_modules_ready(dir) {
        return;
    }

    let lock_path = dir.join(".npm-install.lock");
    let deadline = Instant::now() + NPM_TIMEOUT + Duration::from_secs(60);
    let _lock = loop {
        match std::fs::create_dir(&lock_path) {
            Ok(()) => break LockDir(lock_path.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if node_modules_ready(dir) {
                    return;
                }
                if lock_is_stale(&lock_path) {
                    let _ = std::fs::remove_dir_all(&lock_path);
                    continue;
                }
                assert!(
                    Instant::now() < deadline,
                    "test IdP: timed out waiting for another process's npm install ({lock_path:?})"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("test IdP: cannot create {lock_path:?}: {e}"),
        }
    };
    if node_modules_ready(dir) {
        return;
    }

    let staging = dir.join(format!(".npm-staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).expect("create npm staging directory");
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(dir.join(file), staging.join(file))
            .unwrap_or_else(|e| panic!("test IdP: copy {file} into {staging:?}: {e}"));
    }

    let npm = std::env::var("IDP_NPM").unwrap_or_else(|_| "npm".to_owned());
    let run = Command::new(&npm)
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&staging)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(NPM_TIMEOUT, run).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!("test IdP: cannot run `{npm} ci` in {staging:?}: {e}"),
        Err(_) => panic!("test IdP: `{npm} ci` took longer than {NPM_TIMEOUT:?}"),
    };
    assert!(
        output.status.success(),
        "test IdP: `{npm} ci` failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let installed = staging.join("node_modules");
    if let Err(e) = std::fs::rename(&installed, dir.join("node_modules")) {
        assert!(
            node_modules_ready(dir),
            "test IdP: cannot move {installed:?} into place: {e}"
        );
    }
    let _ = std::fs::remove_dir_all(&staging);
    assert!(
        node_modules_ready(dir),
        "test IdP: npm ci did not install oidc-provider"
    );
}

fn push_capped(buf: &Mutex<String>, line: &str) {
    let mut buf = buf.lock().unwrap();
    buf.push_str(line);
    buf.push('\n');
    if buf.len() > STDERR_KEEP {
        let mut cut = buf.len() - STDERR_KEEP;
        while !buf.is_char_boundary(cut) {
            cut += 1;
        }
        buf.drain(..cut);
    }
}

/// Reads the child's stdout until EOF on a plain thread (so the pipe never
/// fills, whatever happens to the async runtime) and reports the READY line.
fn drain_stdout(stdout: tokio::process::ChildStdout, ready: oneshot::Sender<String>) {
    let file = std::fs::File::from(stdout.into_owned_fd().expect("stdout fd"));
    std::thread::Builder::new()
        .name("test-idp-stdout".to_owned())
        .spawn(move || {
            let mut ready = Some(ready);
            for line in BufReader::new(file).lines() {
                let Ok(line) = line else { break };
                if let Some(issuer) = line.strip_prefix("READY ")
                    && let Some(tx) = ready.take()
                {
                    let _ = tx.send(issuer.trim().to_owned());
                }
            }
        })
        .expect("spawn stdout thread");
}

/// Collects the child's stderr (last [`STDERR_KEEP`] bytes) on a plain thread;
/// the returned receiver resolves at EOF.
fn drain_stderr(stderr: tokio::process::ChildStderr, buf: Arc<Mutex<String>>) -> oneshot::Receiver<()> {
    let file = std::fs::File::from(stderr.into_owned_fd().expect("stderr fd"));
    let echo = std::env::var_os("IDP_ECHO_STDERR").is_some();
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("test-idp-stderr".to_owned())
        .spawn(move || {
            for line in BufReader::new(file).lines() {
                let Ok(line) = line else { break };
                if echo {
                    eprintln!("[test-idp] {line}");
                }
                push_capped(&buf, &line);
            }
            let _ = done_tx.send(());
        })
        .expect("spawn stderr thread");
    done_rx
}

// ---------------------------------------------------------------------------
// Minimal HTML form scraping (enough for oidc-provider's dev interaction pages)
// ---------------------------------------------------------------------------

/// A `<form method="post">` found on a page.
#[derive(Debug)]
struct HtmlForm {
    action: Option<String>,
    fields: Vec<(String, String)>,
}

/// Finds the first `<form>` whose method is POST and collects its named
/// `<input>` fields (submit buttons excluded).
fn find_post_form(html: &str) -> Option<HtmlForm> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(start) = find_tag(&lower, "form", from) {
        let (attrs, after_tag) = tag_attributes(html, start)?;
        let end = lower[after_tag..]
            .find("</form")
            .map_or(html.len(), |i| after_tag + i);
        from = after_tag;

        let method = attr(&attrs, "method").unwrap_or_default();
        if !method.eq_ignore_ascii_case("post") {
            continue;
        }

        let mut fields = Vec::new();
        let mut pos = after_tag;
        while let Some(input) = find_tag(&lower[..end], "input", pos) {
            let Some((input_attrs, next)) = tag_attributes(html, input) else {
                break;
            };
            pos = next;
            let kind = attr(&input_attrs, "type").unwrap_or_else(|| "text".to_owned());
            if ["submit", "button", "reset", "image"]
                .iter()
                .any(|k| kind.eq_ignore_ascii_case(k))
            {
                continue;
            }
            if let Some(name) = attr(&input_attrs, "name") {
                fields.push((name, attr(&input_attrs, "value").unwrap_or_default()));
            }
        }
        return Some(HtmlForm {
            action: attr(&attrs, "action"),
            fields,
        });
    }
    None
}

/// Index of the next `<name` tag opening at or after `from` in lowercased HTML.
fn find_tag(lower: &str, name: &str, from: usize) -> Option<usize> {
    let needle = format!("<{name}");
    let mut at = from;
    while let Some(i) = lower.get(at..)?.find(&needle) {
        let start = at + i;
        let next = lower.as_bytes().get(start + needle.len()).copied();
        if next.is_none_or(|b| b.is_ascii_whitespace() || b == b'>' || b == b'/') {
            return Some(start);
        }
        at = start + needle.len();
    }
    None
}

/// Parses the attributes of the tag starting at `start` (`<name ...>`); returns
/// them (names lowercased, values entity-decoded) and the index after `>`.
fn tag_attributes(html: &str, start: usize) -> Option<(Vec<(String, String)>, usize)> {
    let bytes = html.as_bytes();
    let mut i = start + 1;
    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' && bytes[i] != b'/' {
        i += 1;
    }

    let mut attrs = Vec::new();
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return None;
        }
        if bytes[i] == b'>' {
            return Some((attrs, i + 1));
        }

        let name_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !matches!(bytes[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let name = html[name_start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }

        let mut value = String::new();
        if bytes.get(i) == Some(&b'=') {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            match bytes.get(i) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let value_start = i + 1;
                    let len = html[value_start..].find(quote as char)?;
                    value = decode_entities(&html[value_start..value_start + len]);
                    i = value_start + len + 1;
                }
                Some(_) => {
                    let value_start = i;
                    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                        i += 1;
                    }
                    value = decode_entities(&html[value_start..i]);
                }
                None => return None,
            }
        }
        if !name.is_empty() {
            attrs.push((name, value));
        }
    }
}

fn attr(attrs: &[(String, String)], name: &str) -> Option<String> {
    attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

/// Decodes the character references HTML templates commonly emit.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let entity = &rest[1..semi];
            let ch = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => entity.strip_prefix('#').and_then(|num| {
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => num.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }),
            };
            ch.map(|c| (c, semi))
        });
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{decode_entities, find_post_form};

    #[test]
    fn decodes_entities() {
        assert_eq!(
            decode_entities("a&amp;b&#x2F;c&#47;d&quot;&lt;&gt;&bogus; & x"),
            "a&b/c/d\"<>&bogus; & x"
        );
    }

    #[test]
    fn finds_login_form() {
        let html = r#"<html><body><formation></formation>
            <form method="get" action="/nope"><input name="q"></form>
            <FORM autocomplete="off" action="http://127.0.0.1:9/interaction/x&#x2F;login" method="POST">
              <input type="hidden" name="prompt" value="login"/>
              <input required type="text" name="login" placeholder="Enter any login" autofocus="on">
              <input required type=password name=password placeholder="and password" >
              <button type="submit">Sign-in</button>
              <input type="submit" name="go" value="Go">
            </FORM></body></html>"#;
        let form = find_post_form(html).expect("form");
        assert_eq!(
            form.action.as_deref(),
            Some("http://127.0.0.1:9/interaction/x/login")
        );
        let names: Vec<_> = form
            .fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(names, [("prompt", "login"), ("login", ""), ("password", "")]);
    }

    #[test]
    fn no_post_form() {
        assert!(find_post_form("<p>nothing</p><form action=x></form>").is_none());
    }
}
