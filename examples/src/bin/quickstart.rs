//! The quickstart app; see `auth_examples::quickstart` for its HTTP contract.
//!
//! ```sh
//! AUTH0_DOMAIN=tenant.eu.auth0.com AUTH0_CLIENT_ID=… AUTH0_CLIENT_SECRET=… \
//! AUTH0_SECRET=$(openssl rand -hex 32) APP_BASE_URL=http://localhost:3000 \
//!   cargo run -p auth-examples --bin quickstart
//! ```

use auth_axum::AuthState;
use auth_examples::{quickstart, serve};

#[tokio::main]
async fn main() {
    serve::init_logging();
    let auth = match AuthState::from_env() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("quickstart: {e}");
            std::process::exit(2);
        }
    };
    let addr = match serve::listen_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("quickstart: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = serve::run(quickstart::app(&auth), addr).await {
        eprintln!("quickstart: cannot listen on {addr}: {e}");
        std::process::exit(1);
    }
}
