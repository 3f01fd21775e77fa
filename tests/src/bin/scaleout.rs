//! The driver of `scripts/load-scaleout` (issue 14, item 4): two instances of the real
//! `examples/redis` binary on one Redis, two instances of the cookie-session `examples/quickstart`
//! binary, all against the real test IdP (`tests/idp`), so that every session comes from a real
//! login.
//!
//! It measures two things itself and writes them as Markdown to `$SCALEOUT_WORK/report.md`:
//!
//! - **invalidation across instances** (Redis sessions): `SCALEOUT_N` times, log in through
//!   instance A, check that B serves the session (`GET /profile` → 200), log out on A
//!   (`GET /auth/logout`), then poll B with the same cookie until it refuses (401 or a redirect to
//!   the login), timing from A's logout response to B's refusal;
//! - **a refresh storm** (both kinds of session): log in, wait until the access token is due for
//!   refresh, then `SCALEOUT_STORM` concurrent `GET /token` spread over both instances, and count
//!   the `refresh_token` grants the IdP received.
//!
//! Then it logs one session in per kind for the throughput rounds, prints (stdout, one per line)
//! `instance <name> <base URL> <pid>`, `redis-pid <pid>`, `cookie-header <redis|cookie> <header>`
//! and `ready`, and keeps everything up until its stdin closes (or `SCALEOUT_MAX_SECS` pass); the
//! script runs wrk meanwhile. Every process it starts stops with it: the IdP and Redis through
//! their fixtures, each example under a small shell guard that stops it (SIGTERM) once the
//! driver's pipe to the guard closes, however the driver ends.
//!
//! Settings (environment, set by the script): `SCALEOUT_REDIS_BIN`, `SCALEOUT_QUICKSTART_BIN`
//! (release binaries), `SCALEOUT_WORK` (a directory for logs and the report), `SCALEOUT_N` (200),
//! `SCALEOUT_STORM` (100), `SCALEOUT_TOKEN_FRESH` (seconds an access token stays fresh, 5),
//! `SCALEOUT_INVALIDATION_TIMEOUT_MS` (5000), `SCALEOUT_SERVER_CPU` (pin the examples and Redis to
//! this CPU with `taskset`; unset: no pinning), `SCALEOUT_MAX_SECS` (3600). Only 127.0.0.1 is used.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use auth_tests::TestRedis;
use auth_tests::idp::{CONF_BASIC_ID, CONF_BASIC_SECRET, IdpOptions, TestIdp};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, COOKIE, LOCATION};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// The examples' `token_refresh_leeway` (the library default; they do not change it): a token
/// that expires within this is refreshed before use.
const REFRESH_LEEWAY_SECS: u64 = 60;
/// How long an example may take to answer `GET /` after it starts.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `"$@"` (stdout to stderr), prints its pid, and sends it SIGTERM (SIGKILL 5 s later) once
/// this guard's stdin reaches EOF: the driver closed the pipe or is gone. When the program ends,
/// the guard stops that watcher at once, so no signal can reach a later process with the pid.
const GUARD_SCRIPT: &str = r#"
exec 3<&0
"$@" </dev/null >&2 3<&- &
pid=$!
echo "$pid"
{ cat <&3 >/dev/null; kill "$pid"; sleep 5; kill -9 "$pid"; } >/dev/null 2>&1 &
watcher=$!
wait "$pid"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

