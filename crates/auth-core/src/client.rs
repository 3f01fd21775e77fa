//! [`ServerClient`]: the stateful client every flow hangs off.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, ServerClientBuilder};
use crate::cookies::{CookieAttributes, CookieJar};
use crate::discovery::{Discovery, ProviderMetadata};
use crate::error::Result;
use crate::seal::Sealer;
use crate::secret::SecretString;
use crate::session::{Session, SessionData, UserClaims};
use crate::store::{CookieStateStore, CookieTransactionStore, StateStore, TransactionStore};

/// How long the session cookie lives in the browser when nothing shortens it.
const SESSION_COOKIE_MAX_AGE: Duration = Duration::from_secs(3 * 24 * 3600);

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
        let sessions = CookieStateStore::new(
            sealer.clone(),
            config.cookies.session_name.clone(),
            CookieAttributes {
                max_age: Some(SESSION_COOKIE_MAX_AGE),
                ..base.clone()
            },
        );
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
                sessions: Arc::new(sessions),
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
        Ok(self.inner.sessions.get(jar).await?.map(|s| s.user))
    }

    /// The session without its refresh token, or `None`.
    ///
    /// # Errors
    /// Only store failures.
    pub async fn get_session(&self, jar: &mut dyn CookieJar) -> Result<Option<Session>> {
        Ok(self
            .inner
            .sessions
            .get(jar)
            .await?
            .map(|s| Session::from_data(&s, false)))
    }

    /// The session including its refresh token. Use sparingly: the refresh token is the most
    /// powerful credential the session holds.
    ///
    /// # Errors
    /// Only store failures.
    pub async fn get_session_with_refresh_token(&self, jar: &mut dyn CookieJar) -> Result<Option<Session>> {
        Ok(self
            .inner
            .sessions
            .get(jar)
            .await?
            .map(|s| Session::from_data(&s, true)))
    }

    pub(crate) async fn write_session(&self, session: &SessionData, jar: &mut dyn CookieJar) -> Result<()> {
        self.inner.sessions.set(session, jar).await
    }
}
