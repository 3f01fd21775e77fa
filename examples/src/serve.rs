//! Shared start-up for the example binaries: logging, listening address, graceful shutdown.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use url::Url;

/// Logs to stderr at `info` (`debug` when `AUTH_DEBUG=1`). Tokens and cookies are never logged.
pub fn init_logging() {
    let level = if std::env::var("AUTH_DEBUG").is_ok_and(|v| v == "1") {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Where to listen: `LISTEN_ADDR` if set, else loopback on `APP_BASE_URL`'s port (an IP host
/// is used as is; a name such as `localhost` means `127.0.0.1`).
///
/// # Errors
/// A message naming the variable to fix.
pub fn listen_addr() -> Result<SocketAddr, String> {
    if let Ok(addr) = std::env::var("LISTEN_ADDR") {
        return addr
            .parse()
            .map_err(|_| format!("LISTEN_ADDR `{addr}` is not an address like 127.0.0.1:3000"));
    }
    let base = std::env::var("APP_BASE_URL")
        .map_err(|_| "APP_BASE_URL is required, e.g. http://localhost:3000".to_owned())?;
    let url = Url::parse(&base).map_err(|_| format!("APP_BASE_URL `{base}` is not a URL"))?;
    let port = url.port_or_known_default().ok_or("APP_BASE_URL has no port")?;
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Serves `app` on `addr` until Ctrl-C / SIGTERM. When `APP_BASE_URL` names `localhost` (so
/// `addr` is `127.0.0.1`), the IPv6 loopback `[::1]` on the same port is served too where
/// available, since clients may resolve `localhost` to either.
///
/// # Errors
/// When the address cannot be bound.
pub async fn run(app: axum::Router, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    let v6 = if addr.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST) && base_host_is_localhost() {
        let v6_addr = SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), addr.port());
        tokio::net::TcpListener::bind(v6_addr).await.ok()
    } else {
        None
    };
    match v6 {
        Some(v6) => {
            tracing::info!("listening on http://{}", v6.local_addr()?);
            let second = axum::serve(v6, app.clone()).with_graceful_shutdown(shutdown());
            let first = axum::serve(listener, app).with_graceful_shutdown(shutdown());
            let (a, b) = tokio::join!(first, second);
            a.and(b)
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown())
                .await
        }
    }
}

fn base_host_is_localhost() -> bool {
    std::env::var("LISTEN_ADDR").is_err()
        && std::env::var("APP_BASE_URL")
            .ok()
            .and_then(|b| Url::parse(&b).ok())
            .is_some_and(|u| u.host_str().is_some_and(|h| h.eq_ignore_ascii_case("localhost")))
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
