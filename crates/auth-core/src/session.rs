//! The session document and the views of it handed to applications.
//!
//! The document is wire-compatible with the Auth0 Python SDK's state data (see
//! `shared/reference/session-cookie.md`): unknown fields are kept as they are, so a session
//! written by another SDK survives a read-modify-write by us.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::secret::SecretString;

/// The audience key under which tokens for the default API are stored.
pub const DEFAULT_AUDIENCE: &str = "default";

/// Claims about the logged-in user, from the ID token (protocol claims removed).
pub type UserClaims = Map<String, Value>;

/// Access token for one (audience, scope).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenSet {
    /// The API the token is for; [`DEFAULT_AUDIENCE`] when none was requested.
    pub audience: String,
    /// The access token.
    pub access_token: SecretString,
    /// Granted scope, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: u64,
    #[serde(flatten)]
    pub(crate) extra: Map<String, Value>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("access_token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// A Token Vault access token for a third-party connection, cached in the session.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectionTokenSet {
    /// The connection, e.g. `google-oauth2`.
    pub connection: String,
    /// The `login_hint` it was requested with, if any (part of the cache key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
    /// The upstream provider's access token.
    pub access_token: SecretString,
    /// Granted scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: u64,
    #[serde(flatten)]
    pub(crate) extra: Map<String, Value>,
}

impl fmt::Debug for ConnectionTokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionTokenSet")
            .field("connection", &self.connection)
            .field("login_hint", &self.login_hint)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("access_token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// Bookkeeping fields of the session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Internal {
    pub(crate) sid: String,
    pub(crate) created_at: u64,
    /// Last recorded activity (ours; absent in sessions written by other SDKs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_active: Option<u64>,
    #[serde(flatten)]
    pub(crate) extra: Map<String, Value>,
}

/// The full session document as stored (sealed in cookies or in a backend).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionData {
    pub(crate) user: UserClaims,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id_token: Option<SecretString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<SecretString>,
    #[serde(default)]
    pub(crate) token_sets: Vec<TokenSet>,
    #[serde(default)]
    pub(crate) connection_token_sets: Vec<ConnectionTokenSet>,
    pub(crate) internal: Internal,
    #[serde(flatten)]
    pub(crate) extra: Map<String, Value>,
}

impl fmt::Debug for SessionData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionData")
            .field("sub", &self.user.get("sub"))
            .field("sid", &self.internal.sid)
            .field("created_at", &self.internal.created_at)
            .field("token_sets", &self.token_sets)
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl SessionData {
    /// The user's claims.
    #[must_use]
    pub fn user(&self) -> &UserClaims {
        &self.user
    }

    /// The session id: the ID token's `sid`, or a random one.
    #[must_use]
    pub fn sid(&self) -> &str {
        &self.internal.sid
    }
}

/// What an application sees of a session: the user, the ID token and the access tokens.
///
/// The refresh token is left out unless asked for with
/// [`crate::ServerClient::get_session_with_refresh_token`].
#[derive(Clone)]
pub struct Session {
    data: std::sync::Arc<SessionData>,
    with_refresh_token: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("sub", &self.data.user.get("sub"))
            .field("sid", &self.data.internal.sid)
            .field("created_at", &self.data.internal.created_at)
            .field("token_sets", &self.data.token_sets)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The view of a shared session document (no copy on the per-request path).
    pub(crate) fn from_shared(data: std::sync::Arc<SessionData>, with_refresh_token: bool) -> Self {
        Self {
            data,
            with_refresh_token,
        }
    }

    /// The user's claims (`sub`, `name`, `email`, …).
    #[must_use]
    pub fn user(&self) -> &UserClaims {
        &self.data.user
    }

    /// The user's `sub`.
    #[must_use]
    pub fn sub(&self) -> Option<&str> {
        self.data.user.get("sub").and_then(Value::as_str)
    }

    /// The raw ID token.
    #[must_use]
    pub fn id_token(&self) -> Option<&str> {
        self.data.id_token.as_ref().map(SecretString::expose)
    }

    /// The refresh token, present only when the session was read with
    /// [`crate::ServerClient::get_session_with_refresh_token`].
    #[must_use]
    pub fn refresh_token(&self) -> Option<&str> {
        if self.with_refresh_token {
            self.data.refresh_token.as_ref().map(SecretString::expose)
        } else {
            None
        }
    }

    /// Access tokens held, one per (audience, scope).
    #[must_use]
    pub fn token_sets(&self) -> &[TokenSet] {
        &self.data.token_sets
    }

    /// The session id (`sid`).
    #[must_use]
    pub fn sid(&self) -> &str {
        &self.data.internal.sid
    }

    /// When the session started, seconds since the Unix epoch.
    #[must_use]
    pub fn created_at(&self) -> u64 {
        self.data.internal.created_at
    }
}

/// Claims that describe the token rather than the user; not kept in [`UserClaims`].
const PROTOCOL_CLAIMS: &[&str] = &[
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "azp",
    "nonce",
    "at_hash",
    "c_hash",
    "s_hash",
    "auth_time",
];

pub(crate) fn user_claims(mut claims: Map<String, Value>) -> UserClaims {
    for c in PROTOCOL_CLAIMS {
        claims.remove(*c);
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_sdk_document_opens_and_keeps_unknown_fields() {
        let doc = serde_json::json!({
            "user": {"sub": "auth0|123"},
            "id_token": "eyJ.x.y",
            "refresh_token": "rt",
            "token_sets": [{"audience": "default", "access_token": "at", "scope": "openid", "expires_at": 1700000000, "domain": null}],
            "connection_token_sets": [],
            "internal": {"sid": "abc", "created_at": 1700000000, "py_extra": 1},
            "domain": null,
            "future": {"x": 1}
        });
        let s: SessionData = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(s.sid(), "abc");
        let back = serde_json::to_value(&s).unwrap();
        assert_eq!(back, doc);
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("rt\"") && !dbg.contains("eyJ.x.y") && !dbg.contains("\"at\""));
    }

    #[test]
    fn minimal_reference_document_opens() {
        let s: SessionData = serde_json::from_str(
            r#"{"user":{"sub":"auth0|123"},"internal":{"sid":"abc","created_at":1700000000}}"#,
        )
        .unwrap();
        assert_eq!(s.user()["sub"], "auth0|123");
        assert!(s.token_sets.is_empty());
    }

    #[test]
    fn session_view_hides_refresh_token_by_default() {
        let s: SessionData = serde_json::from_str(
            r#"{"user":{"sub":"u"},"refresh_token":"rt","internal":{"sid":"abc","created_at":1}}"#,
        )
        .unwrap();
        assert_eq!(
            Session::from_shared(std::sync::Arc::new(s.clone()), false).refresh_token(),
            None
        );
        assert_eq!(
            Session::from_shared(std::sync::Arc::new(s), true).refresh_token(),
            Some("rt")
        );
    }
}
