//! The protocol layer: what every flow says to the provider, written once. Flows (`flows/`)
//! decide what to ask for and what to do with the answer; they reach the provider only
//! through here, `discovery.rs` (metadata, keys) and `id_token.rs` (the ID-token rules).
//!
//! - `authorize.rs`: one `AuthorizeRequest` (state, nonce, PKCE, pinned parameters,
//!   telemetry, PAR or query) and the transaction it stores; `app_state` limits.
//! - `callback.rs`: parsing the authorization response, taking its transaction, the code
//!   exchange with the ID token verified.
//! - `token.rs`: the token endpoint (and the authenticated POST it shares with PAR and CIBA),
//!   the response, its ID token and `at_hash`, the fresh session a response starts.
//! - `my_account.rs`: the Auth0 My Account API client.

pub(crate) mod authorize;
pub(crate) mod callback;
pub(crate) mod my_account;
pub(crate) mod token;
