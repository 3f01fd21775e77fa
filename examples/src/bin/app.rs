//! The dashboard app (`auth_examples::app`): hooks, app data in the session, its own pages,
//! routes under `/account`, cookie or Redis sessions.
//!
//! ```sh
//! AUTH0_DOMAIN=… AUTH0_CLIENT_ID=… AUTH0_CLIENT_SECRET=… AUTH0_SECRET=$(openssl rand -hex 32) \
//! APP_BASE_URL=http://localhost:3000 [SESSION_STORE=redis REDIS_URL=…] [API_AUDIENCE=…] \
//!   cargo run -p auth-examples --bin app
//! ```

use auth_examples::{app, serve};

#[tokio::main]
async fn main() {
    serve::init_logging();
    let auth = app::auth_from_env().await.unwrap_or_else(|e| fail(&e));
    let addr = serve::listen_addr().unwrap_or_else(|e| fail(&e));
    if let Err(e) = serve::run(app::app(&auth, app::Settings::from_env()), addr).await {
        fail(&format!("cannot listen on {addr}: {e}"));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("app example: {message}");
    std::process::exit(2);
}
