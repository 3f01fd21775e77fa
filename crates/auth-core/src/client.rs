//! [`ServerClient`]: the stateful client every flow hangs off.

use std::fmt;
use std::sync::Arc;

use crate::config::{Config, ServerClientBuilder};
use crate::cookies::{CookieAttributes, CookieJar};
use crate::discovery::{Discovery, ProviderMetadata};
use crate::error::{Error, Result};
use crate::seal::Sealer;
use crate::secret::SecretString;
use crate::session::{SessionData, SessionSnapshot, UserClaims};
use crate::store::{
    CachedStateStore, CookieStateStore, CookieTransactionStore, LogoutKey, SESSION_CACHE_CAPACITY,
    ServerSideStateStore, StateStore, TransactionStore, WriteOptions,
};
use crate::time::now;

/// The server-side login client: configuration, provider metadata cache and stores.
///
/// Cheap to clone (an `Arc` inside); build one per application with
/// [`ServerClient::builder`] or [`ServerClient::from_env`] and share it.
#[derive(Clone)]
pub struct ServerClient {
    pub(crate) inner: Arc<Inner>,
    /// The `before_session_saved` hook (`hooks.rs`); outside `inner` so that an integration
    /// can add its own to a shared client.
    pub(crate) save_hook: Option<crate::hooks::SaveHook>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) http: reqwest::Client,
    pub(crate) discovery: Discovery,
    pub(crate) transactions: Arc<dyn TransactionStore>,
    pub(crate) sessions: CachedStateStore,
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
        let store: Box<dyn crate::store::SealedStore> = if config.server_side_sessions {
            let secrets: Vec<&str> = config.secrets.iter().map(SecretString::expose).collect();
            Box::new(ServerSideStateStore::new(
                config.backend.clone(),
                &secrets,
                &config.cookies.session_name,
                base.clone(),
            ))
        } else {
            Box::new(CookieStateStore::with_sealer(
                sealer.clone(),
                config.cookies.session_name.clone(),
                base.clone(),
            ))
        };
        // The opened-session cache serves both kinds of store (`store/cache.rs`).
        let sessions = CachedStateStore::new(store, SESSION_CACHE_CAPACITY);
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
        )
        .with_failure_ttl(config.discovery_failure_ttl)
        .with_max_stale(config.metadata_max_stale);
        Self {
            inner: Arc::new(Inner {
                config,
                http,
                discovery,
                transactions: Arc::new(transactions),
                sessions,
                refreshes: crate::flows::refresh::RefreshCoordinator::default(),
            }),
            save_hook: None,
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

    /// A read-only [`SessionSnapshot`] of the session, without its refresh token, or `None`.
    ///
    /// # Errors
    /// Only store failures.
    pub async fn get_session(&self, jar: &mut dyn CookieJar) -> Result<Option<SessionSnapshot>> {
        Ok(self
            .load_session(jar)
            .await?
            .map(|s| SessionSnapshot::from_shared(s, false)))
    }

    /// A [`SessionSnapshot`] of the session including its refresh token. Use sparingly: the
    /// refresh token is the most powerful credential the session holds.
    ///
    /// # Errors
    /// Only store failures.
    pub async fn get_session_with_refresh_token(
        &self,
        jar: &mut dyn CookieJar,
    ) -> Result<Option<SessionSnapshot>> {
        Ok(self
            .load_session(jar)
            .await?
            .map(|s| SessionSnapshot::from_shared(s, true)))
    }

    /// Reads the session and enforces what the store alone cannot: lifetimes, the logout list
    /// (stateless sessions: back-channel logouts and logouts of copies; times in milliseconds,
    /// see [`logged_out_by`]), and the rolling-window touch. A touch that finds a server-side
    /// session deleted meanwhile means no session.
    pub(crate) async fn load_session(&self, jar: &mut dyn CookieJar) -> Result<Option<Arc<SessionData>>> {
        let c = &self.inner.config;
        let Some(mut session) = self.inner.sessions.read(jar).await? else {
            return Ok(None);
        };
        let now = now();
        if c.lifetimes.is_expired(&session, now) {
            tracing::debug!("session expired; ending it");
            self.inner.sessions.delete(jar).await?;
            return Ok(None);
        }
        if !c.server_side_sessions {
            let sub = session.user.get("sub").and_then(serde_json::Value::as_str);
            let at = match c.backend.logout_time_at_hand(&session.internal.sid, sub) {
                Some(at) => at,
                None => {
                    let mut keys = vec![LogoutKey::Sid(session.internal.sid.clone())];
                    if let Some(sub) = sub {
                        keys.push(LogoutKey::Sub(sub.to_owned()));
                    }
                    c.backend.logout_time(&keys).await?
                }
            };
            if at.is_some_and(|at| logged_out_by(at, &session)) {
                tracing::debug!("session is on the logout list; ending it");
                self.inner.sessions.delete(jar).await?;
                return Ok(None);
            }
        }
        if c.lifetimes.needs_touch(&session, now) {
            Arc::make_mut(&mut session).internal.last_active = Some(now);
            match self.write_session(&session, false, jar).await {
                // The stored session was deleted since it was read: no session.
                Err(Error::SessionExpired) => return Ok(None),
                other => other?,
            }
        }
        Ok(Some(session))
    }

    /// Writes the session with its lifetime; `new_session` on login (which also stamps the
    /// creation time in milliseconds, for the logout list).
    ///
    /// # Errors
    /// [`Error::SessionExpired`] when a server-side session was deleted since it was read
    /// (it is not written back); store errors.
    pub(crate) async fn write_session(
        &self,
        session: &SessionData,
        new_session: bool,
        jar: &mut dyn CookieJar,
    ) -> Result<()> {
        let expires_at = self.inner.config.lifetimes.expires_at(session);
        let options = WriteOptions::new(expires_at, new_session);
        if new_session && !session.internal.extra.contains_key(CREATED_AT_MS) {
            let mut stamped = session.clone();
            let ms = now_ms().max(session.internal.created_at.saturating_mul(1000));
            stamped.internal.extra.insert(CREATED_AT_MS.to_owned(), ms.into());
            return self.inner.sessions.set(&stamped, options, jar).await;
        }
        self.inner.sessions.set(session, options, jar).await
    }

    /// Writes the refreshed session only while the refresh lease `lease_key` is held with
    /// `token` (server-side sessions; cookie sessions just write): `Ok(false)` when the lease
    /// was lost and nothing was written.
    ///
    /// # Errors
    /// As [`write_session`](Self::write_session).
    pub(crate) async fn write_session_fenced(
        &self,
        session: &SessionData,
        lease_key: &str,
        token: u64,
        jar: &mut dyn CookieJar,
    ) -> Result<bool> {
        let expires_at = self.inner.config.lifetimes.expires_at(session);
        let options = WriteOptions::new(expires_at, false);
        self.inner
            .sessions
            .set_fenced(session, options, lease_key, token, jar)
            .await
    }

    pub(crate) async fn end_sessions(&self, key: &LogoutKey) -> Result<Option<usize>> {
        self.inner.sessions.delete_by_logout(key).await
    }
}

