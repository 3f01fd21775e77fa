//! Interactive login: the authorization code flow with PKCE, state and nonce; optional PAR
//! and RAR. The request and the callback are the protocol layer's
//! (`protocol/authorize.rs`, `protocol/callback.rs`); this file is the flow.

use serde_json::Value;
use url::Url;

use crate::client::ServerClient;
use crate::cookies::CookieJar;
use crate::error::{ConfigError, Result};
use crate::hooks::SaveKind;
use crate::params::AuthorizationParams;
use crate::protocol::authorize::{Par, check_app_state};
use crate::protocol::callback::CallbackParams;
use crate::session::UserClaims;
use crate::transaction::{Transaction, TransactionKind};

/// Options for one call of [`ServerClient::start_interactive_login`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct LoginOptions {
    authorization_params: AuthorizationParams,
    app_state: Option<Value>,
    pushed_authorization_requests: Option<bool>,
}

impl LoginOptions {
    /// Default options: the client's global parameters, no app state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parameters for this login only; each overrides the global value of the same name,
    /// except pinned names (see [`crate::ServerClientBuilder::pin_authorization_param`]), for
    /// which a different value is refused.
    pub fn authorization_params(mut self, params: AuthorizationParams) -> Self {
        self.authorization_params = params;
        self
    }

    /// Any JSON to get back from [`ServerClient::complete_interactive_login`] (for example
    /// where to send the user afterwards). At most [`crate::MAX_APP_STATE_BYTES`] once serialized,
    /// nested at most 64 levels deep.
    pub fn app_state(mut self, app_state: Value) -> Self {
        self.app_state = Some(app_state);
        self
    }

    /// Use (or not) a pushed authorization request for this login, overriding the client
    /// setting.
    pub fn pushed_authorization_requests(mut self, enabled: bool) -> Self {
        self.pushed_authorization_requests = Some(enabled);
        self
    }
}

/// What a completed login returns.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoginResult {
    /// The `app_state` given when the login started.
    pub app_state: Option<Value>,
    /// RAR `authorization_details` granted, when the token response carried them.
    pub authorization_details: Option<Value>,
    /// The user's claims, as stored in the session.
    pub user: UserClaims,
}

impl ServerClient {
    /// Starts an interactive login: stores a transaction (state, nonce, PKCE verifier,
    /// redirect URI, app state) and returns the URL to redirect the browser to.
    ///
    /// # Errors
    /// - [`crate::Error::InvalidParameter`] for reserved or malformed per-call parameters, a
    ///   per-call value for a pinned parameter, or an oversized `app_state`;
    /// - [`crate::Error::Config`] when PAR is asked for but the provider has no PAR endpoint;
    /// - transport, discovery and PAR endpoint errors.
    pub async fn start_interactive_login(
        &self,
        mut options: LoginOptions,
        jar: &mut dyn CookieJar,
    ) -> Result<Url> {
        let request = self
            .authorize_request(TransactionKind::Login, &options.authorization_params)?
            .require_http_redirect_uri()?;
        check_app_state(&mut options.app_state)?;
        if request.param("response_mode") == Some("form_post") && !self.inner.config.cookies.secure {
            // The transaction cookie would be `SameSite=Lax` and never reach the provider's
            // cross-site POST: say so now instead of failing the callback.
            return Err(ConfigError::Invalid {
                name: "response_mode",
                reason: "form_post needs Secure cookies (serve the app over https, or http only on \
                         localhost), or configure response_mode=form_post on the client"
                    .into(),
            }
            .into());
        }
        let url = request
            .app_state(options.app_state)
            .par(Par::AsConfigured(options.pushed_authorization_requests))
            .start(self, jar)
            .await?;
        tracing::debug!("interactive login started");
        Ok(url)
    }

    /// Completes a login from the callback URL the provider redirected to.
    ///
    /// The transaction is deleted whatever the outcome, so a callback can be used only once.
    ///
    /// # Errors
    /// [`crate::Error::MissingTransaction`], [`crate::Error::InvalidCallback`], [`crate::Error::Authorization`]
    /// (the provider's `error`/`error_description`), token endpoint errors and
    /// [`crate::Error::IdToken`] for each failed ID-token rule.
    pub async fn complete_interactive_login(
        &self,
        callback_url: &str,
        jar: &mut dyn CookieJar,
    ) -> Result<LoginResult> {
        let params = CallbackParams::from_url(callback_url)?;
        self.complete_interactive_login_with(&params, jar).await
    }

    /// [`ServerClient::complete_interactive_login`] with already-parsed parameters (for
    /// `response_mode=form_post`, parse the body with [`CallbackParams::from_form`]).
    ///
    /// # Errors
    /// As [`ServerClient::complete_interactive_login`].
    pub async fn complete_interactive_login_with(
        &self,
        params: &CallbackParams,
        jar: &mut dyn CookieJar,
    ) -> Result<LoginResult> {
        let tx = self
            .take_transaction_of(TransactionKind::Login, params, jar)
            .await?;
        let result = self.finish_login(&tx, params, jar).await;
        if let Err(e) = &result {
            tracing::info!(code = e.code(), error = %e, "login callback failed");
        }
        result
    }

    pub(crate) async fn finish_login(
        &self,
        tx: &Transaction,
        params: &CallbackParams,
        jar: &mut dyn CookieJar,
    ) -> Result<LoginResult> {
        let exchange = self.exchange_code(tx, params).await?;
        let mut session = exchange.new_session(tx);
        self.before_session_saved(&mut session, SaveKind::Login, true, jar)
            .await?;
        self.write_session(&session, true, jar).await?;
        tracing::debug!("interactive login completed");
        Ok(LoginResult {
            app_state: tx.app_state.clone(),
            user: session.user,
            authorization_details: exchange.tokens.authorization_details,
        })
    }
}
