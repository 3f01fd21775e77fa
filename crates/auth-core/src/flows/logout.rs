//! Logout: end the local session and build the provider's logout URL.

use url::Url;

use crate::client::ServerClient;
use crate::cookies::CookieJar;
use crate::discovery::ProviderMetadata;
use crate::error::{ConfigError, Error, Result};
use crate::secret::SecretString;
use crate::session::SessionData;
use crate::store::LogoutKey;

/// Options for [`ServerClient::logout`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct LogoutOptions {
    return_to: Option<String>,
    federated: bool,
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

    /// Also ask the provider to end the session at the upstream identity provider (Google,
    /// an enterprise connection, …): adds the `federated` presence flag to the provider's
    /// logout URL (`end_session_endpoint` or Auth0's `/v2/logout`). Default `false`: the URL
    /// is unchanged (`federated` is never sent with a value meaning "off").
    pub fn federated(mut self, federated: bool) -> Self {
        self.federated = federated;
        self
    }
}

impl ServerClient {
    /// Ends the session: deletes the session and every transaction of this browser, then
    /// returns the URL that ends the provider's session too.
    ///
    /// The URL is, in order of preference: the provider's `end_session_endpoint` (OIDC
    /// RP-initiated logout with `id_token_hint`, `post_logout_redirect_uri`, `client_id`);
    /// Auth0's `/v2/logout` for an Auth0 tenant without one; else the return URL itself. With
    /// [`LogoutOptions::federated`] the provider URL also carries the `federated` flag. The
    /// local session is deleted even when the provider cannot be reached.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a relative `return_to`; store errors. When discovery
    /// fails the local logout still happens and the return URL is returned.
    ///
    /// A cookie session's `sid` also goes on the logout list, so a copy of the cookie no
    /// longer opens; and when the provider advertises a `revocation_endpoint` the session's
    /// refresh token is revoked there (RFC 7009). Failures of either are logged, never
    /// returned: the local logout always happens.
    pub async fn logout(&self, options: LogoutOptions, jar: &mut dyn CookieJar) -> Result<Url> {
        let federated = options.federated;
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
        let c = &self.inner.config;
        let session = self.inner.sessions.get(jar).await.ok().flatten();
        self.inner.sessions.delete(jar).await?;
        self.inner.transactions.delete_all(jar).await?;
        if !c.server_side_sessions
            && let Some(s) = &session
        {
            self.end_cookie_copies(s).await;
        }
        tracing::debug!(had_session = session.is_some(), "local session ended");

        let meta = match self.metadata().await {
            Ok(meta) => Some(meta),
            Err(e) => {
                tracing::warn!(
                    code = e.code(),
                    "logout: provider metadata unavailable; local logout only"
                );
                None
            }
        };
        if let (Some(meta), Some(rt)) = (&meta, session.as_ref().and_then(|s| s.refresh_token.as_ref())) {
            self.revoke_refresh_token(meta, rt).await;
        }
        let end_session = meta.and_then(|m| m.end_session_endpoint.clone());
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
                if federated {
                    q.append_key_only("federated");
                }
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
                if federated {
                    q.append_key_only("federated");
                }
            }
            return Ok(url);
        }
        return_to
            .ok_or_else(|| ConfigError::Missing("logout return_to or app_base_url (APP_BASE_URL)").into())
    }
}

impl ServerClient {
    /// Puts a cookie session's `sid` on the logout list: the browser's cookie is deleted, but
    /// a copy of it (or the opened-session cache) must not open it any more either.
    async fn end_cookie_copies(&self, session: &SessionData) {
        let c = &self.inner.config;
        let sid = session.sid();
        if sid.is_empty() {
            return;
        }
        // Milliseconds: a new login after this one, even within the same second, is unaffected.
        let key = LogoutKey::Sid(sid.to_owned());
        if let Err(e) = c
            .backend
            .record_logout(&key, crate::client::now_ms(), c.lifetimes.absolute)
            .await
        {
            tracing::warn!(
                error = %e,
                "logout: could not put the session on the logout list; copies of its cookie \
                 stay valid until they expire"
            );
        }
    }

    /// Revokes `refresh_token` at the provider's revocation endpoint (RFC 7009), with the
    /// client authentication of the token endpoint. Best effort: failures are logged.
    async fn revoke_refresh_token(&self, meta: &ProviderMetadata, refresh_token: &SecretString) {
        let Some(endpoint) = &meta.revocation_endpoint else {
            return;
        };
        let c = &self.inner.config;
        let mut form = vec![
            ("token".to_owned(), refresh_token.expose().to_owned()),
            ("token_type_hint".to_owned(), "refresh_token".to_owned()),
        ];
        let auth = match c.client_auth.apply(&c.client_id, &meta.issuer, &mut form) {
            Ok(auth) => auth,
            Err(e) => {
                tracing::warn!(
                    code = e.code(),
                    "logout: cannot authenticate the revocation request"
                );
                return;
            }
        };
        let Ok(body) = serde_urlencoded::to_string(&form) else {
            return;
        };
        let mut req = self
            .inner
            .http
            .post(endpoint.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(a) = auth.as_deref() {
            req = req.header("authorization", a);
        }
        match crate::http::send(req, endpoint).await {
            Ok(r) if r.status == 200 => tracing::debug!("logout: refresh token revoked"),
            Ok(r) => tracing::warn!(
                status = r.status,
                "logout: the provider refused to revoke the refresh token"
            ),
            Err(e) => tracing::warn!(code = e.code(), "logout: revoking the refresh token failed"),
        }
    }
}