/// The session document field (in `internal`) holding its creation time in milliseconds.
const CREATED_AT_MS: &str = "created_at_ms";

/// Logout-list times below this are seconds (recorded by older versions), above milliseconds.
const LEGACY_SECONDS_BELOW: u64 = 100_000_000_000;

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// When the session was created, in milliseconds: its own stamp when it has one that agrees
/// with `created_at`, else the start of its `created_at` second (sessions written by older
/// versions or other SDKs).
fn created_ms(session: &SessionData) -> u64 {
    let start = session.internal.created_at.saturating_mul(1000);
    session
        .internal
        .extra
        .get(CREATED_AT_MS)
        .and_then(serde_json::Value::as_u64)
        .filter(|ms| ms / 1000 == session.internal.created_at)
        .unwrap_or(start)
}

/// Whether a logout recorded at `at` (milliseconds; seconds when recorded by an older
/// version) ends `session`: it does when the session was created at or before the logout, so
/// a session created after it, even within the same second, survives.
pub(crate) fn logged_out_by(at: u64, session: &SessionData) -> bool {
    let at_ms = if at < LEGACY_SECONDS_BELOW {
        at.saturating_mul(1000).saturating_add(999)
    } else {
        at
    };
    at_ms >= created_ms(session)
}

#[cfg(test)]
#[path = "read_path_tests.rs"]
mod read_path_tests;
