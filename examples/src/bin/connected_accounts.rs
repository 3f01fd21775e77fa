//! The connected-accounts app; see `auth_examples::connected_accounts` for its HTTP contract.
//!
//! ```sh
//! AUTH0_DOMAIN=tenant.eu.auth0.com AUTH0_CLIENT_ID=… AUTH0_CLIENT_SECRET=… \
//! AUTH0_SECRET=$(openssl rand -hex 32) APP_BASE_URL=http://localhost:3000 \
//!   cargo run -p auth-examples --bin connected_accounts
//! ```

use auth_axum::AuthState;
use auth_examples::{connected_accounts, serve};

#[tokio::main]
async fn main() {
    serve::init_logging();
    let auth = auth_core::ServerClient::from_env()
        .and_then(|client| AuthState::new(client, connected_accounts::auth_options()))
        .unwrap_or_else(|e| fail(&e.to_string()));
    let addr = serve::listen_addr().unwrap_or_else(|e| fail(&e));
    if let Err(e) = serve::run(connected_accounts::app(&auth), addr).await {
        fail(&format!("cannot listen on {addr}: {e}"));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("connected_accounts: {message}");
    std::process::exit(2);
}
