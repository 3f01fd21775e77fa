//! A real browser for end-to-end tests: headless Chromium driven over
//! WebDriver (chromedriver) with [`fantoccini`].
//!
//! [`Browser::start`] spawns `chromedriver` on a free loopback port, waits
//! until it answers `GET /status` and opens a WebDriver session that launches
//! Chromium headless with a fresh profile in a temporary directory. Both
//! binaries come from the Debian packages `chromium` and `chromium-driver`
//! (`.ci/run` installs them); when they are missing, [`Browser::start`]
//! panics instead of letting the test pass without a browser.
//!
//! Binaries are looked up as follows:
//!
//! * chromedriver: `$CHROMEDRIVER`, else `/usr/bin/chromedriver`, else `chromedriver` on `PATH`;
//! * Chromium: `$CHROME_BIN`, else `/usr/bin/chromium`, else `chromium` on `PATH`.
//!
//! End a test with [`Browser::close`] to quit Chromium through WebDriver.
//! Dropping a [`Browser`] (e.g. when a test panics) kills chromedriver, which
//! takes Chromium down with it, and removes the temporary directory.
//!
//! ```no_run
//! # async fn demo() {
//! use auth_tests::Browser;
//!
//! let browser = Browser::start().await;
//! browser.goto("http://127.0.0.1:3000/").await;
//! assert!(browser.page_source().await.contains("Welcome"));
//! browser.close().await;
//! # }
//! ```

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::elements::Element;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::process::{Child, Command};
use url::Url;

/// How long chromedriver may take to answer `GET /status` after it was spawned.
const DRIVER_STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long opening the WebDriver session (i.e. launching Chromium) may take.
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`Browser::fill_and_submit_idp_login`] waits to leave the provider.
const IDP_LOGIN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a page may take to load after `goto` or a form submission.
const PAGE_LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two polls of a condition.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Attempts at starting chromedriver (another process may take the chosen port first).
const DRIVER_START_ATTEMPTS: usize = 3;
/// How long dropping a [`Browser`] waits for chromedriver to quit Chromium.
const QUIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Password typed into the dev login form (any value is accepted).
const IDP_LOGIN_PASSWORD: &str = "test-password";
/// Most bytes of chromedriver's log quoted in a panic message.
const LOG_QUOTE_MAX: usize = 16 * 1024;
/// What to do when the binaries are missing.
const INSTALL_HINT: &str = "browser tests need Chromium and chromedriver: install the Debian packages \
     `chromium chromium-driver` (`apt-get install -y chromium chromium-driver`; .ci/run does this), \
     or point CHROME_BIN / CHROMEDRIVER at them";

/// Command-line switches for Chromium. The machine running the tests has no
/// network, so everything that phones home is switched off (otherwise Chromium
/// keeps logging refused connections).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
];

/// A headless Chromium controlled through a WebDriver session (see the [module docs](self)).
#[derive(Debug)]
pub struct Browser {
    client: Client,
    driver: Driver,
}

