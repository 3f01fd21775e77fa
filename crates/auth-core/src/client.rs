//! [`ServerClient`]: the stateful client every flow hangs off.

use std::fmt;
use std::sync::Arc;

use crate::config::{Config, ServerClientBuilder};
use crate::cookies::{CookieAttributes, CookieJar};
use crate::discovery::{Discovery, ProviderMetadata};
use crate::error::Result;
use crate::seal::Sealer;
use crate::secret::SecretString;
use crate::session::{Session, SessionData, UserClaims};
use crate::store::{
    CookieStateStore, CookieTransactionStore, LogoutKey, ServerSideStateStore, StateStore, TransactionStore,
    WriteOptions,
};
use crate::time::now;

/// The server-side login client: configuration, provider metadata cache and stores.
///
/// Cheap to clone (an `Arc` inside); build one per application with
/// [`ServerClient::builder`] or [`ServerClient::from_env`] and share it.
#[derive(Clone)]
pub struct ServerClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) http: reqwest::Client,
    pub(crate) discovery: Discovery,
    pub(crate) transactions: Arc<dyn TransactionStore>,
    pub(crate) sessions: Arc<dyn StateStore>,
    pub(crate) refreshes: crate::flows::refresh::RefreshCoordinator,
}

impl fmt::Debug for ServerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.inner.config;
        f.debug_struct("ServerClient")
            .field("issuer", &c.issuer)
            .field("client_id", &c.client_id)
            .field("client_auth", &c.client_auth)
            .field("secrets", &format_args!("[redacted; {}]", c.secrets.len()))
            .finish_non_exhaustive()
    }
}

impl ServerClient {
    /// Starts a builder.
    pub fn builder() -> ServerClientBuilder {
        ServerClientBuilder::default()
    }

    /// Builds a client from the Auth0 environment variables
    /// (see [`ServerClientBuilder::from_env`]).
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming the variable to fix.
    pub fn from_env() -> Result<Self> {
        ServerClientBuilder::from_env()?.build()
    }

    pub(crate) fn from_config(config: Config, http: reqwest::Client) -> Self {
        let secrets: Vec<&str> = config.secrets.iter().map(SecretString::expose).collect();
        let sealer = Arc::new(Sealer::with_pinned_salts(
            &secrets,
            &[config.cookies.session_name.as_str()],
        ));
        let base = CookieAttributes {
            secure: config.cookies.secure,
            domain: config.cookies.domain.clone(),
            ..CookieAttributes::default()
        };
        let sessions: Arc<dyn StateStore> = if config.server_side_sessions {
            let secrets: Vec<&str> = config.secrets.iter().map(SecretString::expose).collect();
            Arc::new(ServerSideStateStore::new(
                config.backend.clone(),
                &secrets,
                &config.cookies.session_name,
                base.clone(),
            ))
        } else {
            Arc::new(CookieStateStore::with_sealer(
                sealer.clone(),
                config.cookies.session_name.clone(),
                base.clone(),
            ))
        };
        let transactions = CookieTransactionStore::new(
            sealer,
            config.cookies.transaction_prefix.clone(),
            base,
            config.cookies.transaction_max_age,
            config.cookies.max_transactions,
        );
        let discovery = Discovery::new(
            http.clone(),
            config.issuer.clone(),
            config.metadata_ttl,
            config.jwks_refetch_cooldown,
        );
        Self {
            inner: Arc::new(Inner {
                config,
                http,
                discovery,
                transactions: Arc::new(transactions),
                sessions,
                refreshes: crate::flows::refresh::RefreshCoordinator::default(),
            }),
        }
    }

