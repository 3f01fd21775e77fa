//! Token Vault: an access token for a third-party connection (e.g. Google), exchanged for the
//! session's refresh token and cached in the session per (connection, login_hint).

use serde_json::Map;

use super::access_token::AccessToken;
use crate::client::ServerClient;
use crate::cookies::CookieJar;
use crate::error::{Error, Result};
use crate::session::ConnectionTokenSet;
use crate::time::now;

/// The Token Vault grant.
pub const TOKEN_VAULT_GRANT: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";
const SUBJECT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:refresh_token";
const REQUESTED_TOKEN_TYPE: &str = "http://auth0.com/oauth/token-type/federated-connection-access-token";

/// Options for [`ServerClient::get_access_token_for_connection`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ConnectionTokenOptions {
    connection: String,
    login_hint: Option<String>,
}

impl ConnectionTokenOptions {
    /// A token for `connection` (e.g. `google-oauth2`).
    pub fn new(connection: impl Into<String>) -> Self {
        Self {
            connection: connection.into(),
            login_hint: None,
        }
    }

    /// Which of the user's accounts at the connection (when several are connected).
    pub fn login_hint(mut self, hint: impl Into<String>) -> Self {
        self.login_hint = Some(hint.into());
        self
    }
}

impl ServerClient {
    /// An access token for a third-party connection from Auth0 Token Vault, served from the
    /// session's cache while it is valid.
    ///
    /// # Errors
    /// [`Error::NotAuthenticated`]; [`Error::MissingRefreshToken`] (before any request) when the
    /// session has no refresh token; token endpoint errors (e.g. no account connected).
    pub async fn get_access_token_for_connection(
        &self,
        options: ConnectionTokenOptions,
        jar: &mut dyn CookieJar,
    ) -> Result<AccessToken> {
        if options.connection.is_empty() || options.connection.len() > 128 {
            return Err(Error::InvalidParameter(
                "`connection` must be a connection name".into(),
            ));
        }
        let mut session = self.load_session(jar).await?.ok_or(Error::NotAuthenticated)?;
        let deadline = now().saturating_add(self.inner.config.token_refresh_leeway.as_secs());
        let same =
            |t: &ConnectionTokenSet| t.connection == options.connection && t.login_hint == options.login_hint;
        if let Some(cached) = session
            .connection_token_sets
            .iter()
            .find(|t| same(t) && t.expires_at > deadline)
        {
            return Ok(AccessToken::new(
                cached.access_token.clone(),
                cached.expires_at,
                cached.scope.clone(),
                cached.connection.clone(),
            )
            .with_token_type(Some(cached.token_type())));
        }
        let refresh_token = session.refresh_token.clone().ok_or(Error::MissingRefreshToken)?;
        let mut form = vec![
            ("grant_type".to_owned(), TOKEN_VAULT_GRANT.to_owned()),
            ("subject_token_type".to_owned(), SUBJECT_TOKEN_TYPE.to_owned()),
            ("subject_token".to_owned(), refresh_token.expose().to_owned()),
            ("requested_token_type".to_owned(), REQUESTED_TOKEN_TYPE.to_owned()),
            ("connection".to_owned(), options.connection.clone()),
        ];
        if let Some(h) = &options.login_hint {
            form.push(("login_hint".to_owned(), h.clone()));
        }
        let tokens = self.token_request(form).await?;
        let set = ConnectionTokenSet {
            connection: options.connection.clone(),
            login_hint: options.login_hint.clone(),
            access_token: tokens.access_token.clone(),
            scope: tokens.scope.clone(),
            expires_at: now().saturating_add(tokens.expires_in()),
            extra: Map::from_iter(crate::dpop::token_type_fields(tokens.token_type.as_deref())),
        };
        let owned = std::sync::Arc::make_mut(&mut session);
        owned.connection_token_sets.retain(|t| !same(t));
        owned.connection_token_sets.push(set.clone());
        self.write_session(&session, false, jar).await?;
        let token_type = set.token_type();
        let token = AccessToken::new(set.access_token, set.expires_at, set.scope, set.connection);
        Ok(token.with_token_type(Some(token_type)))
    }
}
