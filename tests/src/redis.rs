//! A Redis server for tests: [`TestRedis`].
//!
//! [`TestRedis::start`] uses the server named by `REDIS_URL` when it is set (`.ci/run` starts
//! one for the whole run), and otherwise spawns its own `redis-server` on a free loopback port
//! (no persistence), waiting until it answers. [`TestRedis::spawn`] always spawns a
//! dedicated server, for tests that kill and restart it. [`TestRedis::spawn_tls`] spawns a
//! TLS-only one (`rediss://`), whose certificate is signed by the test CA
//! [`EMU_TLS_CA_PEM`](crate::auth0::EMU_TLS_CA_PEM). [`TestRedis::spawn_persistent`] spawns one
//! that keeps its data across a kill and restart. [`TestRedis::spawn_cluster`] spawns a Redis
//! Cluster of three primaries ([`TestRedisCluster`]).
//!
//! A spawned server is killed when its [`TestRedis`] is dropped, and also when this process
//! goes away: it runs under a small `bash` guard that kills it once the guard's stdin (a pipe
//! from this process) closes.
//!
//! Tests that share one server keep apart by key prefix: [`unique_prefix`].
//!
//! `redis-server` comes from Debian's `redis-server` package (`.ci/run` installs it). When
//! it is missing and `REDIS_URL` is unset, the fixture panics: Redis tests never skip.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// How long a spawned server may take to come up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports tried when a freshly chosen port is taken before the server binds it.
const SPAWN_ATTEMPTS: usize = 5;

/// Runs `redis-server "$@"` and SIGKILLs it when stdin reaches EOF (the owner closed the pipe
/// or died). Exits with the server's status when the server exits by itself.
const GUARD_SCRIPT: &str = r#"
exec 3<&0
redis-server "$@" </dev/null &
pid=$!
{ cat <&3 >/dev/null; kill -9 "$pid" 2>/dev/null; } &
exec 2>/dev/null  # no "Killed" job notice
wait "$pid"
"#;

const INSTALL_HINT: &str = "the Redis tests need `redis-server` (Debian: `apt-get install -y redis-server`, \
     which .ci/run does) or REDIS_URL naming a running server";

/// A Redis server for one test (or the shared one named by `REDIS_URL`).
#[derive(Debug)]
pub struct TestRedis {
    url: String,
    server: Option<Server>,
    /// The data directory of a [`spawn_persistent`](Self::spawn_persistent) server.
    _scratch: Option<ScratchDir>,
}

#[derive(Debug)]
struct Server {
    port: u16,
    guard: Option<Child>,
    /// For a TLS-only server: its certificate files and control socket.
    tls: Option<TlsFiles>,
    /// More `redis-server` arguments (after, so overriding, the defaults).
    extra: Vec<std::ffi::OsString>,
}

/// A temporary directory holding a TLS server's certificate, key and CA (PEM), and the Unix
/// socket through which readiness is checked in plain Redis (the TCP port speaks only TLS).
/// Removed on drop.
#[derive(Debug)]
struct TlsFiles {
    dir: PathBuf,
}

