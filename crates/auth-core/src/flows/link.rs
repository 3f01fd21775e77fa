//! Auth0 user linking and unlinking: authorize requests with `link_account` /
//! `unlink_account` scope, `requested_connection` and the session's ID token as
//! `id_token_hint`, completed by a code exchange that updates the session.

use serde_json::Value;
use url::Url;

use crate::client::ServerClient;
use crate::cookies::CookieJar;
use crate::error::{Error, Result};
use crate::params::{AuthorizationParams, DEFAULT_SCOPE};
use crate::protocol::authorize::{Par, check_app_state};
use crate::protocol::callback::CallbackParams;
use crate::secret::SecretString;
use crate::session::user_claims;
use crate::transaction::{Transaction, TransactionKind};

/// Options for [`ServerClient::start_link_user`].
#[derive(Debug, Clone)]
#[must_use]
pub struct LinkOptions {
    connection: String,
    connection_scope: Option<String>,
    authorization_params: AuthorizationParams,
    app_state: Option<Value>,
}

impl LinkOptions {
    /// Link the account the user signs in to at `connection` (e.g. `google-oauth2`).
    pub fn new(connection: impl Into<String>) -> Self {
        Self {
            connection: connection.into(),
            connection_scope: None,
            authorization_params: AuthorizationParams::new(),
            app_state: None,
        }
    }

    /// Scopes to request from the connection (`requested_connection_scope`).
    pub fn connection_scope(mut self, scope: impl Into<String>) -> Self {
        self.connection_scope = Some(scope.into());
        self
    }

    /// Extra authorization parameters (e.g. `redirect_uri`); `scope` is set by the flow.
    pub fn authorization_params(mut self, params: AuthorizationParams) -> Self {
        self.authorization_params = params;
        self
    }

    /// JSON returned by the completion (e.g. where to go next).
    pub fn app_state(mut self, app_state: Value) -> Self {
        self.app_state = Some(app_state);
        self
    }
}

/// Options for [`ServerClient::start_unlink_user`].
#[derive(Debug, Clone)]
#[must_use]
pub struct UnlinkOptions {
    connection: String,
    authorization_params: AuthorizationParams,
    app_state: Option<Value>,
}

impl UnlinkOptions {
    /// Unlink the user's identity at `connection`.
    pub fn new(connection: impl Into<String>) -> Self {
        Self {
            connection: connection.into(),
            authorization_params: AuthorizationParams::new(),
            app_state: None,
        }
    }

    /// Extra authorization parameters (e.g. `redirect_uri`); `scope` is set by the flow.
    pub fn authorization_params(mut self, params: AuthorizationParams) -> Self {
        self.authorization_params = params;
        self
    }

    /// JSON returned by the completion.
    pub fn app_state(mut self, app_state: Value) -> Self {
        self.app_state = Some(app_state);
        self
    }
}

/// What a completed link or unlink returns.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LinkResult {
    /// The `app_state` given at the start.
    pub app_state: Option<Value>,
}

fn check_connection(connection: &str) -> Result<()> {
    if connection.is_empty() || connection.len() > 128 || connection.chars().any(char::is_control) {
        return Err(Error::InvalidParameter(
            "`connection` must be a connection name".into(),
        ));
    }
    Ok(())
}

impl ServerClient {
    /// Starts linking another identity to the logged-in user; returns the URL to redirect to.
    ///
    /// The authorize request carries the session's ID token as `id_token_hint`; when the
    /// provider has a PAR endpoint it is pushed (RFC 9126) even if PAR is not enabled on this
    /// client, so the URL returned holds only `client_id` and `request_uri`. Only when the
    /// provider answers the push with an OAuth error and PAR is neither enabled here nor
    /// required by the provider (PAR not enabled at the tenant) does the request go in the URL.
    /// Pinned parameters apply as for logins.
    ///
    /// # Errors
    /// [`Error::NotAuthenticated`] without a session holding an ID token;
    /// [`Error::InvalidParameter`] for a bad connection, reserved or pinned parameter;
    /// [`crate::ConfigError::ParNotSupported`] when PAR is enabled or required but the provider
    /// has no PAR endpoint.
    pub async fn start_link_user(&self, options: LinkOptions, jar: &mut dyn CookieJar) -> Result<Url> {
        check_connection(&options.connection)?;
        if options
            .connection_scope
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
        {
            return Err(Error::InvalidParameter(
                "`connection_scope` must not be empty".into(),
            ));
        }
        let mut flow_params = vec![("requested_connection".to_owned(), options.connection.clone())];
        if let Some(scope) = options.connection_scope {
            flow_params.push(("requested_connection_scope".to_owned(), scope));
        }
        self.start_account_flow(
            TransactionKind::Link,
            "link_account",
            flow_params,
            options.authorization_params,
            options.app_state,
            jar,
        )
        .await
    }

    /// Starts unlinking the identity at a connection from the logged-in user.
    ///
    /// # Errors
    /// As [`ServerClient::start_link_user`].
    pub async fn start_unlink_user(&self, options: UnlinkOptions, jar: &mut dyn CookieJar) -> Result<Url> {
        check_connection(&options.connection)?;
        self.start_account_flow(
            TransactionKind::Unlink,
            "unlink_account",
            vec![("requested_connection".to_owned(), options.connection.clone())],
            options.authorization_params,
            options.app_state,
            jar,
        )
        .await
    }

