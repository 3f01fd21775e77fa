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
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
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

/// Serves `app` on `addr` until Ctrl-C / SIGTERM.
///
/// # Errors
/// When the address cannot be bound.
pub async fn run(app: axum::Router, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
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