impl TlsFiles {
    fn create() -> Self {
        let dir = std::env::temp_dir().join(format!("test-redis-tls-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("creating the TLS test directory");
        for (name, pem) in [
            ("server.pem", crate::auth0::SERVER_CERT_PEM),
            ("server.key", crate::auth0::SERVER_KEY_PEM),
            ("ca.pem", crate::auth0::EMU_TLS_CA_PEM),
        ] {
            std::fs::write(dir.join(name), pem).expect("writing a TLS test file");
        }
        Self { dir }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// `redis-server` arguments: TLS on `port`, no plain TCP port, the control socket.
    fn args(&self, port: &str) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> =
            ["--port", "0", "--tls-port", port, "--tls-auth-clients", "no"]
                .iter()
                .map(Into::into)
                .collect();
        for (flag, name) in [
            ("--tls-cert-file", "server.pem"),
            ("--tls-key-file", "server.key"),
            ("--tls-ca-cert-file", "ca.pem"),
        ] {
            args.push(flag.into());
            args.push(self.dir.join(name).into());
        }
        args.extend([
            "--unixsocket".into(),
            self.socket().into(),
            "--unixsocketperm".into(),
            "700".into(),
        ]);
        args
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TestRedis {
    /// The server named by `REDIS_URL`, or a new `redis-server` of this test's own.
    ///
    /// # Panics
    ///
    /// When `REDIS_URL` is unset and `redis-server` cannot be started.
    pub async fn start() -> Self {
        match std::env::var("REDIS_URL") {
            Ok(url) if !url.trim().is_empty() => Self {
                url,
                server: None,
                _scratch: None,
            },
            _ => Self::spawn().await,
        }
    }

    /// A new `redis-server` of this test's own on a free loopback port, even when
    /// `REDIS_URL` is set.
    ///
    /// # Panics
    ///
    /// When `redis-server` is not installed or does not come up within 10 s.
    pub async fn spawn() -> Self {
        check_installed();
        for _ in 0..SPAWN_ATTEMPTS {
            let port = free_port();
            let mut server = Server {
                port,
                guard: None,
                tls: None,
                extra: Vec::new(),
            };
            if server.launch().await {
                return Self {
                    url: format!("redis://127.0.0.1:{port}"),
                    server: Some(server),
                    _scratch: None,
                };
            }
        }
        panic!("redis-server did not start after {SPAWN_ATTEMPTS} attempts (ports taken?)");
    }

    /// A new TLS-only `redis-server` of this test's own on a free loopback port: its URL is
    /// `rediss://127.0.0.1:{port}`, its certificate (for `127.0.0.1` and `localhost`) is signed
    /// by [`EMU_TLS_CA_PEM`](crate::auth0::EMU_TLS_CA_PEM), and it asks clients for no
    /// certificate. The port does not speak plain Redis. [`flush_prefix`](Self::flush_prefix)
    /// and [`layout`] do not work with it.
    ///
    /// # Panics
    ///
    /// When `redis-server` is not installed, was built without TLS, or does not come up
    /// within 10 s.
    pub async fn spawn_tls() -> Self {
        check_installed();
        for _ in 0..SPAWN_ATTEMPTS {
            let port = free_port();
            let mut server = Server {
                port,
                guard: None,
                tls: Some(TlsFiles::create()),
                extra: Vec::new(),
            };
            if server.launch().await {
                return Self {
                    url: format!("rediss://127.0.0.1:{port}"),
                    server: Some(server),
                    _scratch: None,
                };
            }
        }
        panic!(
            "TLS redis-server did not start after {SPAWN_ATTEMPTS} attempts (ports taken, or no TLS support?)"
        );
    }

    /// Like [`spawn`](Self::spawn), but the server keeps its data across
    /// [`kill`](Self::kill) and [`restart`](Self::restart): an append-only file written on
    /// every command (`--appendonly yes --appendfsync always`) in a directory of its own, which
    /// the restarted server loads. For tests of an outage that must not lose sessions.
    ///
    /// # Panics
    ///
    /// As [`spawn`](Self::spawn).
    pub async fn spawn_persistent() -> Self {
        check_installed();
        let dir = ScratchDir::create("test-redis-aof");
        for _ in 0..SPAWN_ATTEMPTS {
            let port = free_port();
            let mut server = Server {
                port,
                guard: None,
                tls: None,
                extra: vec![
                    "--appendonly".into(),
                    "yes".into(),
                    "--appendfsync".into(),
                    "always".into(),
                    "--dir".into(),
                    dir.path.clone().into(),
                ],
            };
            if server.launch().await {
                return Self {
                    url: format!("redis://127.0.0.1:{port}"),
                    server: Some(server),
                    _scratch: Some(dir),
                };
            }
        }
        panic!("redis-server did not start after {SPAWN_ATTEMPTS} attempts (ports taken?)");
    }

    /// A Redis Cluster of three primaries (no replicas) of this test's own, on free loopback
    /// ports: three `redis-server --cluster-enabled yes` processes (each under the same kill
    /// guard as [`spawn`](Self::spawn)), joined by `redis-cli --cluster create`; returns once
    /// every node reports `cluster_state:ok`. Each node keeps its data in an append-only file,
    /// so [`TestRedisCluster::restart`] brings a killed node back with it. Killed on drop.
    /// Never skips.
    ///
    /// # Panics
    ///
    /// When `redis-server` or `redis-cli` is missing, or the cluster is not up within 30 s.
    pub async fn spawn_cluster() -> TestRedisCluster {
        check_installed();
        let dir = ScratchDir::create("test-redis-cluster");
        let mut nodes = Vec::new();
        while nodes.len() < CLUSTER_NODES {
            let mut started = None;
            for _ in 0..SPAWN_ATTEMPTS {
                let port = free_cluster_port();
                let mut server = Server {
                    port,
                    guard: None,
                    tls: None,
                    // Persistent (as `spawn_persistent`), so a node killed and restarted by a
                    // test comes back with its data and its place in the cluster.
                    extra: vec![
                        "--cluster-enabled".into(),
                        "yes".into(),
                        "--cluster-config-file".into(),
                        dir.path.join(format!("nodes-{port}.conf")).into(),
                        "--cluster-node-timeout".into(),
                        "2000".into(),
                        "--appendonly".into(),
                        "yes".into(),
                        "--appendfsync".into(),
                        "always".into(),
                        "--appenddirname".into(),
                        format!("aof-{port}").into(),
                        "--dir".into(),
                        dir.path.clone().into(),
                    ],
                };
                if server.launch().await {
                    started = Some(server);
                    break;
                }
            }
            nodes.push(started.unwrap_or_else(|| {
                panic!("cluster redis-server did not start after {SPAWN_ATTEMPTS} attempts")
            }));
        }
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running redis-cli --cluster create: {e}; {INSTALL_HINT}"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = TestRedisCluster { nodes, _dir: dir };
        cluster.wait_ok().await;
        cluster
    }

    /// The server's URL (`redis://…`, or `rediss://…` from [`spawn_tls`](Self::spawn_tls)).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port of a spawned server; `None` for the `REDIS_URL` one.
    #[must_use]
    pub fn port(&self) -> Option<u16> {
        self.server.as_ref().map(|s| s.port)
    }

    /// Kills the spawned server (SIGKILL) and waits until it is gone.
    ///
    /// # Panics
    ///
    /// For the shared `REDIS_URL` server, which this fixture does not own.
    pub fn kill(&mut self) {
        self.owned().stop();
    }

    /// Starts the spawned server again on the same port: empty, except for a
    /// [`spawn_persistent`](Self::spawn_persistent) one, which reloads its data.
    ///
    /// # Panics
    ///
    /// For the shared `REDIS_URL` server, or when the server does not come back within 10 s.
    pub async fn restart(&mut self) {
        let server = self.owned();
        server.stop();
        assert!(
            server.launch().await,
            "redis-server did not restart on port {}",
            server.port
        );
    }

    /// Deletes every key that starts with `prefix` (which must hold no glob characters);
    /// returns how many.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached.
    pub async fn flush_prefix(&self, prefix: &str) -> usize {
        let client = ::redis::Client::open(self.url.as_str()).expect("Redis URL");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to Redis");
        let mut cursor = 0_u64;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .expect("SCAN");
            if !keys.is_empty() {
                deleted += ::redis::cmd("DEL")
                    .arg(&keys)
                    .query_async::<usize>(&mut conn)
                    .await
                    .expect("DEL");
            }
            if next == 0 {
                return deleted;
            }
            cursor = next;
        }
    }

    fn owned(&mut self) -> &mut Server {
        self.server
            .as_mut()
            .expect("the REDIS_URL server is shared; use TestRedis::spawn for a server of your own")
    }
}

impl Server {
    /// Starts `redis-server` on `self.port`; `false` when it exits before answering (port
    /// taken).
    async fn launch(&mut self) -> bool {
        let port = self.port.to_string();
        let dir = std::env::temp_dir();
        // Names this server, so that one of another test that won the same port is not
        // mistaken for it (nothing is ever saved to this file).
        let tag = format!("test-redis-{:016x}.rdb", rand::random::<u64>());
        let listen: Vec<std::ffi::OsString> = match &self.tls {
            Some(tls) => tls.args(&port),
            None => vec!["--port".into(), port.clone().into()],
        };
        let guard = Command::new("bash")
            .arg("-c")
            .arg(GUARD_SCRIPT)
            .arg("redis-guard")
            .args(listen)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning", "--logfile", ""])
            .args(["--dbfilename", &tag])
            .arg("--dir")
            .arg(&dir)
            .args(&self.extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning bash for redis-server: {e}; {INSTALL_HINT}"));
        self.guard = Some(guard);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let up = match &self.tls {
                Some(tls) => answers_unix(tls.socket(), &tag).await,
                None => answers(self.port, &tag).await,
            };
            if up {
                return true;
            }
            let exited = self
                .guard
                .as_mut()
                .is_some_and(|g| g.try_wait().ok().flatten().is_some());
            if exited {
                self.stop();
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not come up within {STARTUP_TIMEOUT:?}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Kills the server and reaps its guard.
    fn stop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        // Closing the guard's stdin makes it SIGKILL the server and exit.
        drop(guard.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = guard.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = guard.kill();
        let _ = guard.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How many primaries [`TestRedis::spawn_cluster`] starts.
const CLUSTER_NODES: usize = 3;

/// A Redis Cluster of three primaries for one test, from [`TestRedis::spawn_cluster`];
/// killed when dropped.
#[derive(Debug)]
pub struct TestRedisCluster {
    nodes: Vec<Server>,
    _dir: ScratchDir,
}

impl TestRedisCluster {
    /// The nodes' URLs (`redis://127.0.0.1:{port}`), seeds for a cluster client.
    #[must_use]
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// A plain connection to node `i` (no cluster routing), e.g. to list the keys it holds.
    ///
    /// # Panics
    ///
    /// When the node cannot be reached.
    pub async fn node(&self, i: usize) -> ::redis::aio::MultiplexedConnection {
        ::redis::Client::open(self.urls()[i].as_str())
            .expect("node URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to a cluster node")
    }

    /// Deletes every key that starts with `prefix` (no glob characters) on every node; returns
    /// how many.
    ///
    /// # Panics
    ///
    /// When a node cannot be reached or a command fails.
    pub async fn flush_prefix(&self, prefix: &str) -> usize {
        let mut deleted = 0;
        for (node, key) in layout::cluster_keys(self, &format!("{prefix}*")).await {
            let mut conn = self.node(node).await;
            // One key at a time: a node's keys are in many slots.
            deleted += ::redis::cmd("DEL")
                .arg(&key)
                .query_async::<usize>(&mut conn)
                .await
                .expect("DEL");
        }
        deleted
    }

    /// Kills node `i` (SIGKILL) and waits until it is gone.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].stop();
    }

    /// Starts node `i` again on its port, with its data and cluster configuration, and waits
    /// until every node reports `cluster_state:ok` again.
    ///
    /// # Panics
    ///
    /// When the node does not come back, or the cluster is not ok within 30 s.
    pub async fn restart(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.stop();
        assert!(
            node.launch().await,
            "cluster node on port {} did not restart",
            node.port
        );
        self.wait_ok().await;
    }

    /// Waits until every node reports `cluster_state:ok`.
    async fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for url in self.urls() {
            let client = ::redis::Client::open(url.as_str()).expect("node URL");
            loop {
                let info = match client.get_multiplexed_async_connection().await {
                    Ok(mut conn) => ::redis::cmd("CLUSTER")
                        .arg("INFO")
                        .query_async::<String>(&mut conn)
                        .await
                        .unwrap_or_default(),
                    Err(_) => String::new(),
                };
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "Redis Cluster node {url} not ok within 30 s: {info}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// How many nodes the cluster has.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never: a cluster has nodes (for clippy's `len_without_is_empty`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// A temporary directory, removed on drop.
#[derive(Debug)]
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn create(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{name}-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&path).expect("creating a test directory");
        Self { path }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A loopback port that was free a moment ago, with its cluster bus port (`port + 10000`) free
/// too.
fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port + 10_000))).is_ok()
        {
            return port;
        }
    }
}

/// A random key prefix (`t:<hex>:`), so tests sharing a server never see each other's keys.
#[must_use]
pub fn unique_prefix() -> String {
    format!("t:{:016x}:", rand::random::<u64>())
}

/// Whether the Redis server on `127.0.0.1:port` is up and is the one named `tag` (its
/// `dbfilename`).
async fn answers(port: u16, tag: &str) -> bool {
    let Ok(Ok(stream)) = tokio::time::timeout(
        Duration::from_millis(500),
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)),
    )
    .await
    else {
        return false;
    };
    names(stream, tag).await
}

/// Whether the Redis server on the Unix socket `path` is up and is the one named `tag`.
async fn answers_unix(path: PathBuf, tag: &str) -> bool {
    let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_millis(500), UnixStream::connect(path)).await
    else {
        return false;
    };
    names(stream, tag).await
}

/// Whether the Redis server at the other end of `stream` answers with `dbfilename` `tag`.
async fn names(mut stream: impl AsyncRead + AsyncWrite + Unpin, tag: &str) -> bool {
    let attempt = async {
        stream.write_all(b"CONFIG GET dbfilename\r\n").await.ok()?;
        let mut reply = Vec::new();
        let mut buf = [0_u8; 256];
        while reply.len() < 4096 {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            reply.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&reply).contains(tag) {
                return Some(());
            }
        }
        None
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Some(()))
    )
}

