//! The session document and the views of it handed to applications.
//!
//! The document is wire-compatible with the Auth0 Python SDK's state data (see
//! `shared/reference/session-cookie.md`): unknown fields are kept as they are, so a session
//! written by another SDK survives a read-modify-write by us.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::de::value::MapDeserializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::app_data::{SessionValueError, SessionValueKind};

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

/// The full session document as stored (sealed in cookies or in a backend). Crate-private:
/// applications see a [`SessionSnapshot`]; the workspace's tests reach it through
/// `crate::internal`.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(not(any(test, feature = "internal")), allow(unreachable_pub))]
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
    /// The application's own data (`app_data`: key → JSON value). Other SDKs keep it as an
    /// unknown field.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub(crate) app_data: Map<String, Value>,
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
            .field("app_data_keys", &self.app_data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[cfg_attr(not(any(test, feature = "internal")), allow(unreachable_pub))]
impl SessionData {
    /// The user's claims.
    #[cfg(any(test, feature = "internal"))]
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

/// What an application sees of a session: a read-only snapshot of the user, the ID token and
/// the access tokens, as returned by [`ServerClient::get_session`](crate::ServerClient::get_session).
///
/// The refresh token is left out unless asked for with
/// [`crate::ServerClient::get_session_with_refresh_token`]. (`auth-axum`'s `Session`
/// extractor wraps this snapshot.)
#[derive(Clone)]
pub struct SessionSnapshot {
    data: std::sync::Arc<SessionData>,
    with_refresh_token: bool,
}

impl fmt::Debug for SessionSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSnapshot")
            .field("sub", &self.data.user.get("sub"))
            .field("sid", &self.data.internal.sid)
            .field("created_at", &self.data.internal.created_at)
            .field("token_sets", &self.data.token_sets)
            .finish_non_exhaustive()
    }
}

impl SessionSnapshot {
    /// The session document this snapshot shows.
    pub(crate) fn data(&self) -> &SessionData {
        &self.data
    }

    /// The view of a shared session document (no copy on the per-request path).
    pub(crate) fn from_shared(data: std::sync::Arc<SessionData>, with_refresh_token: bool) -> Self {
        Self {
            data,
            with_refresh_token,
        }
    }

    /// The user's claims (`sub`, `name`, `email`, …) as the raw JSON map.
    ///
    /// Prefer [`claims`](Self::claims) into a struct of your own: indexing the map
    /// (`user()["email"]`) panics when a claim is missing, and a claim is missing whenever the
    /// provider does not send it for this user. For a single claim use
    /// `user().get("email").and_then(Value::as_str)`.
    #[must_use]
    pub fn user(&self) -> &UserClaims {
        &self.data.user
    }

    /// The user's claims as the app's own type: a missing claim, or one of another type, is an
    /// error naming the claim (make fields that not every user has `Option`).
    ///
    /// # Errors
    /// [`Error::SessionValue`](crate::Error::SessionValue) saying which field did not match
    /// and the type asked for (never the value).
    ///
    /// ```
    /// # fn f(session: &auth_core::SessionSnapshot) -> Result<(), auth_core::Error> {
    /// #[derive(serde::Deserialize)]
    /// struct Profile {
    ///     sub: String,
    ///     name: Option<String>,
    ///     #[serde(rename = "https://example.com/roles", default)]
    ///     roles: Vec<String>,
    /// }
    ///
    /// let profile: Profile = session.claims()?;
    /// let admin = profile.roles.iter().any(|r| r == "admin");
    /// # let _ = (profile.sub, profile.name, admin); Ok(()) }
    /// ```
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, crate::Error> {
        let fields = self.data.user.iter().map(|(k, v)| (k.as_str(), v));
        T::deserialize(MapDeserializer::<_, serde_json::Error>::new(fields)).map_err(|e| {
            crate::Error::SessionValue(SessionValueError::from_serde_error::<T>(
                SessionValueKind::Claims,
                &e,
            ))
        })
    }