#[derive(Debug)]
struct Settings {
    redis_bin: PathBuf,
    quickstart_bin: PathBuf,
    work: PathBuf,
    n: usize,
    storm: usize,
    token_fresh: u64,
    invalidation_timeout: Duration,
    server_cpu: Option<String>,
    max_secs: u64,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn number(name: &str, default: u64) -> u64 {
    let value = env_or(name, &default.to_string());
    value
        .parse()
        .unwrap_or_else(|_| fail(&format!("{name} must be a whole number, not `{value}`")))
}

fn required(name: &str) -> PathBuf {
    std::env::var_os(name)
        .map(PathBuf::from)
        .unwrap_or_else(|| fail(&format!("{name} is required (run scripts/load-scaleout)")))
}

fn fail(message: &str) -> ! {
    eprintln!("scaleout: {message}");
    std::process::exit(1);
}

impl Settings {
    fn from_env() -> Self {
        let to_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        let s = Self {
            redis_bin: required("SCALEOUT_REDIS_BIN"),
            quickstart_bin: required("SCALEOUT_QUICKSTART_BIN"),
            work: required("SCALEOUT_WORK"),
            n: to_usize(number("SCALEOUT_N", 200)),
            storm: to_usize(number("SCALEOUT_STORM", 100)),
            token_fresh: number("SCALEOUT_TOKEN_FRESH", 5),
            invalidation_timeout: Duration::from_millis(number("SCALEOUT_INVALIDATION_TIMEOUT_MS", 5000)),
            server_cpu: std::env::var("SCALEOUT_SERVER_CPU")
                .ok()
                .filter(|c| !c.is_empty()),
            max_secs: number("SCALEOUT_MAX_SECS", 3600),
        };
        if s.n == 0 || s.storm == 0 || s.token_fresh == 0 {
            fail("SCALEOUT_N, SCALEOUT_STORM and SCALEOUT_TOKEN_FRESH must be at least 1");
        }
        s
    }
}

/// One example process (under its guard) serving `base`.
struct Instance {
    name: &'static str,
    base: String,
    pid: u32,
    guard: Child,
    guard_stdin: Option<ChildStdin>,
}

impl Instance {
    /// Starts `bin` with `env` under the guard (pinned when asked), and waits until `GET /` answers.
    async fn start(
        name: &'static str,
        bin: &Path,
        port: u16,
        env: &[(&str, String)],
        settings: &Settings,
    ) -> Instance {
        let base = format!("http://127.0.0.1:{port}");
        let log_path = settings.work.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)
            .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", log_path.display())));
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(GUARD_SCRIPT).arg("scaleout-guard");
        if let Some(cpu) = &settings.server_cpu {
            cmd.args(["taskset", "-c", cpu]);
        }
        cmd.arg(bin)
            .env("APP_BASE_URL", &base)
            .env_remove("LISTEN_ADDR")
            .env_remove("AUTH0_DOMAIN")
            .env_remove("AUTH_DEBUG")
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut guard = cmd
            .spawn()
            .unwrap_or_else(|e| fail(&format!("cannot start {}: {e}", bin.display())));
        let guard_stdin = guard.stdin.take();
        let mut lines = BufReader::new(guard.stdout.take().expect("piped stdout")).lines();
        let pid = match tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await {
            Ok(Ok(Some(line))) => line.trim().parse().ok(),
            _ => None,
        }
        .unwrap_or_else(|| fail(&format!("{name}: the guard reported no pid")));
        let mut instance = Instance {
            name,
            base,
            pid,
            guard,
            guard_stdin,
        };
        instance.wait_ready(&log_path).await;
        instance
    }