    /// The configured issuer (Auth0: `https://{domain}/`).
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.inner.config.issuer
    }

    /// The Auth0 tenant domain (host, and port if any) when configured with one; `None` for
    /// a generic OIDC issuer.
    #[must_use]
    pub fn auth0_domain(&self) -> Option<&str> {
        self.inner.config.auth0_domain.as_deref()
    }

    /// The app's public base URL, when configured.
    #[must_use]
    pub fn app_base_url(&self) -> Option<&url::Url> {
        self.inner.config.app_base_url.as_ref()
    }

    /// The configured default `redirect_uri` (absolute).
    #[must_use]
    pub fn redirect_uri(&self) -> Option<&str> {
        self.inner.config.authorization_params.get("redirect_uri")
    }

    /// The client id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.inner.config.client_id
    }

    /// The provider metadata (fetched on first use, then cached).
    ///
    /// # Errors
    /// Transport or discovery errors when the provider cannot be reached or its document is
    /// unusable.
    pub async fn metadata(&self) -> Result<Arc<ProviderMetadata>> {
        self.inner.discovery.metadata().await
    }

    /// The logged-in user's claims, or `None` when there is no (readable) session.
    ///
    /// # Errors
    /// Only store failures; an unreadable cookie is simply no session.
    pub async fn get_user(&self, jar: &mut dyn CookieJar) -> Result<Option<UserClaims>> {
        Ok(self.load_session(jar).await?.map(|s| s.user.clone()))
    }

    /// The session without its refresh token, or `None`.
    ///
    /// # Errors
    /// Only store failures.
    pub async fn get_session(&self, jar: &mut dyn CookieJar) -> Result<Option<Session>> {
        Ok(self
            .load_session(jar)
            .await?
            .map(|s| Session::from_shared(s, false)))
    }

    /// The session including its refresh token. Use sparingly: the refresh token is the most
    /// powerful credential the session holds.
    ///
    /// # Errors
    /// Only store failures.
    pub async fn get_session_with_refresh_token(&self, jar: &mut dyn CookieJar) -> Result<Option<Session>> {
        Ok(self
            .load_session(jar)
            .await?
            .map(|s| Session::from_shared(s, true)))
    }

    /// The session when it can be had at once: the store has it at hand (the cookie store's
    /// opened-session cache), it is within its lifetimes, no back-channel logout list has to be
    /// consulted and no rolling-window touch is due. `None` means "call
    /// [`get_session`](Self::get_session)", which handles every other case (and may find no
    /// session). Adapters use it to answer the common request without an `await`.
    #[must_use]
    pub fn session_at_hand(&self, jar: &dyn CookieJar) -> Option<Session> {
        let c = &self.inner.config;
        if !c.server_side_sessions && c.backend.may_have_logouts() {
            return None;
        }
        let session = self.inner.sessions.get_at_hand(jar)?;
        let now = now();
        if c.lifetimes.is_expired(&session, now) || c.lifetimes.needs_touch(&session, now) {
            return None;
        }
        Some(Session::from_shared(session, false))
    }

    /// Reads the session and enforces what the store alone cannot: lifetimes, the
    /// back-channel logout list (stateless sessions), and the rolling-window touch.
    pub(crate) async fn load_session(&self, jar: &mut dyn CookieJar) -> Result<Option<Arc<SessionData>>> {
        let c = &self.inner.config;
        let Some(mut session) = self.inner.sessions.get_shared(jar).await? else {
            return Ok(None);
        };
        let now = now();
        if c.lifetimes.is_expired(&session, now) {
            tracing::debug!("session expired; ending it");
            self.inner.sessions.delete(jar).await?;
            return Ok(None);
        }
        if !c.server_side_sessions && c.backend.may_have_logouts() {
            let mut keys = vec![LogoutKey::Sid(session.internal.sid.clone())];
            if let Some(sub) = session.user.get("sub").and_then(serde_json::Value::as_str) {
                keys.push(LogoutKey::Sub(sub.to_owned()));
            }
            if c.backend
                .logout_time(&keys)
                .await?
                .is_some_and(|at| at >= session.internal.created_at)
            {
                tracing::debug!("session ended by back-channel logout");
                self.inner.sessions.delete(jar).await?;
                return Ok(None);
            }
        }
        if c.lifetimes.needs_touch(&session, now) {
            Arc::make_mut(&mut session).internal.last_active = Some(now);
            self.write_session(&session, false, jar).await?;
        }
        Ok(Some(session))
    }

    /// Writes the session with its lifetime; `new_session` on login.
    pub(crate) async fn write_session(
        &self,
        session: &SessionData,
        new_session: bool,
        jar: &mut dyn CookieJar,
    ) -> Result<()> {
        let expires_at = self.inner.config.lifetimes.expires_at(session);
        self.inner
            .sessions
            .set(session, WriteOptions::new(expires_at, new_session), jar)
            .await
    }

    pub(crate) async fn end_sessions(&self, key: &LogoutKey) -> Result<Option<usize>> {
        self.inner.sessions.delete_by_logout(key).await
    }
}

#[cfg(test)]
#[path = "at_hand_tests.rs"]
mod at_hand_tests;
