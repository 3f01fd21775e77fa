//! The emulator's OAuth/OIDC endpoints, one idea a file: provider metadata
//! ([`discovery`]), the front channel ([`authorize`]: `/authorize`, PAR), client authentication
//! ([`client_auth`]), the token endpoint and revocation ([`token`]), what tokens say
//! ([`issue`]), `/userinfo` ([`userinfo`]) and both logout endpoints ([`logout`]).

mod authorize;
mod client_auth;
mod discovery;
mod issue;
mod logout;
mod token;
mod userinfo;

pub(crate) use authorize::{authorize, par};
pub(crate) use client_auth::authenticate_client;
pub(crate) use discovery::{discovery, jwks};
pub(crate) use issue::{ID_TOKEN_TTL, new_refresh_token, released_claims};
pub(crate) use logout::{oidc_logout, v2_logout};
pub(crate) use token::{revoke, token};
pub(crate) use userinfo::userinfo;
