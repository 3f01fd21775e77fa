//! Connected Accounts: connect a third-party account to the logged-in user (so Token Vault
//! can hand out its tokens) through the Auth0 My Account API. The flow's authorize step is the
//! API's (`connect_uri` with a ticket), completed by a `connect_code` on the shared callback.
//!
//! The API client itself (tokens for `https://{domain}/me/`, the calls, listing and deleting
//! connected accounts) is `protocol/my_account.rs`.

use serde_json::{Map, Value, json};
use url::Url;

use crate::client::ServerClient;
use crate::cookies::CookieJar;
use crate::error::{CallbackError, ConfigError, Error, Result};
use crate::protocol::authorize::{RequestSecrets, check_app_state};
use crate::protocol::callback::CallbackParams;
use crate::protocol::my_account::ConnectedAccount;
use crate::transaction::{Transaction, TransactionKind};

/// Options for [`ServerClient::start_connect_account`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ConnectAccountOptions {
    connection: String,
    redirect_uri: Option<String>,
    scopes: Vec<String>,
    app_state: Option<Value>,
    authorization_params: Map<String, Value>,
}

impl ConnectAccountOptions {
    /// Connect an account at `connection` (e.g. `google-oauth2`).
    pub fn new(connection: impl Into<String>) -> Self {
        Self {
            connection: connection.into(),
            redirect_uri: None,
            scopes: Vec::new(),
            app_state: None,
            authorization_params: Map::new(),
        }
    }

    /// Where the user returns (default: the client's redirect URI).
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// Scopes to request from the third-party provider.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// JSON returned by the completion.
    pub fn app_state(mut self, app_state: Value) -> Self {
        self.app_state = Some(app_state);
        self
    }

    /// Extra parameters for the third-party authorization request (e.g. `access_type`).
    pub fn authorization_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.authorization_params
            .insert(name.into(), Value::String(value.into()));
        self
    }
}

/// What a completed connect returns.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectResult {
    /// The new connected account.
    pub account: ConnectedAccount,
    /// The `app_state` given at the start.
    pub app_state: Option<Value>,
}

impl ServerClient {
    /// The logged-in user's `sub`.
    async fn session_sub(&self, jar: &mut dyn CookieJar) -> Result<String> {
        let session = self.load_session(jar).await?.ok_or(Error::NotAuthenticated)?;
        session
            .user
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(Error::NotAuthenticated)
    }

    /// Starts connecting a third-party account: asks the My Account API for a connect ticket
    /// and returns the URL to redirect the browser to.
    ///
    /// # Errors
    /// [`Error::NotAuthenticated`], [`Error::MissingRefreshToken`], [`Error::MyAccount`] with the
    /// API's problem details, transport errors; [`Error::InvalidResponse`] when the API's
    /// `connect_uri` is not https (plain http only on loopback with a loopback http issuer).
    pub async fn start_connect_account(
        &self,
        mut options: ConnectAccountOptions,
        jar: &mut dyn CookieJar,
    ) -> Result<Url> {
        let c = &self.inner.config;
        if options.connection.is_empty() || options.connection.len() > 128 {
            return Err(Error::InvalidParameter(
                "`connection` must be a connection name".into(),
            ));
        }
        let redirect_uri = match options.redirect_uri {
            Some(r) => r,
            None => c
                .authorization_params
                .get("redirect_uri")
                .map(str::to_owned)
                .ok_or(ConfigError::Missing("redirect_uri"))?,
        };
        if Url::parse(&redirect_uri).is_err() {
            return Err(Error::InvalidParameter(
                "`redirect_uri` must be an absolute URL".into(),
            ));
        }
        check_app_state(&mut options.app_state)?;
        let session_sub = self.session_sub(jar).await?;
        let secrets = RequestSecrets::without_nonce();
        let mut body = json!({
            "connection": options.connection,
            "redirect_uri": redirect_uri,
            "state": secrets.state,
            "code_challenge": secrets.code_challenge(),
            "code_challenge_method": "S256",
        });
        if !options.scopes.is_empty() {
            body["scopes"] = json!(options.scopes);
        }
        if !options.authorization_params.is_empty() {
            body["authorization_params"] = Value::Object(options.authorization_params);
        }
        let started = self.my_account_connect(&body, jar).await?;
        let mut tx = secrets.transaction(TransactionKind::Connect, redirect_uri, String::new());
        tx.app_state = options.app_state;
        tx.auth_session = Some(started.auth_session);
        tx.session_sub = Some(session_sub);
        self.inner.transactions.set(&tx, jar).await?;
        Ok(started.target)
    }

    /// Completes a connect from the callback URL (`?connect_code=…&state=…`).
    ///
    /// # Errors
    /// [`Error::MissingTransaction`], [`Error::InvalidCallback`] (including a login callback
    /// sent here), [`Error::IdentityMismatch`] when the session is not the one that started the
    /// connect, [`Error::MyAccount`], transport errors.
    pub async fn complete_connect_account(
        &self,
        callback_url: &str,
        jar: &mut dyn CookieJar,
    ) -> Result<ConnectResult> {
        let params = CallbackParams::from_url(callback_url)?;
        self.complete_connect_account_with(&params, jar).await
    }

    /// [`ServerClient::complete_connect_account`] with parsed parameters.
    ///
    /// # Errors
    /// As [`ServerClient::complete_connect_account`].
    pub async fn complete_connect_account_with(
        &self,
        params: &CallbackParams,
        jar: &mut dyn CookieJar,
    ) -> Result<ConnectResult> {
        let tx = self
            .take_transaction_of(TransactionKind::Connect, params, jar)
            .await?;
        self.finish_connect(&tx, params, jar).await
    }

    pub(crate) async fn finish_connect(
        &self,
        tx: &Transaction,
        params: &CallbackParams,
        jar: &mut dyn CookieJar,
    ) -> Result<ConnectResult> {
        params.provider_error()?;
        // Only the user who started the connect may complete it: never attach an account to
        // (or with the tokens of) another user's session.
        if let Some(started_by) = &tx.session_sub
            && self.session_sub(jar).await? != *started_by
        {
            tracing::warn!("connect completed in another user's session; refused");
            return Err(Error::IdentityMismatch);
        }
        let connect_code = params
            .get("connect_code")
            .filter(|c| !c.is_empty())
            .ok_or(Error::InvalidCallback(CallbackError::MissingCode))?;
        let auth_session = tx
            .auth_session
            .clone()
            .ok_or(Error::InvalidCallback(CallbackError::WrongFlow))?;
        let body = json!({
            "auth_session": auth_session,
            "connect_code": connect_code,
            "redirect_uri": tx.redirect_uri,
            "code_verifier": tx.code_verifier.expose(),
        });
        let account = self.my_account_complete(&body, jar).await?;
        Ok(ConnectResult {
            account,
            app_state: tx.app_state.clone(),
        })
    }
}