    async fn start_account_flow(
        &self,
        kind: TransactionKind,
        scope_word: &str,
        mut flow_params: Vec<(String, String)>,
        params: AuthorizationParams,
        mut app_state: Option<Value>,
        jar: &mut dyn CookieJar,
    ) -> Result<Url> {
        // Input first, then the session (`authorize_request` validates the parameters again).
        params.validate()?;
        check_app_state(&mut app_state)?;
        let session = self.load_session(jar).await?.ok_or(Error::NotAuthenticated)?;
        let id_token = session.id_token.clone().ok_or(Error::NotAuthenticated)?;
        let session_sub = session
            .user
            .get("sub")
            .and_then(Value::as_str)
            .ok_or(Error::NotAuthenticated)?
            .to_owned();
        let request = self.authorize_request(kind, &params)?;
        // The flow's scope is fixed; offline_access rides along when the app uses it.
        let mut scope = format!("openid {scope_word}");
        let configured_scope = request.requested_scope().unwrap_or(DEFAULT_SCOPE);
        if configured_scope.split_whitespace().any(|s| s == "offline_access") {
            scope.push_str(" offline_access");
        }
        flow_params.push(("id_token_hint".into(), id_token.expose().to_owned()));
        request
            .scope(scope)
            .flow_params(
                &[
                    "requested_connection",
                    "requested_connection_scope",
                    "id_token_hint",
                ],
                flow_params,
            )
            .app_state(app_state)
            .session_sub(session_sub)
            .check_max_age(false)
            // The request carries the session's ID token: whenever the provider offers PAR,
            // push it so the token never appears in the browser's URL (history, logs, Referer).
            .par(Par::WheneverOffered)
            .start(self, jar)
            .await
    }

    /// Completes a link from the callback URL; the session is updated with the new tokens.
    ///
    /// # Errors
    /// As [`ServerClient::complete_interactive_login`]; a callback of another flow is refused;
    /// [`Error::IdentityMismatch`] (session unchanged) when the ID token's `sub` is not the
    /// `sub` of the session that started the link, or of the current session.
    pub async fn complete_link_user(
        &self,
        callback_url: &str,
        jar: &mut dyn CookieJar,
    ) -> Result<LinkResult> {
        let params = CallbackParams::from_url(callback_url)?;
        self.complete_account_flow(TransactionKind::Link, &params, jar)
            .await
    }

    /// Completes an unlink from the callback URL.
    ///
    /// # Errors
    /// As [`ServerClient::complete_link_user`].
    pub async fn complete_unlink_user(
        &self,
        callback_url: &str,
        jar: &mut dyn CookieJar,
    ) -> Result<LinkResult> {
        let params = CallbackParams::from_url(callback_url)?;
        self.complete_account_flow(TransactionKind::Unlink, &params, jar)
            .await
    }

    pub(crate) async fn complete_account_flow(
        &self,
        kind: TransactionKind,
        params: &CallbackParams,
        jar: &mut dyn CookieJar,
    ) -> Result<LinkResult> {
        let tx = self.take_transaction_of(kind, params, jar).await?;
        self.finish_account_flow(&tx, params, jar).await
    }

    pub(crate) async fn finish_account_flow(
        &self,
        tx: &Transaction,
        params: &CallbackParams,
        jar: &mut dyn CookieJar,
    ) -> Result<LinkResult> {
        let exchange = self.exchange_code(tx, params).await?;
        let token_sub = exchange.sub();
        // The flow must end with the user who started it: never switch the session's identity.
        if tx.session_sub.is_some() && tx.session_sub.as_deref() != token_sub {
            tracing::warn!(kind = ?tx.kind, "account flow completed for another user; refused");
            return Err(Error::IdentityMismatch);
        }
        match self.load_session(jar).await? {
            Some(shared) => {
                if shared.user.get("sub").and_then(Value::as_str) != token_sub {
                    tracing::warn!(kind = ?tx.kind, "account flow completed in another user's session; refused");
                    return Err(Error::IdentityMismatch);
                }
                let mut session = std::sync::Arc::unwrap_or_clone(shared);
                let set = exchange.token_set(tx);
                session.user = user_claims(exchange.claims.clone());
                session.id_token = Some(SecretString::new(exchange.id_token.clone()));
                if let Some(rt) = exchange.tokens.refresh_token.clone() {
                    session.refresh_token = Some(rt);
                }
                session.token_sets.retain(|t| t.audience != set.audience);
                session.token_sets.push(set);
                if let Some(sid) = exchange.claims.get("sid").and_then(Value::as_str) {
                    session.internal.sid = sid.to_owned();
                }
                self.before_session_saved(&mut session, save_kind(tx.kind), false, jar)
                    .await?;
                self.write_session(&session, false, jar).await?;
            }
            // The session ended while the user was away: the provider vouched for them, so
            // start a fresh one.
            None => {
                let mut session = exchange.new_session(tx);
                self.before_session_saved(&mut session, save_kind(tx.kind), true, jar)
                    .await?;
                self.write_session(&session, true, jar).await?;
            }
        }
        Ok(LinkResult {
            app_state: tx.app_state.clone(),
        })
    }
}

/// The hook's name for an account flow's save.
fn save_kind(kind: TransactionKind) -> crate::hooks::SaveKind {
    match kind {
        TransactionKind::Unlink => crate::hooks::SaveKind::Unlink,
        _ => crate::hooks::SaveKind::Link,
    }
}
