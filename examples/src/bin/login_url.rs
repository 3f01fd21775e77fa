//! Prints a login URL for the provider configured in the environment, then completes the
//! login from the callback URL pasted back on standard input.
//!
//! ```sh
//! OIDC_ISSUER=http://127.0.0.1:3001 AUTH0_CLIENT_ID=conf-basic \
//! AUTH0_CLIENT_SECRET=conf-basic-secret-0123456789abcdef \
//! AUTH0_SECRET=$(openssl rand -hex 32) APP_BASE_URL=http://localhost:3000 \
//!   cargo run -p auth-examples --bin login_url
//! ```

use auth_core::cookies::MemoryCookieJar;
use auth_core::{LoginOptions, ServerClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = ServerClient::from_env()?;
    let mut jar = MemoryCookieJar::default();
    let url = client
        .start_interactive_login(
            LoginOptions::new().app_state(serde_json::json!({"returnTo": "/"})),
            &mut jar,
        )
        .await?;
    println!("Open this URL, log in, then paste the URL you are redirected to:\n{url}");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let done = client.complete_interactive_login(line.trim(), &mut jar).await?;
    println!("Logged in as {}", serde_json::Value::Object(done.user));
    Ok(())
}
