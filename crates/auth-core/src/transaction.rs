//! The record kept between starting a flow and its callback.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::secret::SecretString;

/// Which flow a transaction belongs to; the callback refuses a transaction of another kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TransactionKind {
    /// Interactive login.
    Login,
    /// Auth0 user linking.
    Link,
    /// Auth0 user unlinking.
    Unlink,
    /// Connected Accounts (My Account API).
    Connect,
}

/// One flow in flight, stored under its `state`.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Transaction {
    pub(crate) kind: TransactionKind,
    pub(crate) state: String,
    pub(crate) nonce: String,
    pub(crate) code_verifier: SecretString,
    pub(crate) redirect_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) audience: Option<String>,
    pub(crate) scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) app_state: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_age: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) organization: Option<String>,
    /// Connected Accounts: the My Account API's `auth_session`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) auth_session: Option<String>,
    /// Link, unlink and connect: the `sub` of the session that started the flow; the
    /// completion is refused for any other user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) session_sub: Option<String>,
    pub(crate) created_at: u64,
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("kind", &self.kind)
            .field("state", &self.state)
            .field("redirect_uri", &self.redirect_uri)
            .field("audience", &self.audience)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Whether `state` could have been issued by us: it becomes part of a cookie name, so it is
/// checked before use.
pub(crate) fn is_valid_state(state: &str) -> bool {
    (16..=128).contains(&state.len())
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
