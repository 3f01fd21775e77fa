//! Access tokens from the session, refreshed with the refresh token when needed.
//!
//! Token sets are keyed by (audience, scope); one refresh token serves many audiences (Auth0
//! multi-resource refresh tokens). The set chosen is an exact scope match, else the smallest
//! superset of the requested scopes.

use std::fmt;

use serde_json::{Map, Value};

use crate::client::ServerClient;
use crate::cookies::CookieJar;
use crate::error::{Error, IdTokenError, Result};
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
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Refresh even if the held token is still valid.
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
    /// The audience key (`"default"` for the default audience).
    pub audience: String,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("token", &"[redacted]")
            .finish()
    }
}

impl From<&TokenSet> for AccessToken {
    fn from(t: &TokenSet) -> Self {
        Self {
            token: t.access_token.clone(),
            expires_at: t.expires_at,
            scope: t.scope.clone(),
            audience: t.audience.clone(),
        }
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
    /// refresh is needed and impossible; [`Error::SessionExpired`] (and the session deleted)
    /// when the provider answers `invalid_grant`; transport and token-endpoint errors.
    pub async fn get_access_token(
        &self,
        options: AccessTokenOptions,
        jar: &mut dyn CookieJar,
    ) -> Result<AccessToken> {
        let c = &self.inner.config;
        let mut session = self
            .inner
            .sessions
            .get(jar)
            .await?
            .ok_or(Error::NotAuthenticated)?;
        let audience = options
            .audience
            .or_else(|| c.authorization_params.get("audience").map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
        let scope = options.scope.as_deref().filter(|s| !s.trim().is_empty());
        let deadline = now().saturating_add(c.token_refresh_leeway.as_secs());
        if !options.force_refresh
            && let Some(set) =
                select(&session.token_sets, &audience, scope).filter(|t| t.expires_at > deadline)
        {
            return Ok(set.into());
        }
        let refresh_token = session.refresh_token.clone().ok_or(Error::MissingRefreshToken)?;
        let set = self
            .refresh(&mut session, &refresh_token, &audience, scope, jar)
            .await?;
        Ok((&set).into())
    }

    async fn refresh(
        &self,
        session: &mut SessionData,
        refresh_token: &SecretString,
        audience: &str,
        scope: Option<&str>,
        jar: &mut dyn CookieJar,
    ) -> Result<TokenSet> {
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
            Err(Error::Endpoint { error, .. }) if error.error == "invalid_grant" => {
                tracing::info!("refresh token rejected (invalid_grant); ending the session");
                self.inner.sessions.delete(jar).await?;
                return Err(Error::SessionExpired);
            }
            Err(e) => return Err(e),
        };
        if let Some(id_token) = &tokens.id_token {
            let meta = self.metadata().await?;
            let claims = self.validate_id_token(&meta, id_token, None).await?;
            // OIDC Core 12.2: a refreshed ID token is about the same user.
            if claims.get("sub") != session.user.get("sub") {
                return Err(IdTokenError::MissingClaim("sub").into());
            }
            super::login::verify_at_hash(&claims, id_token, tokens.access_token.expose())?;
            session.user = user_claims(claims);
            session.id_token = Some(SecretString::new(id_token.clone()));
        }
        if let Some(rt) = tokens.refresh_token.clone() {
            session.refresh_token = Some(rt);
        }
        let set = TokenSet {
            audience: audience.to_owned(),
            access_token: tokens.access_token.clone(),
            scope: tokens.scope.clone().or_else(|| scope.map(str::to_owned)),
            expires_at: now().saturating_add(tokens.expires_in()),
            extra: Map::<String, Value>::new(),
        };
        session.token_sets.retain(|t| {
            !(t.audience == set.audience && scopes(t.scope.as_deref()) == scopes(set.scope.as_deref()))
        });
        session.token_sets.push(set.clone());
        self.write_session(session, jar).await?;
        Ok(set)
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
}
