//! Refresh without races.
//!
//! Many requests of one session may find its access token expired at once, and a browser may
//! still send a cookie holding a refresh token that was already rotated. Replaying a rotated
//! refresh token makes providers that detect reuse revoke the whole token family, so:
//!
//! - all refreshes that use one refresh token are serialised (one async lock per token);
//! - the first does the request; the outcome is kept for a short window keyed by the *old*
//!   refresh token and the (audience, scope) asked for, so concurrent and late callers get the
//!   same result instead of sending the token again;
//! - a caller that needs another audience follows the rotation and refreshes with the new
//!   token.
//!
//! This is per process. Across instances sharing a backend (server-side sessions), the one
//! request per process that would refresh first takes a lease in the backend
//! ([`crate::store::SessionBackend::acquire_refresh_lease`], keyed by [`lease_key`]): the
//! holder refreshes and writes the new token set fenced by the lease; the other instances wait
//! for the record to hold a fresh token set and use it (`flows/access_token.rs`). Cookie
//! sessions have no shared record to wait on: each instance keeps its own window.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::secret::SecretString;

/// How long an outcome is kept for callers still holding the old refresh token.
const WINDOW: Duration = Duration::from_secs(120);
/// Bound on remembered refresh tokens (memory safety under load).
const MAX_ENTRIES: usize = 50_000;

/// What one refresh request produced.
#[derive(Clone)]
pub(crate) enum Outcome {
    /// New tokens.
    Refreshed(Arc<Refreshed>),
    /// The provider answered `invalid_grant`: the session is over (what it said, without
    /// tokens, for [`crate::Error::LoginRequired`]).
    Expired(Box<crate::error::LoginRequired>),
}

pub(crate) struct Refreshed {
    pub(crate) access_token: SecretString,
    /// `DPoP` or `Bearer`, as the token endpoint said.
    pub(crate) token_type: Option<String>,
    pub(crate) expires_at: u64,
    pub(crate) scope: Option<String>,
    /// The refresh token to keep: the rotated one, or the one used when not rotated.
    pub(crate) refresh_token: SecretString,
    /// A verified new ID token and its claims.
    pub(crate) id_token: Option<(SecretString, Map<String, Value>)>,
    /// When the token endpoint answered: a forced refresh reuses only outcomes obtained after
    /// it started (so concurrent forced callers still share one request).
    pub(crate) obtained: Instant,
}

#[derive(Default)]
pub(crate) struct TokenState {
    /// Outcomes by (audience, normalised scope).
    pub(crate) outcomes: HashMap<(String, String), Outcome>,
    /// The refresh token this one was rotated to, once known.
    pub(crate) rotated_to: Option<SecretString>,
}

struct Entry {
    state: Arc<tokio::sync::Mutex<TokenState>>,
    created: Instant,
}

/// Per-process coordinator, one per client.
#[derive(Default)]
pub(crate) struct RefreshCoordinator {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

impl RefreshCoordinator {
    /// The lock guarding refreshes with `refresh_token`.
    pub(crate) fn state_for(&self, refresh_token: &SecretString) -> Arc<tokio::sync::Mutex<TokenState>> {
        let key: [u8; 32] = Sha256::digest(refresh_token.expose().as_bytes()).into();
        let now = Instant::now();
        let Ok(mut map) = self.entries.lock() else {
            // A poisoned map only loses coordination, never correctness of a single call.
            return Arc::default();
        };
        if map.len() >= MAX_ENTRIES || map.len() % 64 == 0 {
            map.retain(|_, e| now.duration_since(e.created) < WINDOW);
        }
        if map.len() >= MAX_ENTRIES {
            return Arc::default();
        }
        map.entry(key)
            .or_insert_with(|| Entry {
                state: Arc::default(),
                created: now,
            })
            .state
            .clone()
    }
}

/// The (audience, scope) key with scopes sorted so equal sets compare equal.
pub(crate) fn outcome_key(audience: &str, scope: Option<&str>) -> (String, String) {
    let mut s: Vec<&str> = scope.map(|s| s.split_whitespace().collect()).unwrap_or_default();
    s.sort_unstable();
    s.dedup();
    (audience.to_owned(), s.join(" "))
}

/// The refresh-lease key for refreshing with `refresh_token` for (audience, scope): hashes
/// only, so no backend key names the token.
pub(crate) fn lease_key(refresh_token: &SecretString, key: &(String, String)) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let token = Sha256::digest(refresh_token.expose().as_bytes());
    let target = Sha256::new()
        .chain_update(key.0.as_bytes())
        .chain_update([0])
        .chain_update(key.1.as_bytes())
        .finalize();
    format!(
        "refresh:{}:{}",
        URL_SAFE_NO_PAD.encode(token),
        URL_SAFE_NO_PAD.encode(target)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_keys_name_no_token_and_separate_token_audience_and_scope() {
        let rt = SecretString::new("rt-secret-value".to_owned());
        let key = lease_key(&rt, &outcome_key("default", Some("openid profile")));
        assert!(!key.contains("rt-secret-value"), "{key}");
        assert!(key.starts_with("refresh:"), "{key}");
        // Scope order and repeats do not matter; token, audience and scope do.
        assert_eq!(
            key,
            lease_key(&rt, &outcome_key("default", Some("profile openid openid")))
        );
        let other_rt = SecretString::new("rt-other".to_owned());
        for other in [
            lease_key(&other_rt, &outcome_key("default", Some("openid profile"))),
            lease_key(&rt, &outcome_key("https://api/", Some("openid profile"))),
            lease_key(&rt, &outcome_key("default", Some("openid"))),
            // The separator keeps (audience, scope) pairs apart.
            lease_key(&rt, &outcome_key("default openid", Some("profile"))),
        ] {
            assert_ne!(key, other);
        }
    }
}