fn check_installed() {
    match Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("`redis-server --version` failed ({status}); {INSTALL_HINT}"),
        Err(e) if e.kind() == ErrorKind::NotFound => panic!("redis-server not found; {INSTALL_HINT}"),
        Err(e) => panic!("running redis-server: {e}; {INSTALL_HINT}"),
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a loopback port")
}

/// Reads of the `RedisBackend` data layout (`{prefix}s:{<id>}` hashes, the id in braces as a
/// Redis Cluster hash tag; `{prefix}sid:` and `{prefix}sub:` index sets), for tests that check
/// more than the `SessionBackend` contract.
pub mod layout {
    use std::collections::{BTreeMap, BTreeSet};

    use redis::aio::MultiplexedConnection;

    use super::{TestRedis, TestRedisCluster};

    /// A plain connection to `redis`, beside the backend under test.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached.
    pub async fn raw(redis: &TestRedis) -> MultiplexedConnection {
        redis::Client::open(redis.url())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("raw connection")
    }

    /// Every key matching `pattern` (a `SCAN MATCH` glob).
    ///
    /// # Panics
    ///
    /// When a command fails.
    pub async fn keys_with_prefix(conn: &mut MultiplexedConnection, pattern: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut cursor = 0_u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(conn)
                .await
                .expect("SCAN");
            out.extend(batch);
            if next == 0 {
                return out;
            }
            cursor = next;
        }
    }

    /// `PTTL key`: milliseconds left, `-1` without a TTL, `-2` when absent.
    ///
    /// # Panics
    ///
    /// When the command fails.
    pub async fn pttl(conn: &mut MultiplexedConnection, key: &str) -> i64 {
        redis::cmd("PTTL").arg(key).query_async(conn).await.expect("PTTL")
    }

    /// `SMEMBERS key`.
    ///
    /// # Panics
    ///
    /// When the command fails.
    pub async fn smembers(conn: &mut MultiplexedConnection, key: &str) -> BTreeSet<String> {
        redis::cmd("SMEMBERS")
            .arg(key)
            .query_async(conn)
            .await
            .expect("SMEMBERS")
    }

    /// The id, `sid` and `sub` of the session hash `key` under `prefix`, which must also hold
    /// the sealed value `v`.
    ///
    /// # Panics
    ///
    /// When a field is missing or not UTF-8, or the command fails.
    async fn session_hash(
        conn: &mut MultiplexedConnection,
        prefix: &str,
        key: &str,
    ) -> (String, String, String) {
        let id = key
            .strip_prefix(&format!("{prefix}s:{{"))
            .and_then(|k| k.strip_suffix('}'))
            .expect("session key")
            .to_owned();
        let fields: BTreeMap<String, Vec<u8>> = redis::cmd("HGETALL")
            .arg(key)
            .query_async(conn)
            .await
            .expect("HGETALL");
        let field = |name: &str| {
            String::from_utf8(
                fields
                    .get(name)
                    .unwrap_or_else(|| panic!("{key} lacks {name}"))
                    .clone(),
            )
            .expect("utf-8 field")
        };
        assert!(fields.contains_key("v"), "{key} lacks v");
        (id, field("sid"), field("sub"))
    }

    /// Checks the layout's invariants under `prefix`: every session hash has `v`, `sid`, `sub`
    /// and a TTL, is a member of both its indexes, and those indexes live at least as long.
    /// With `strict`, every index member is also a live session indexed under that key (no
    /// stale members, which only expiry may leave). Returns the number of sessions.
    ///
    /// # Panics
    ///
    /// When an invariant does not hold or a command fails.
    pub async fn check_consistent(conn: &mut MultiplexedConnection, prefix: &str, strict: bool) -> usize {
        let sessions = keys_with_prefix(conn, &format!("{prefix}s:*")).await;
        let mut owners: BTreeMap<String, (String, String)> = BTreeMap::new();
        for key in &sessions {
            let (id, s, u) = session_hash(conn, prefix, key).await;
            let ttl = pttl(conn, key).await;
            assert!(ttl > 0, "{key} has no TTL ({ttl})");
            for index in [format!("{prefix}sid:{s}"), format!("{prefix}sub:{u}")] {
                assert!(
                    smembers(conn, &index).await.contains(&id),
                    "{id} missing from {index}"
                );
                let index_ttl = pttl(conn, &index).await;
                assert!(
                    index_ttl + 50 >= ttl,
                    "{index} expires before {key}: {index_ttl} < {ttl}"
                );
            }
            owners.insert(id, (s, u));
        }
        if strict {
            for index in keys_with_prefix(conn, &format!("{prefix}s[iu][db]:*")).await {
                let (field, value) = if let Some(v) = index.strip_prefix(&format!("{prefix}sid:")) {
                    (0, v.to_owned())
                } else {
                    (
                        1,
                        index
                            .strip_prefix(&format!("{prefix}sub:"))
                            .expect("index key")
                            .to_owned(),
                    )
                };
                for id in smembers(conn, &index).await {
                    let owner = owners
                        .get(&id)
                        .unwrap_or_else(|| panic!("stale member {id} in {index}"));
                    let indexed = if field == 0 { &owner.0 } else { &owner.1 };
                    assert_eq!(indexed, &value, "{id} is in {index} but indexed under {indexed}");
                }
            }
        }
        sessions.len()
    }
    /// Every key matching `pattern` on every node of `cluster`, with the node's index.
    ///
    /// # Panics
    ///
    /// When a node cannot be reached or a command fails.
    pub async fn cluster_keys(cluster: &TestRedisCluster, pattern: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for i in 0..cluster.len() {
            let mut conn = cluster.node(i).await;
            out.extend(
                keys_with_prefix(&mut conn, pattern)
                    .await
                    .into_iter()
                    .map(|k| (i, k)),
            );
        }
        out
    }

    /// A command's answer from the node of `cluster` that serves `key` (the others answer
    /// `MOVED`).
    ///
    /// # Panics
    ///
    /// When no node answers.
    pub async fn cluster_query<T: redis::FromRedisValue>(
        cluster: &TestRedisCluster,
        key: &str,
        cmd: &redis::Cmd,
    ) -> T {
        for i in 0..cluster.len() {
            let mut conn = cluster.node(i).await;
            if let Ok(v) = cmd.query_async::<T>(&mut conn).await {
                return v;
            }
        }
        panic!("no node of the cluster answers for {key}");
    }

    /// [`check_consistent`] for a cluster, without `strict` (in cluster mode the writes that
    /// touch several slots go in steps and leave stale index members): every session hash has
    /// `v`, `sid`, `sub` and a TTL, and is a member of both its indexes, which live at least as
    /// long. Returns the number of sessions.
    ///
    /// # Panics
    ///
    /// When an invariant does not hold or a command fails.
    pub async fn check_cluster_consistent(cluster: &TestRedisCluster, prefix: &str) -> usize {
        let sessions = cluster_keys(cluster, &format!("{prefix}s:*")).await;
        for (node, key) in &sessions {
            let mut conn = cluster.node(*node).await;
            let (id, sid, sub) = session_hash(&mut conn, prefix, key).await;
            let ttl = pttl(&mut conn, key).await;
            if ttl == -2 {
                continue; // expired while looking
            }
            assert!(ttl > 0, "{key} has no TTL ({ttl})");
            for index in [format!("{prefix}sid:{sid}"), format!("{prefix}sub:{sub}")] {
                let mut ismember = redis::cmd("SISMEMBER");
                ismember.arg(&index).arg(&id);
                assert!(
                    cluster_query::<bool>(cluster, &index, &ismember).await,
                    "{id} missing from {index}"
                );
                let mut cmd = redis::cmd("PTTL");
                cmd.arg(&index);
                let index_ttl: i64 = cluster_query(cluster, &index, &cmd).await;
                assert!(
                    index_ttl + 50 >= ttl,
                    "{index} expires before {key}: {index_ttl} < {ttl}"
                );
            }
        }
        sessions.len()
    }
}