impl Browser {
    /// Starts chromedriver and Chromium and opens a WebDriver session.
    ///
    /// Panics, with chromedriver's log, if either does not come up; panics with
    /// installation instructions if the binaries are missing.
    pub async fn start() -> Browser {
        let driver_bin = find_chromedriver();
        let chromium_bin = find_chromium();
        let dir = fresh_temp_dir();
        let profile = dir.0.join("profile");
        let mut driver = Driver::spawn(&driver_bin, dir).await;

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|&arg| arg.to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut caps = Capabilities::new();
        caps.insert("browserName".to_owned(), json!("chrome"));
        caps.insert("pageLoadStrategy".to_owned(), json!("normal"));
        caps.insert(
            "timeouts".to_owned(),
            json!({ "implicit": 0, "pageLoad": PAGE_LOAD_TIMEOUT.as_millis() as u64 }),
        );
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": chromium_bin.to_string_lossy(), "args": args }),
        );

        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let client = match tokio::time::timeout(SESSION_TIMEOUT, builder.connect(&driver.url)).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!(
                "browser: cannot open a WebDriver session (Chromium {}): {e}\n--- chromedriver log ---\n{}",
                chromium_bin.display(),
                driver.dir.log_tail()
            ),
            Err(_) => {
                driver.kill();
                panic!(
                    "browser: no WebDriver session within {SESSION_TIMEOUT:?}\n--- chromedriver log ---\n{}",
                    driver.dir.log_tail()
                )
            }
        };
        driver.session = client.session_id().await.ok().flatten();
        Browser { client, driver }
    }

    /// The underlying WebDriver client, for anything the convenience methods lack.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("browser: cannot navigate to {url}: {e}"));
    }

    /// The URL of the current page.
    pub async fn current_url(&self) -> Url {
        self.client
            .current_url()
            .await
            .unwrap_or_else(|e| panic!("browser: cannot read the current URL: {e}"))
    }

    /// The current page's DOM serialized as HTML.
    pub async fn page_source(&self) -> String {
        self.client
            .source()
            .await
            .unwrap_or_else(|e| panic!("browser: cannot read the page source: {e}"))
    }

    /// Logs `user` in on the test IdP's dev interaction pages (see
    /// [`TestIdp`](crate::TestIdp)), starting on the IdP page the browser shows
    /// now (typically right after [`goto`](Browser::goto) to an authorization URL).
    ///
    /// Fills `login` with `user` and any password and submits; submits a consent
    /// form whenever one appears. Returns once the browser has left the IdP's
    /// origin (the origin of the current page when called), with the URL it
    /// landed on; panics, with the page source, if that takes longer than 20 s.
    pub async fn fill_and_submit_idp_login(&self, user: &str) -> Url {
        let start = self.current_url().await;
        let idp_origin = start.origin();
        let deadline = Instant::now() + IDP_LOGIN_TIMEOUT;
        let mut trail = vec![format!("start {start}")];

        loop {
            let url = self.current_url().await;
            if url.origin() != idp_origin {
                return url;
            }
            if Instant::now() >= deadline {
                panic!(
                    "browser: still on the IdP ({url}) after {IDP_LOGIN_TIMEOUT:?}\n\
                     steps: {trail:#?}\n--- page source ---\n{}",
                    self.page_source().await
                );
            }

            if let Some(login) = self.find_optional("form input[name='login']").await {
                let password = self.find_required("form input[name='password']").await;
                let button = self.find_required("form button[type='submit']").await;
                type_into(&login, user).await;
                type_into(&password, IDP_LOGIN_PASSWORD).await;
                trail.push(format!("login form at {url}"));
                self.click_and_wait_for_navigation(&button, deadline).await;
            } else if self
                .find_optional("form input[name='prompt'][value='consent']")
                .await
                .is_some()
            {
                let button = self.find_required("form button[type='submit']").await;
                trail.push(format!("consent form at {url}"));
                self.click_and_wait_for_navigation(&button, deadline).await;
            } else {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    }

    /// Waits until the current page's source contains `needle` and returns it; panics with
    /// the current URL and page source after `timeout`. For pages reached through redirects
    /// or auto-submitted forms (e.g. a `form_post` callback) that settle after a navigation
    /// returned.
    pub async fn wait_for_source(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            // Errors are expected while a navigation is under way.
            if let Ok(source) = self.client.source().await
                && source.contains(needle)
            {
                return source;
            }
            if Instant::now() >= deadline {
                panic!(
                    "browser: no {needle:?} on {} after {timeout:?}\n--- page source ---\n{}",
                    self.current_url().await,
                    self.page_source().await
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Saves a PNG screenshot of the current viewport to `path` (parent
    /// directories are created).
    pub async fn screenshot(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("browser: cannot take a screenshot: {e}"));
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("browser: cannot create {}: {e}", parent.display()));
        }
        std::fs::write(path, png)
            .unwrap_or_else(|e| panic!("browser: cannot write the screenshot to {}: {e}", path.display()));
    }

    /// Ends the WebDriver session (Chromium quits), then stops chromedriver and
    /// removes the temporary profile. Panics if the session cannot be ended.
    pub async fn close(mut self) {
        let result = self.client.clone().close().await;
        if result.is_ok() {
            self.driver.session = None;
        }
        self.driver.stop().await;
        if let Err(e) = result {
            panic!("browser: cannot end the WebDriver session: {e}");
        }
    }

    /// The element matching `css`, `None` if the page has none (or is being
    /// replaced: lookups may fail while a navigation is under way).
    async fn find_optional(&self, css: &str) -> Option<Element> {
        self.client.find(Locator::Css(css)).await.ok()
    }

    /// The element matching `css`; panics with the page source if there is none.
    async fn find_required(&self, css: &str) -> Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!(
                "browser: no `{css}` on {}: {e}\n--- page source ---\n{}",
                self.current_url().await,
                self.page_source().await
            ),
        }
    }

    /// Clicks `button` and waits until another document has replaced the
    /// current one and finished loading, so that no form is submitted twice.
    /// Returns at `deadline` regardless (the caller reports where it got stuck).
    ///
    /// The current document is tagged with a script variable beforehand: element
    /// staleness is no reliable signal, as chromedriver reports some references
    /// into replaced documents as "unknown error" rather than "stale element".
    async fn click_and_wait_for_navigation(&self, button: &Element, deadline: Instant) {
        static PAGE_MARKS: AtomicU32 = AtomicU32::new(0);
        let mark = json!(format!("page-{}", PAGE_MARKS.fetch_add(1, Ordering::Relaxed)));
        self.client
            .execute("window.__authTestsPageMark = arguments[0];", vec![mark.clone()])
            .await
            .unwrap_or_else(|e| panic!("browser: cannot run a script on the page: {e}"));
        button
            .click()
            .await
            .unwrap_or_else(|e| panic!("browser: cannot click the submit button: {e}"));
        while Instant::now() < deadline {
            let probe = self
                .client
                .execute(
                    "return [window.__authTestsPageMark === arguments[0], document.readyState];",
                    vec![mark.clone()],
                )
                .await;
            // Errors are expected while the navigation is under way.
            if let Ok(state) = probe
                && state[0] == json!(false)
                && state[1] == json!("complete")
            {
                return;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// Replaces the value of the text input `element` with `text` by typing it.
async fn type_into(element: &Element, text: &str) {
    element
        .clear()
        .await
        .unwrap_or_else(|e| panic!("browser: cannot clear an input: {e}"));
    element
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("browser: cannot type into an input: {e}"));
}

/// A running chromedriver. Dropping it ends the WebDriver session if one is
/// still open (killing chromedriver alone would leave Chromium running), kills
/// chromedriver, then removes the temporary directory.
#[derive(Debug)]
struct Driver {
    child: Child,
    port: u16,
    url: String,
    /// The open WebDriver session, if any.
    session: Option<String>,
    // Declared after `child`: removed once chromedriver is dead.
    dir: TempDir,
}

impl Driver {
    /// Spawns chromedriver on a free loopback port (retrying with another port
    /// if it exits early) and waits until `GET /status` reports it ready. Its
    /// output goes to `chromedriver.log` in `dir`.
    async fn spawn(bin: &Path, dir: TempDir) -> Driver {
        let log_path = dir.log_path();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("reqwest client for chromedriver's /status");

        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port();
            let log = File::create(&log_path)
                .unwrap_or_else(|e| panic!("browser: cannot create {}: {e}", log_path.display()));
            let log_err = log
                .try_clone()
                .unwrap_or_else(|e| panic!("browser: cannot duplicate a file handle: {e}"));
            let mut child = Command::new(bin)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("browser: cannot run {}: {e}\n{INSTALL_HINT}", bin.display()));
            let url = format!("http://127.0.0.1:{port}");

            let deadline = Instant::now() + DRIVER_STARTUP_TIMEOUT;
            let exited = loop {
                if let Some(status) = child.try_wait().expect("poll chromedriver") {
                    break status;
                }
                if is_ready(&http, &url).await {
                    return Driver {
                        child,
                        port,
                        url,
                        session: None,
                        dir,
                    };
                }
                if Instant::now() >= deadline {
                    let _ = child.start_kill();
                    panic!(
                        "browser: chromedriver did not answer GET {url}/status within \
                         {DRIVER_STARTUP_TIMEOUT:?}\n--- chromedriver log ---\n{}",
                        dir.log_tail()
                    );
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            };
            // Most likely another process took the port meanwhile: try another one.
            if attempt >= DRIVER_START_ATTEMPTS {
                panic!(
                    "browser: chromedriver exited during startup ({exited}), {attempt} attempts\n\
                     --- chromedriver log ---\n{}",
                    dir.log_tail()
                );
            }
        }
    }

    /// Sends SIGKILL to chromedriver (no-op if it already exited).
    fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    /// Ends `session` (chromedriver quits Chromium) with a plain blocking HTTP
    /// request: usable in `drop`, where the async client cannot run. Gives up
    /// silently after [`QUIT_TIMEOUT`].
    fn quit_session_blocking(&self, session: &str) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, QUIT_TIMEOUT) else {
            return;
        };
        let _ = stream.set_write_timeout(Some(QUIT_TIMEOUT));
        let _ = stream.set_read_timeout(Some(QUIT_TIMEOUT));
        let request = format!(
            "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            // chromedriver answers once Chromium is gone; the first bytes are enough.
            let _ = stream.read(&mut [0u8; 512]);
        }
    }

    /// Kills chromedriver and reaps it.
    async fn stop(&mut self) {
        self.kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.quit_session_blocking(&session);
        }
        self.kill();
        // Reap chromedriver (briefly) so that the directory goes away after it.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether the chromedriver at `url` answers `GET /status` with `"ready": true`.
async fn is_ready(http: &reqwest::Client, url: &str) -> bool {
    let Ok(resp) = http.get(format!("{url}/status")).send().await else {
        return false;
    };
    let Ok(body) = resp.json::<serde_json::Value>().await else {
        return false;
    };
    body["value"]["ready"].as_bool() == Some(true)
}

/// A temporary directory (Chromium's profile, chromedriver's log), removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn log_path(&self) -> PathBuf {
        self.0.join("chromedriver.log")
    }

    /// The end of chromedriver's log (its stdout and stderr).
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path())
            .unwrap_or_else(|e| format!("(cannot read the log: {e})"));
        if text.len() <= LOG_QUOTE_MAX {
            return text;
        }
        let mut cut = text.len() - LOG_QUOTE_MAX;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        format!("[...]\n{}", &text[cut..])
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The chromedriver binary to run; panics with installation instructions if there is none.
fn find_chromedriver() -> PathBuf {
    find_binary("CHROMEDRIVER", "/usr/bin/chromedriver", "chromedriver")
}

/// The Chromium binary to launch; panics with installation instructions if there is none.
fn find_chromium() -> PathBuf {
    find_binary("CHROME_BIN", "/usr/bin/chromium", "chromium")
}

/// `$env_var` if set (it must exist), else `default` if it exists, else `name` on `PATH`.
fn find_binary(env_var: &str, default: &str, name: &str) -> PathBuf {
    if let Some(value) = std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(value);
        if path.is_file() {
            return path;
        }
        panic!(
            "browser: {env_var}={} does not exist\n{INSTALL_HINT}",
            path.display()
        );
    }
    let default = Path::new(default);
    if default.is_file() {
        return default.to_owned();
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "browser: `{name}` not found ({env_var} unset, no {}, not on PATH)\n{INSTALL_HINT}",
                default.display()
            )
        })
}

/// A loopback TCP port that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap_or_else(|e| panic!("browser: cannot bind a loopback port: {e}"));
    listener
        .local_addr()
        .expect("local address of a bound listener")
        .port()
}

/// A new, empty directory under the system temporary directory.
fn fresh_temp_dir() -> TempDir {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir();
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("auth-tests-browser-{}-{n}-{nanos}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return TempDir(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("browser: cannot create a directory under {}: {e}", base.display()),
        }
    }
}