    async fn wait_ready(&mut self, log: &Path) {
        let http = plain_client();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(r) = http.get(format!("{}/", self.base)).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            if let Ok(Some(status)) = self.guard.try_wait() {
                fail(&format!(
                    "{} exited ({status}) before serving; its log:\n{}",
                    self.name,
                    std::fs::read_to_string(log).unwrap_or_default()
                ));
            }
            if Instant::now() > deadline {
                fail(&format!(
                    "{} did not answer GET / within {STARTUP_TIMEOUT:?}",
                    self.name
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Closes the guard's stdin (SIGTERM to the example) and waits for the guard.
    async fn stop(mut self) {
        drop(self.guard_stdin.take());
        if tokio::time::timeout(Duration::from_secs(10), self.guard.wait())
            .await
            .is_err()
        {
            // Still running after SIGTERM (the guard has not reaped it, so the pid is its own).
            eprintln!("scaleout: {} did not stop within 10 s; killing it", self.name);
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.guard.wait()).await;
        }
    }
}

/// A client without cookies, redirects or proxies.
fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| fail(&format!("cannot bind a loopback port: {e}")))
}

/// A random 32-byte hex secret (`AUTH0_SECRET`), shared by the two instances of one kind.
fn secret() -> String {
    (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

/// Logs `user` in through `base`'s `/auth/login` with a fresh browser; returns the `Cookie`
/// header of the session cookies the callback set.
async fn login(idp: &TestIdp, base: &str, user: &str) -> String {
    let http = TestIdp::browser();
    let start = http
        .get(format!("{base}/auth/login"))
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("GET {base}/auth/login: {e}")));
    let authorize = match (start.status(), start.headers().get(LOCATION)) {
        (StatusCode::FOUND, Some(l)) => l.to_str().unwrap_or_default().to_owned(),
        (status, _) => fail(&format!(
            "GET {base}/auth/login answered {status}, not a redirect"
        )),
    };
    let callback = idp.login_with(&http, &authorize, user).await;
    if !callback.as_str().starts_with(base) {
        fail(&format!("the IdP sent the login to {callback}, not to {base}"));
    }
    let done = http
        .get(callback.as_str())
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("GET callback: {e}")));
    let cookie = auth_tests::app::session_cookie_header(&done);
    if cookie.is_empty() {
        fail(&format!(
            "the callback on {base} ({}) set no session cookie",
            done.status()
        ));
    }
    cookie
}

/// `GET url` with the session cookie (JSON accepted): the status.
async fn status(http: &reqwest::Client, url: &str, cookie: &str) -> Result<StatusCode, String> {
    http.get(url)
        .header(COOKIE, cookie)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map(|r| r.status())
        .map_err(|e| format!("GET {url}: {e}"))
}

/// Refused as logged out: 401, or a redirect (to the login).
fn refused(s: StatusCode) -> bool {
    s == StatusCode::UNAUTHORIZED || s.is_redirection()
}

/// Nearest-rank percentile of sorted durations.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Item 2: `n` times log in on `a`, check `b` serves it, log out on `a`, poll `b` until refused.
async fn invalidation(idp: &TestIdp, a: &Instance, b: &Instance, s: &Settings) -> String {
    let http = plain_client();
    let profile_b = format!("{}/profile", b.base);
    let mut latencies = Vec::with_capacity(s.n);
    let (mut timeouts, mut first_poll, mut polls, mut not_served) = (0_usize, 0_usize, 0_usize, 0_usize);
    let started = Instant::now();
    for i in 0..s.n {
        if i > 0 && i % 50 == 0 {
            eprintln!("scaleout: invalidation {i}/{}…", s.n);
        }
        let cookie = login(idp, &a.base, &format!("inval-{i}")).await;
        // Twice: an instance with a cache of opened sessions serves the second from it.
        let mut served = status(&http, &profile_b, &cookie)
            .await
            .unwrap_or_else(|e| fail(&e));
        if served == StatusCode::OK {
            served = status(&http, &profile_b, &cookie)
                .await
                .unwrap_or_else(|e| fail(&e));
        }
        if served != StatusCode::OK {
            not_served += 1;
            continue;
        }
        let out = status(&http, &format!("{}/auth/logout", a.base), &cookie)
            .await
            .unwrap_or_else(|e| fail(&e));
        let logged_out = Instant::now();
        if !out.is_redirection() {
            fail(&format!(
                "GET /auth/logout on {} answered {out}, not a redirect",
                a.name
            ));
        }
        let mut n_polls = 0;
        loop {
            let st = status(&http, &profile_b, &cookie)
                .await
                .unwrap_or_else(|e| fail(&e));
            n_polls += 1;
            if refused(st) {
                latencies.push(logged_out.elapsed());
                if n_polls == 1 {
                    first_poll += 1;
                }
                break;
            }
            if st != StatusCode::OK {
                fail(&format!(
                    "GET /profile on {} answered {st} after a logout",
                    b.name
                ));
            }
            if logged_out.elapsed() > s.invalidation_timeout {
                timeouts += 1;
                break;
            }
        }
        polls += n_polls;
    }
    latencies.sort();
    let measured = latencies.len();
    let line = if measured == 0 {
        "| Redis sessions | 0 | – | – | – | – |".to_owned()
    } else {
        format!(
            "| Redis sessions | {measured} | {} | {} | {} | {first_poll} of {measured} |",
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 99.0)),
            ms(*latencies.last().expect("non-empty"))
        )
    };
    let mut out = format!(
        "### Invalidation across instances\n\n\
         {} times: log in through {} (a fresh session), `GET /profile` twice on {} (200; a cache would hold \
         it now), `GET /auth/logout` \
         on {}, then `GET /profile` on {} with the same cookie, back to back, until it answers 401 or a \
         redirect; the time runs from {}'s logout response to {}'s refusal (it includes that last \
         request). Took {:.0} s.\n\n\
         | sessions | measured | p50 | p99 | max | refused at the first request |\n|---|---:|---:|---:|---:|---:|\n{line}\n",
        s.n,
        a.name,
        b.name,
        a.name,
        b.name,
        a.name,
        b.name,
        started.elapsed().as_secs_f64()
    );
    if timeouts > 0 || not_served > 0 {
        out.push_str(&format!(
            "\n**Not refused within {} ms: {timeouts}**; not served by {} before the logout: {not_served}.\n",
            s.invalidation_timeout.as_millis(),
            b.name
        ));
    }
    out.push_str(&format!(
        "\nRequests to {} after the logouts: {polls} in all (the refusal included).\n",
        b.name
    ));
    out
}

