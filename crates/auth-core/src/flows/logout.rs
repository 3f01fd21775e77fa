//! Logout: end the local session and build the provider's logout URL.

use url::Url;

use crate::client::ServerClient;
use crate::cookies::CookieJar;
use crate::error::{ConfigError, Error, Result};

/// Options for [`ServerClient::logout`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct LogoutOptions {
    return_to: Option<String>,
}

impl LogoutOptions {
    /// Default options: return to the app's base URL.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the provider sends the browser afterwards: an absolute URL registered with the
    /// provider as a post-logout redirect URI.
    pub fn return_to(mut self, url: impl Into<String>) -> Self {
        self.return_to = Some(url.into());
        self
    }
}

impl ServerClient {
    /// Ends the session: deletes the session and every transaction of this browser, then
    /// returns the URL that ends the provider's session too.
    ///
    /// The URL is, in order of preference: the provider's `end_session_endpoint` (OIDC
    /// RP-initiated logout with `id_token_hint`, `post_logout_redirect_uri`, `client_id`);
    /// Auth0's `/v2/logout` for an Auth0 tenant without one; else the return URL itself. The
    /// local session is deleted even when the provider cannot be reached.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a relative `return_to`; store errors. When discovery
    /// fails the local logout still happens and the return URL is returned.
    pub async fn logout(&self, options: LogoutOptions, jar: &mut dyn CookieJar) -> Result<Url> {
        let return_to = match options.return_to {
            Some(r) => Some(
                Url::parse(&r)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| {
                        Error::InvalidParameter("logout `return_to` must be an absolute http(s) URL".into())
                    })?,
            ),
            None => self.inner.config.app_base_url.clone(),
        };
        let session = self.inner.sessions.get(jar).await.ok().flatten();
        self.inner.sessions.delete(jar).await?;
        self.inner.transactions.delete_all(jar).await?;
        tracing::debug!(had_session = session.is_some(), "local session ended");

        let c = &self.inner.config;
        let end_session = match self.metadata().await {
            Ok(meta) => meta.end_session_endpoint.clone(),
            Err(e) => {
                tracing::warn!(
                    code = e.code(),
                    "logout: provider metadata unavailable; local logout only"
                );
                None
            }
        };
        if let Some(mut url) = end_session {
            {
                let mut q = url.query_pairs_mut();
                if let Some(id_token) = session.as_ref().and_then(|s| s.id_token.as_ref()) {
                    q.append_pair("id_token_hint", id_token.expose());
                }
                if let Some(r) = &return_to {
                    q.append_pair("post_logout_redirect_uri", r.as_str());
                }
                q.append_pair("client_id", &c.client_id);
            }
            return Ok(url);
        }
        if c.auth0_domain.is_some() {
            let mut url =
                Url::parse(&format!("{}v2/logout", c.issuer)).map_err(|_| ConfigError::Invalid {
                    name: "domain",
                    reason: "cannot build the logout URL".into(),
                })?;
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("client_id", &c.client_id);
                if let Some(r) = &return_to {
                    q.append_pair("returnTo", r.as_str());
                }
            }
            return Ok(url);
        }
        return_to
            .ok_or_else(|| ConfigError::Missing("logout return_to or app_base_url (APP_BASE_URL)").into())
    }
}