    /// The app-data value stored under `key` as `T`, or `None` when there is none.
    ///
    /// App data is the application's own part of the session (a JSON object under
    /// `app_data` in the session document), written with
    /// [`ServerClient::update_app_data`](crate::ServerClient::update_app_data) (or
    /// `auth-axum`'s `Session::set`). It travels with every request: keep it small.
    ///
    /// # Errors
    /// [`Error::SessionValue`](crate::Error::SessionValue) when the stored value is not a `T`
    /// (it names the key and the type, never the value).
    ///
    /// ```
    /// # fn f(session: &auth_core::SessionSnapshot) -> Result<(), auth_core::Error> {
    /// let theme: String = session.get("theme")?.unwrap_or_else(|| "light".into());
    /// # let _ = theme; Ok(()) }
    /// ```
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, crate::Error> {
        self.data.app_data.get(key).map(|v| get_as(key, v)).transpose()
    }

    /// The raw app data (key → JSON value); [`get`](Self::get) reads one value typed.
    #[must_use]
    pub fn app_data(&self) -> &Map<String, Value> {
        &self.data.app_data
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

/// `value` (stored under `key`) as a `T`.
pub(crate) fn get_as<T: DeserializeOwned>(key: &str, value: &Value) -> Result<T, crate::Error> {
    T::deserialize(value).map_err(|e| {
        crate::Error::SessionValue(SessionValueError::from_serde_error::<T>(
            SessionValueKind::Read { key: key.to_owned() },
            &e,
        ))
    })
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
    fn app_data_is_one_top_level_object_left_out_when_empty() {
        let doc = serde_json::json!({
            "user": {"sub": "u"},
            "token_sets": [],
            "connection_token_sets": [],
            "internal": {"sid": "abc", "created_at": 1},
            "app_data": {"theme": "dark", "cart": [1, 2]},
            "future": true
        });
        let s: SessionData = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(s.app_data["theme"], "dark");
        assert!(!s.extra.contains_key("app_data"));
        assert_eq!(serde_json::to_value(&s).unwrap(), doc);
        let mut empty = s.clone();
        empty.app_data.clear();
        let text = serde_json::to_string(&empty).unwrap();
        assert!(!text.contains("app_data"), "{text}");
        let dbg = format!("{s:?}");
        assert!(dbg.contains("theme") && !dbg.contains("dark"), "{dbg}");
    }

    #[test]
    fn claims_and_app_data_read_typed() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Profile {
            sub: String,
            email: Option<String>,
            #[serde(rename = "https://example.com/roles", default)]
            roles: Vec<String>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Strict {
            email: String,
        }
        let s: SessionData = serde_json::from_value(serde_json::json!({
            "user": {"sub": "u1", "name": "Jane", "https://example.com/roles": ["admin"]},
            "internal": {"sid": "abc", "created_at": 1},
            "app_data": {"visits": 3}
        }))
        .unwrap();
        let view = SessionSnapshot::from_shared(std::sync::Arc::new(s), false);
        assert_eq!(
            view.claims::<Profile>().unwrap(),
            Profile {
                sub: "u1".into(),
                email: None,
                roles: vec!["admin".into()]
            }
        );
        let e = view.claims::<Strict>().unwrap_err();
        assert_eq!(e.code(), "invalid_session_value");
        let text = e.to_string();
        assert!(
            text.contains("claims") && text.contains("Strict") && text.contains("missing field `email`"),
            "{text}"
        );
        assert_eq!(view.get::<u32>("visits").unwrap(), Some(3));
        let e = view.get::<String>("visits").unwrap_err();
        assert!(matches!(
            &e,
            crate::Error::SessionValue(v) if v.kind == SessionValueKind::Read { key: "visits".into() }
                && v.type_name == "alloc::string::String"
        ));
        assert!(!e.to_string().contains('3'), "{e}");
    }

    #[test]
    fn session_view_hides_refresh_token_by_default() {
        let s: SessionData = serde_json::from_str(
            r#"{"user":{"sub":"u"},"refresh_token":"rt","internal":{"sid":"abc","created_at":1}}"#,
        )
        .unwrap();
        assert_eq!(
            SessionSnapshot::from_shared(std::sync::Arc::new(s.clone()), false).refresh_token(),
            None
        );
        assert_eq!(
            SessionSnapshot::from_shared(std::sync::Arc::new(s), true).refresh_token(),
            Some("rt")
        );
    }
}
