//! End-to-end test support for the workspace.
//!
//! The main piece is [`TestIdp`]: a real OpenID Provider (panva `oidc-provider`,
//! Node.js) started on loopback from `tests/idp/idp.mjs`, with fixed clients,
//! a scripted browser login ([`TestIdp::login`]) and a record of the requests
//! the provider received ([`TestIdp::requests`]).
//!
//! ```no_run
//! # async fn demo() {
//! use auth_tests::{TestIdp, CONF_BASIC_ID};
//!
//! let idp = TestIdp::start().await;
//! println!("issuer {} serves {CONF_BASIC_ID}", idp.issuer());
//! # }
//! ```

pub mod app;
pub mod auth0;
pub mod browser;
pub mod emu_app;
pub mod idp;
pub mod redis;

pub use crate::app::{
    APP_SECRET, AppConfig, LoopbackApp, TestApp, json_get, jwt_header, jwt_payload, location,
    loopback_with_idp, query, resolve,
};
pub use crate::auth0::{Auth0Emulator, EmulatedClient, EmulatedConnection, EmulatorOptions, RecordedRequest};
pub use crate::browser::Browser;
pub use crate::idp::{
    API_AUDIENCE, API_SCOPES, CONF_BASIC_ID, CONF_BASIC_SECRET, CONF_JWT_ES256_KID, CONF_JWT_ID,
    CONF_JWT_RSA_KID, CONF_POST_ID, CONF_POST_SECRET, DEFAULT_POST_LOGOUT_REDIRECT_URI, DEFAULT_REDIRECT_URI,
    IdpOptions, PUBLIC_ID, Params, RAR_TYPES, Recorded, RecordedClientCall, TestIdp, conf_jwt_es256_pem,
    conf_jwt_rsa_pem,
};
pub use crate::redis::{TestRedis, TestRedisCluster, unique_prefix};
