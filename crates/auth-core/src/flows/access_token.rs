//! Access tokens from the session, refreshed with the refresh token when needed.
//!
//! Token sets are keyed by (audience, scope); one refresh token serves many audiences (Auth0
//! multi-resource refresh tokens). The set chosen is an exact scope match, else the smallest
//! superset of the requested scopes.

use std::fmt;

use serde_json::{Map, Value};

use std::sync::Arc;

use super::refresh::{Outcome, Refreshed, lease_key, outcome_key};
use crate::client::ServerClient;
use crate::cookies::CookieJar;
use crate::error::{Error, Result};
use crate::protocol::token::{login_required, login_required_error};
use crate::secret::SecretString;
use crate::session::{DEFAULT_AUDIENCE, SessionData, TokenSet, user_claims};
use crate::time::now;

/// Options for [`ServerClient::get_access_token`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct AccessTokenOptions {
    audience: Option<String>,
    scope: Option<String>,
    force_refresh: bool,
}

impl AccessTokenOptions {
    /// The token for the configured audience (or the default one).
    pub fn new() -> Self {
        Self::default()
    }

    /// A token for this API audience.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// A token carrying at least these scopes (space-separated).
    ///
    /// The scope **replaces** the configured one for this call: a held token with at least
    /// these scopes is reused, else the refresh asks for exactly these scopes — plus `openid`
    /// when the token is for the login's audience (the configured `audience`, or the default
    /// one), so that token keeps working at `/userinfo` and the refresh still returns an ID
    /// token: `openid` is never dropped. For another audience (an API) the scopes are sent as
    /// given. A scope the refresh token was not granted is refused by the provider
    /// ([`Error::LoginRequired`] with `invalid_scope`): log in again asking for it.
    ///
    /// ```
    /// use auth_core::AccessTokenOptions;
    ///
    /// // Default audience: the refresh asks for `openid read:reports`.
    /// let reports = AccessTokenOptions::new().scope("read:reports");
    /// // Another API: exactly `read:orders`.
    /// let orders = AccessTokenOptions::new().audience("https://orders.example.com/").scope("read:orders");
    /// # let _ = (reports, orders);
    /// ```
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Refresh even if the held token is still valid: the token endpoint is always asked for
    /// a new token (neither the session's token nor an earlier refresh's result is reused;
    /// concurrent forced calls for one refresh token still share a single request).
    pub fn force_refresh(mut self, force: bool) -> Self {
        self.force_refresh = force;
        self
    }
}

/// An access token and what it is for.
#[derive(Clone)]
#[non_exhaustive]
pub struct AccessToken {
    /// The token.
    pub token: SecretString,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: u64,
    /// Granted scope.
    pub scope: Option<String>,
    /// The audience key (`"default"` for the default audience; the connection name for a
    /// Token Vault token).
    pub audience: String,
    /// How to present it ([`crate::DPOP_TOKEN_TYPE`] for a DPoP-bound token, else
    /// [`crate::BEARER_TOKEN_TYPE`]); see [`ServerClient::resource_authorization`].
    pub token_type: &'static str,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("token_type", &self.token_type)
            .field("token", &"[redacted]")
            .finish()
    }
}

impl AccessToken {
    pub(crate) fn new(token: SecretString, expires_at: u64, scope: Option<String>, audience: String) -> Self {
        Self {
            token,
            expires_at,
            scope,
            audience,
            token_type: crate::dpop::BEARER_TOKEN_TYPE,
        }
    }

    /// The same token with the `token_type` the token endpoint gave (`DPoP` or `Bearer`).
    pub(crate) fn with_token_type(mut self, token_type: Option<&str>) -> Self {
        self.token_type = crate::dpop::normalized_token_type(token_type);
        self
    }
}

impl From<&TokenSet> for AccessToken {
    fn from(t: &TokenSet) -> Self {
        Self {
            token: t.access_token.clone(),
            expires_at: t.expires_at,
            scope: t.scope.clone(),
            audience: t.audience.clone(),
            token_type: t.token_type(),
        }
    }
}

/// First and longest pause between looks at the session record while another instance holds
/// the refresh lease.
const LEASE_POLL_FIRST: std::time::Duration = std::time::Duration::from_millis(20);
const LEASE_POLL_MAX: std::time::Duration = std::time::Duration::from_millis(200);

