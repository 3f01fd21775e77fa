//! The quickstart with server-side sessions on Redis: the browser holds only a sealed session
//! id, the session lives in Redis (shared by every instance behind a load balancer), and
//! back-channel logouts reach every instance.
//!
//! Same HTTP contract as the quickstart (see `auth_examples::quickstart`), plus `REDIS_URL`
//! (default `redis://127.0.0.1:6379`), or `REDIS_CLUSTER_URLS` (comma-separated node URLs)
//! for a Redis Cluster. Each instance keeps a local cache of sessions that Redis keeps true
//! (`auth_redis` "Local cache"): a protected request costs no Redis round trip.
//!
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 AUTH0_DOMAIN=… AUTH0_CLIENT_ID=… AUTH0_CLIENT_SECRET=… \
//! AUTH0_SECRET=$(openssl rand -hex 32) APP_BASE_URL=http://localhost:3000 \
//!   cargo run -p auth-examples --bin redis
//! ```

use auth_axum::{AuthOptions, AuthState};
use auth_core::ServerClientBuilder;
use auth_examples::{quickstart, serve};
use auth_redis::RedisBackend;

#[tokio::main]
async fn main() {
    serve::init_logging();
    // `REDIS_URL` (default redis://127.0.0.1:6379), or a Redis Cluster's `REDIS_CLUSTER_URLS`.
    let backend = match RedisBackend::from_env().await {
        Ok(b) => b,
        Err(e) => fail(&format!(
            "cannot connect to Redis (REDIS_URL / REDIS_CLUSTER_URLS): {e}"
        )),
    };
    let client = ServerClientBuilder::from_env()
        .and_then(|b| b.session_backend(backend).server_side_sessions(true).build())
        .unwrap_or_else(|e| fail(&e.to_string()));
    let auth = AuthState::new(client, AuthOptions::new()).unwrap_or_else(|e| fail(&e.to_string()));
    let addr = serve::listen_addr().unwrap_or_else(|e| fail(&e));
    if let Err(e) = serve::run(quickstart::app(&auth), addr).await {
        fail(&format!("cannot listen on {addr}: {e}"));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("redis example: {message}");
    std::process::exit(2);
}