/// `GET {base}/token` with the cookie on a fresh client (a browser whose requests a balancer
/// spreads): status and token.
async fn token(base: &str, cookie: &str) -> (u16, Option<String>) {
    let Ok(r) = plain_client()
        .get(format!("{base}/token"))
        .header(COOKIE, cookie)
        .send()
        .await
    else {
        return (0, None);
    };
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    (status, body["access_token"].as_str().map(str::to_owned))
}

/// Item 3 for one kind of session: returns a table row and notes.
async fn storm(idp: &TestIdp, label: &str, a: &Instance, b: &Instance, s: &Settings) -> (String, String) {
    let logged_in = Instant::now();
    let cookie = login(idp, &a.base, &format!("storm-{label}")).await;
    let before = idp.requests().await.refreshes();
    let (sa, ta) = token(&a.base, &cookie).await;
    let (sb, tb) = token(&b.base, &cookie).await;
    let mut notes = String::new();
    if (sa, sb) != (200, 200) || ta.is_none() || ta != tb {
        notes.push_str(&format!(
            "{label}: before expiry, `/token` answered {sa} on {} and {sb} on {} ({}).\n",
            a.name,
            b.name,
            if ta == tb {
                "same token"
            } else {
                "different tokens"
            }
        ));
    }
    let early = idp.requests().await.refreshes() - before;
    if early > 0 {
        notes.push_str(&format!(
            "{label}: {early} refresh(es) before the storm: the login took longer than \
             SCALEOUT_TOKEN_FRESH ({} s); raise it.\n",
            s.token_fresh
        ));
    }
    // The token is due for refresh once less than the leeway is left.
    let due = logged_in + Duration::from_secs(s.token_fresh + 1);
    tokio::time::sleep_until(due.into()).await;
    let before = idp.requests().await.refreshes();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(s.storm);
    for i in 0..s.storm {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let cookie = cookie.clone();
        tasks.push(tokio::spawn(async move { token(&base, &cookie).await }));
    }
    let mut statuses = BTreeMap::<u16, usize>::new();
    let mut tokens = std::collections::BTreeSet::new();
    for task in tasks {
        let (st, t) = task.await.unwrap_or((0, None));
        *statuses.entry(st).or_default() += 1;
        if let Some(t) = t
            && Some(&t) != ta.as_ref()
        {
            tokens.insert(t);
        }
    }
    let took = started.elapsed();
    let refreshes = idp.requests().await.refreshes() - before;
    let (after_a, _) = token(&a.base, &cookie).await;
    let (after_b, _) = token(&b.base, &cookie).await;
    let answers = statuses
        .iter()
        .map(|(st, n)| {
            if *st == 0 {
                format!("{n} × no answer")
            } else {
                format!("{n} × {st}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let row = format!(
        "| {label} | **{refreshes}** | {answers} | {} | {:.0} ms | {after_a} / {after_b} |",
        tokens.len(),
        took.as_secs_f64() * 1000.0
    );
    if took >= Duration::from_secs(s.token_fresh) {
        notes.push_str(&format!(
            "{label}: the storm took longer than a new token stays fresh ({} s): late requests may \
             refresh again; raise SCALEOUT_TOKEN_FRESH.\n",
            s.token_fresh
        ));
    }
    (row, notes)
}

/// Stops everything when stdin closes (or a line `stop` arrives), or after `max_secs`.
fn spawn_stdin_watch() -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("scaleout-stdin".to_owned())
        .spawn(move || {
            let mut line = String::new();
            loop {
                line.clear();
                match std::io::stdin().read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line.trim() == "stop" => break,
                    Ok(_) => {}
                }
            }
            let _ = tx.send(());
        })
        .expect("spawn the stdin thread");
    rx
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let s = Settings::from_env();
    // Bounded whatever happens: past the deadline the process exits, and with it (their pipes
    // close) the IdP, Redis and every example.
    let max = s.max_secs;
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(max));
        eprintln!("scaleout: SCALEOUT_MAX_SECS ({max} s) passed; stopping");
        std::process::exit(3);
    });
    let stop = spawn_stdin_watch();

    let ports = [free_port(), free_port(), free_port(), free_port()];
    let bases: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    eprintln!("scaleout: starting the test IdP and Redis…");
    let idp = TestIdp::start_with(IdpOptions {
        redirect_uris: bases.iter().map(|b| format!("{b}/auth/callback")).collect(),
        post_logout_redirect_uris: bases.iter().map(|b| format!("{b}/")).collect(),
        access_token_ttl: Some(REFRESH_LEEWAY_SECS + s.token_fresh),
        ..IdpOptions::default()
    })
    .await;
    let redis = TestRedis::spawn().await;
    let redis_pid = redis_pid(redis.url()).await;
    if let Some(cpu) = &s.server_cpu {
        let pinned = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", cpu, &redis_pid.to_string()])
            .stdout(Stdio::null())
            .status();
        if !pinned.is_ok_and(|st| st.success()) {
            fail("cannot pin redis-server with taskset");
        }
    }

    let common = |secret: &str| {
        vec![
            ("OIDC_ISSUER", idp.issuer().to_owned()),
            ("AUTH0_CLIENT_ID", CONF_BASIC_ID.to_owned()),
            ("AUTH0_CLIENT_SECRET", CONF_BASIC_SECRET.to_owned()),
            ("AUTH0_SECRET", secret.to_owned()),
        ]
    };
    let mut redis_env = common(&secret());
    redis_env.push(("REDIS_URL", redis.url().to_owned()));
    let cookie_env = common(&secret());
    eprintln!("scaleout: starting 2 × examples/redis and 2 × examples/quickstart…");
    let ra = Instance::start("redis-a", &s.redis_bin, ports[0], &redis_env, &s).await;
    let rb = Instance::start("redis-b", &s.redis_bin, ports[1], &redis_env, &s).await;
    let ca = Instance::start("cookie-a", &s.quickstart_bin, ports[2], &cookie_env, &s).await;
    let cb = Instance::start("cookie-b", &s.quickstart_bin, ports[3], &cookie_env, &s).await;

    eprintln!("scaleout: invalidation latency ({} logins and logouts)…", s.n);
    let invalidation = invalidation(&idp, &ra, &rb, &s).await;
    eprintln!("scaleout: refresh storms ({} requests each)…", s.storm);
    let (redis_row, redis_notes) = storm(&idp, "Redis sessions", &ra, &rb, &s).await;
    let (cookie_row, cookie_notes) = storm(&idp, "cookie sessions", &ca, &cb, &s).await;
    let report = format!(
        "{invalidation}\n### Refresh storm over two instances\n\n\
         Per kind of session: one login through instance A; `/token` on A and on B (the same \
         token, no refresh); once the access token is due for refresh (the IdP issues \
         {ttl} s tokens and rotates refresh tokens; the examples refresh {leeway} s before \
         expiry), {storm} concurrent `GET /token` with that cookie, alternating A and B, each on its \
         own connection. Refreshes = `refresh_token` grants the IdP received during the storm; \
         target for Redis sessions: exactly 1.\n\n\
         | sessions | refreshes at the IdP | answers | distinct new tokens | storm took | `/token` afterwards on A / B (the login's cookie) |\n\
         |---|---:|---|---:|---:|---|\n{redis_row}\n{cookie_row}\n\n{redis_notes}{cookie_notes}",
        ttl = REFRESH_LEEWAY_SECS + s.token_fresh,
        leeway = REFRESH_LEEWAY_SECS,
        storm = s.storm,
    );
    let report_path = s.work.join("report.md");
    std::fs::write(&report_path, report)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", report_path.display())));

    // The sessions for the throughput rounds (one per kind, sent to both instances).
    let redis_cookie = login(&idp, &ra.base, "load-redis").await;
    let cookie_cookie = login(&idp, &ca.base, "load-cookie").await;
    let http = plain_client();
    for (inst, cookie) in [
        (&ra, &redis_cookie),
        (&rb, &redis_cookie),
        (&ca, &cookie_cookie),
        (&cb, &cookie_cookie),
    ] {
        let st = status(&http, &format!("{}/profile", inst.base), cookie)
            .await
            .unwrap_or_else(|e| fail(&e));
        if st != StatusCode::OK {
            fail(&format!("{} does not serve the load session: {st}", inst.name));
        }
    }
    drop(http);
    let mut out = String::new();
    for inst in [&ra, &rb, &ca, &cb] {
        out.push_str(&format!("instance {} {} {}\n", inst.name, inst.base, inst.pid));
    }
    out.push_str(&format!("redis-pid {redis_pid}\n"));
    out.push_str(&format!("cookie-header redis {redis_cookie}\n"));
    out.push_str(&format!("cookie-header cookie {cookie_cookie}\nready\n"));
    print!("{out}");
    std::io::Write::flush(&mut std::io::stdout()).expect("flush stdout");

    let _ = stop.await;
    for inst in [ra, rb, ca, cb] {
        inst.stop().await;
    }
    drop(redis);
    drop(idp);
}

/// The pid of the Redis server at `url` (`INFO server`).
async fn redis_pid(url: &str) -> u32 {
    let client = redis::Client::open(url).unwrap_or_else(|e| fail(&format!("Redis URL: {e}")));
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| fail(&format!("connect to Redis: {e}")));
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| fail(&format!("INFO server: {e}")));
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| fail("INFO server has no process_id"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::StatusCode;

    #[test]
    fn nearest_rank_percentiles() {
        let ms: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        assert_eq!(super::percentile(&ms, 50.0), Duration::from_millis(100));
        assert_eq!(super::percentile(&ms, 99.0), Duration::from_millis(198));
        assert_eq!(super::percentile(&ms[..1], 99.0), Duration::from_millis(1));
        assert_eq!(super::percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn refusals_are_401_or_a_redirect() {
        assert!(super::refused(StatusCode::UNAUTHORIZED));
        assert!(super::refused(StatusCode::FOUND));
        assert!(!super::refused(StatusCode::OK));
        assert!(!super::refused(StatusCode::INTERNAL_SERVER_ERROR));
    }
}