/// A refresh lease held in the backend.
struct Lease {
    /// The id of the session record the lease belongs to.
    session_id: String,
    key: String,
    token: u64,
}

/// What taking the refresh lease gave.
enum Leased {
    /// This request refreshes, and writes under the lease.
    Holder(Lease),
    /// Another instance refreshed: its token set, as stored, and as an outcome to share.
    Adopted(TokenSet, Arc<Refreshed>),
}

/// The scope a call asks for: as given, with `openid` first when the token is for the login's
/// audience and the scope lacks it (see [`AccessTokenOptions::scope`]).
fn call_scope(scope: &str, login_audience: bool) -> String {
    if login_audience {
        crate::params::normalize_scope(Some(scope))
    } else {
        scope.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

fn scopes(s: Option<&str>) -> Vec<&str> {
    s.map(|s| s.split_whitespace().collect()).unwrap_or_default()
}

/// The best token set for (audience, scope): exact scope match, else the smallest superset.
pub(crate) fn select<'a>(sets: &'a [TokenSet], audience: &str, scope: Option<&str>) -> Option<&'a TokenSet> {
    let wanted = scopes(scope);
    let mut candidates: Vec<&TokenSet> = sets
        .iter()
        .filter(|t| t.audience == audience)
        .filter(|t| {
            let have = scopes(t.scope.as_deref());
            wanted.iter().all(|w| have.contains(w))
        })
        .collect();
    candidates.sort_by_key(|t| {
        let have = scopes(t.scope.as_deref());
        let exact = have.len() == wanted.len();
        (!exact, have.len())
    });
    candidates.first().copied()
}

impl ServerClient {
    /// An access token for the session, from the session when still valid (beyond the
    /// refresh leeway), else refreshed with the session's refresh token; the session is
    /// updated with the new tokens (rotated refresh token, new ID-token claims).
    ///
    /// # Errors
    /// [`Error::NotAuthenticated`] without a session; [`Error::MissingRefreshToken`] when a
    /// refresh is needed and impossible; [`Error::LoginRequired`] when the provider refuses
    /// the refresh with a "log in again" code (`invalid_grant`: the session is deleted;
    /// `invalid_scope`, `consent_required`, `login_required`, `interaction_required`: the
    /// session is kept); [`Error::MfaRequired`] when the token needs a step-up login; for all
    /// of these [`Error::requires_login`] or the step-up says what to do. Transport and other
    /// token-endpoint errors otherwise (retry later).
    pub async fn get_access_token(
        &self,
        options: AccessTokenOptions,
        jar: &mut dyn CookieJar,
    ) -> Result<AccessToken> {
        let c = &self.inner.config;
        let mut session = self.load_session(jar).await?.ok_or(Error::NotAuthenticated)?;
        let audience = options
            .audience
            .or_else(|| c.authorization_params.get("audience").map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
        let login_audience = c.authorization_params.get("audience").unwrap_or(DEFAULT_AUDIENCE);
        let scope = options
            .scope
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| call_scope(s, audience == login_audience));
        let scope = scope.as_deref();
        let deadline = now().saturating_add(c.token_refresh_leeway.as_secs());
        if !options.force_refresh
            && let Some(set) =
                select(&session.token_sets, &audience, scope).filter(|t| t.expires_at > deadline)
        {
            return Ok(set.into());
        }
        let refresh_token = session.refresh_token.clone().ok_or(Error::MissingRefreshToken)?;
        let set = self
            .refresh(
                std::sync::Arc::make_mut(&mut session),
                &refresh_token,
                &audience,
                scope,
                options.force_refresh,
                jar,
            )
            .await
            .map_err(|e| super::mfa::with_context(e, &audience, scope))?;
        Ok((&set).into())
    }

    /// Refreshes through the per-token coordinator (see `flows/refresh.rs`) and applies the
    /// outcome to this caller's session. With `force`, only an outcome obtained after this call
    /// started is reused.
    async fn refresh(
        &self,
        session: &mut SessionData,
        refresh_token: &SecretString,
        audience: &str,
        scope: Option<&str>,
        force: bool,
        jar: &mut dyn CookieJar,
    ) -> Result<TokenSet> {
        let started = std::time::Instant::now();
        let deadline = now().saturating_add(self.inner.config.token_refresh_leeway.as_secs());
        let key = outcome_key(audience, scope);
        let mut token = refresh_token.clone();
        let mut outcome = None;
        // This call's own token request (not an outcome shared by another request).
        let mut produced_here = false;
        // Server-side sessions: the cross-instance lease held for the write, or the record
        // another instance refreshed.
        let mut lease: Option<Lease> = None;
        let mut adopted: Option<TokenSet> = None;
        // Follow rotations: at most a few hops (one per audience refreshed concurrently).
        for _ in 0..8 {
            let state = self.inner.refreshes.state_for(&token);
            let mut guard = state.lock().await;
            let usable = match guard.outcomes.get(&key) {
                Some(Outcome::Expired(l)) => Some(Outcome::Expired(l.clone())),
                Some(Outcome::Refreshed(r))
                    if r.expires_at > deadline && (!force || r.obtained >= started) =>
                {
                    Some(Outcome::Refreshed(r.clone()))
                }
                _ => None,
            };
            if let Some(o) = usable {
                outcome = Some(o);
                break;
            }
            if let Some(next) = guard.rotated_to.clone() {
                drop(guard);
                token = next;
                continue;
            }
            let fresh = if self.inner.config.server_side_sessions {
                match self
                    .take_lease(session, &token, audience, scope, &key, jar)
                    .await?
                {
                    Leased::Holder(l) => match self.refresh_request(&token, audience, scope).await {
                        Ok(fresh) => {
                            lease = Some(l);
                            produced_here = true;
                            fresh
                        }
                        Err(e) => {
                            self.release_lease(&l).await;
                            return Err(e);
                        }
                    },
                    Leased::Adopted(set, refreshed) => {
                        adopted = Some(set);
                        Outcome::Refreshed(refreshed)
                    }
                }
            } else {
                produced_here = true;
                self.refresh_request(&token, audience, scope).await?
            };
            if let Outcome::Refreshed(r) = &fresh
                && r.refresh_token != token
            {
                guard.rotated_to = Some(r.refresh_token.clone());
            }
            guard.outcomes.insert(key.clone(), fresh.clone());
            outcome = Some(fresh);
            break;
        }
        let result = self
            .apply_refresh(
                session,
                outcome,
                produced_here,
                adopted,
                lease.as_ref(),
                audience,
                jar,
            )
            .await;
        if let Some(l) = &lease {
            self.release_lease(l).await;
        }
        result
    }

    /// Applies a refresh outcome to the caller's session and writes it: fenced by `lease` when
    /// this call refreshed under one; not at all for a server-side session whose record was
    /// written by whoever refreshed (`adopted` from another instance, or an outcome shared by
    /// another request of this process).
    #[allow(clippy::too_many_arguments)]
    async fn apply_refresh(
        &self,
        session: &mut SessionData,
        outcome: Option<Outcome>,
        produced_here: bool,
        adopted: Option<TokenSet>,
        lease: Option<&Lease>,
        audience: &str,
        jar: &mut dyn CookieJar,
    ) -> Result<TokenSet> {
        let refreshed = match outcome {
            Some(Outcome::Refreshed(r)) => r,
            Some(Outcome::Expired(l)) => {
                tracing::info!("refresh token rejected (invalid_grant); ending the session");
                self.inner.sessions.delete(jar).await?;
                return Err(Error::LoginRequired(l));
            }
            None => {
                return Err(Error::InvalidResponse {
                    endpoint: "token",
                    reason: "too many refresh token rotations".into(),
                });
            }
        };
        if let Some((id_token, claims)) = &refreshed.id_token {
            // OIDC Core 12.2: a refreshed ID token is about the same user.
            if claims.get("sub") != session.user.get("sub") {
                tracing::warn!("refreshed ID token is about another user; session left unchanged");
                return Err(Error::IdentityMismatch);
            }
            session.user = user_claims(claims.clone());
            session.id_token = Some(id_token.clone());
        }
        if let Some(set) = adopted {
            return Ok(set);
        }
        session.refresh_token = Some(refreshed.refresh_token.clone());
        let set = TokenSet {
            audience: audience.to_owned(),
            access_token: refreshed.access_token.clone(),
            scope: refreshed.scope.clone(),
            expires_at: refreshed.expires_at,
            extra: Map::<String, Value>::from_iter(crate::dpop::token_type_fields(
                refreshed.token_type.as_deref(),
            )),
        };
        session.token_sets.retain(|t| {
            !(t.audience == set.audience && scopes(t.scope.as_deref()) == scopes(set.scope.as_deref()))
        });
        session.token_sets.push(set.clone());
        if self.inner.config.server_side_sessions && !produced_here {
            // The request that refreshed wrote the record.
            return Ok(set);
        }
        self.before_session_saved(session, crate::hooks::SaveKind::Refresh, false, jar)
            .await?;
        match lease {
            Some(l) => {
                if !self.write_session_fenced(session, &l.key, l.token, jar).await? {
                    tracing::warn!(
                        "refresh lease expired before the refreshed session was written; \
                         the token set of the lease's next holder is kept"
                    );
                }
            }
            None => self.write_session(session, false, jar).await?,
        }
        Ok(set)
    }

    /// Takes the cross-instance refresh lease for (refresh token, audience, scope), or waits
    /// for whoever holds it to store a fresh token set (polling the record with back-off,
    /// 20 ms doubling to 200 ms); takes the lease over when it expires without one (its holder
    /// died).
    ///
    /// # Errors
    /// [`Error::SessionExpired`] when the record is gone meanwhile (logout, or the holder's
    /// refresh was refused and ended the session); [`Error::Store`] when no token set arrived
    /// within twice the lease TTL, and backend errors.
    async fn take_lease(
        &self,
        session: &SessionData,
        token: &SecretString,
        audience: &str,
        scope: Option<&str>,
        key: &(String, String),
        jar: &mut dyn CookieJar,
    ) -> Result<Leased> {
        let c = &self.inner.config;
        let lease_key = lease_key(token, key);
        // The lease lives beside the session's record (one Redis Cluster slot).
        let session_id = self
            .inner
            .sessions
            .session_id(&*jar)
            .ok_or(Error::SessionExpired)?;
        let ttl = c.refresh_lease_ttl;
        let held = select(&session.token_sets, audience, scope).map(|t| t.access_token.clone());
        let give_up = std::time::Instant::now() + ttl.saturating_mul(2);
        let mut delay = LEASE_POLL_FIRST;
        loop {
            if let Some(t) = c
                .backend
                .acquire_refresh_lease(&session_id, &lease_key, ttl)
                .await?
            {
                let lease = Lease {
                    session_id,
                    key: lease_key,
                    token: t,
                };
                // Another instance may have refreshed between this request's read and the lease.
                return match self
                    .refreshed_elsewhere(token, held.as_ref(), audience, scope, jar)
                    .await
                {
                    Ok(None) => Ok(Leased::Holder(lease)),
                    other => {
                        self.release_lease(&lease).await;
                        other?
                            .map(|(s, r)| Leased::Adopted(s, r))
                            .ok_or(Error::SessionExpired)
                    }
                };
            }
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2).min(LEASE_POLL_MAX);
            if let Some((set, r)) = self
                .refreshed_elsewhere(token, held.as_ref(), audience, scope, jar)
                .await?
            {
                return Ok(Leased::Adopted(set, r));
            }
            if std::time::Instant::now() >= give_up {
                return Err(crate::error::StoreError::new(
                    "no refreshed token set from the instance holding the refresh lease; retry",
                )
                .into());
            }
        }
    }

    /// The stored session's token set for (audience, scope) when it is fresh and not the one
    /// this request held (so another instance refreshed), as an outcome to share.
    async fn refreshed_elsewhere(
        &self,
        token: &SecretString,
        held: Option<&SecretString>,
        audience: &str,
        scope: Option<&str>,
        jar: &mut dyn CookieJar,
    ) -> Result<Option<(TokenSet, Arc<Refreshed>)>> {
        // Server-side reads fetch the record from the backend every time; the opened-session
        // cache only skips opening bytes it has opened before.
        let record = self
            .inner
            .sessions
            .read(jar)
            .await?
            .ok_or(Error::SessionExpired)?;
        let deadline = now().saturating_add(self.inner.config.token_refresh_leeway.as_secs());
        let Some(set) = select(&record.token_sets, audience, scope)
            .filter(|t| t.expires_at > deadline && Some(&t.access_token) != held)
        else {
            return Ok(None);
        };
        let refreshed = Refreshed {
            access_token: set.access_token.clone(),
            token_type: Some(set.token_type().to_owned()),
            expires_at: set.expires_at,
            scope: set.scope.clone(),
            refresh_token: record.refresh_token.clone().unwrap_or_else(|| token.clone()),
            id_token: None,
            obtained: std::time::Instant::now(),
        };
        Ok(Some((set.clone(), Arc::new(refreshed))))
    }

    /// Releases a refresh lease; a failure only delays the next refresh (the lease expires).
    async fn release_lease(&self, lease: &Lease) {
        if let Err(e) = self
            .inner
            .config
            .backend
            .release_refresh_lease(&lease.session_id, &lease.key, lease.token)
            .await
        {
            tracing::warn!(error = %e, "releasing the refresh lease failed; it expires by itself");
        }
    }

    /// One refresh request. `invalid_grant` is an outcome (shared with every waiter), other
    /// failures are errors (the next waiter tries again); the other "log in again" codes
    /// become [`Error::LoginRequired`] with the session kept.
    async fn refresh_request(
        &self,
        refresh_token: &SecretString,
        audience: &str,
        scope: Option<&str>,
    ) -> Result<Outcome> {
        let mut form = vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), refresh_token.expose().to_owned()),
        ];
        if audience != DEFAULT_AUDIENCE {
            form.push(("audience".into(), audience.to_owned()));
        }
        if let Some(s) = scope {
            form.push(("scope".into(), s.to_owned()));
        }
        let tokens = match self.token_request(form).await {
            Ok(t) => t,
            Err(e) => {
                let aud = (audience != DEFAULT_AUDIENCE).then_some(audience);
                let sent = [refresh_token.expose()];
                if let Error::Endpoint { error, .. } = &e
                    && error.error == "invalid_grant"
                    && let Some(l) = login_required(error, aud, scope, &sent, true)
                {
                    return Ok(Outcome::Expired(Box::new(l)));
                }
                return Err(login_required_error(e, aud, scope, &sent));
            }
        };
        let id_token = self.optional_response_id_token(&tokens).await?;
        Ok(Outcome::Refreshed(Arc::new(Refreshed {
            access_token: tokens.access_token.clone(),
            token_type: tokens.token_type.clone(),
            expires_at: now().saturating_add(tokens.expires_in()),
            scope: tokens.scope.clone().or_else(|| scope.map(str::to_owned)),
            refresh_token: tokens
                .refresh_token
                .clone()
                .unwrap_or_else(|| refresh_token.clone()),
            id_token,
            obtained: std::time::Instant::now(),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(aud: &str, scope: &str) -> TokenSet {
        TokenSet {
            audience: aud.into(),
            access_token: SecretString::new(format!("{aud} {scope}")),
            scope: Some(scope.into()),
            expires_at: 1,
            extra: Map::new(),
        }
    }

    #[test]
    fn selection_prefers_exact_then_smallest_superset() {
        let sets = vec![
            set("a", "read write admin"),
            set("a", "read write"),
            set("a", "read"),
            set("b", "read"),
        ];
        assert_eq!(
            select(&sets, "a", Some("read")).unwrap().scope.as_deref(),
            Some("read")
        );
        assert_eq!(
            select(&sets, "a", Some("write")).unwrap().scope.as_deref(),
            Some("read write")
        );
        assert_eq!(
            select(&sets, "a", Some("admin")).unwrap().scope.as_deref(),
            Some("read write admin")
        );
        assert!(select(&sets, "a", Some("delete")).is_none());
        assert!(select(&sets, "c", None).is_none());
        assert_eq!(select(&sets, "b", None).unwrap().audience, "b");
    }

    #[test]
    fn a_call_scope_keeps_openid_for_the_login_audience_only() {
        assert_eq!(call_scope("read:reports", true), "openid read:reports");
        assert_eq!(call_scope("profile openid", true), "profile openid");
        assert_eq!(
            call_scope(" read:orders  write:orders ", false),
            "read:orders write:orders"
        );
    }
}
