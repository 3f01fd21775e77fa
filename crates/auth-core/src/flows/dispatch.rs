//! One entry point for the shared callback URL: login, link, unlink and connect callbacks
//! all arrive at the same `redirect_uri`, told apart by `connect_code` vs `code` and by the
//! kind of the transaction their `state` names. A callback is never completed by another
//! flow's code.

use super::connect::ConnectResult;
use super::link::LinkResult;
use super::login::LoginResult;
use crate::client::ServerClient;
use crate::cookies::CookieJar;
use crate::error::{CallbackError, Error, Result};
use crate::protocol::callback::CallbackParams;
use crate::transaction::TransactionKind;

/// What a callback completed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CallbackOutcome {
    /// An interactive login.
    Login(LoginResult),
    /// A user link.
    Link(LinkResult),
    /// A user unlink.
    Unlink(LinkResult),
    /// A connected account.
    Connect(ConnectResult),
}

impl CallbackOutcome {
    /// The `app_state` of whichever flow completed.
    #[must_use]
    pub fn app_state(&self) -> Option<&serde_json::Value> {
        match self {
            Self::Login(r) => r.app_state.as_ref(),
            Self::Link(r) | Self::Unlink(r) => r.app_state.as_ref(),
            Self::Connect(r) => r.app_state.as_ref(),
        }
    }
}

impl ServerClient {
    /// Completes whichever flow the callback belongs to.
    ///
    /// A `connect_code` is only accepted for a connect transaction and a `code` only for
    /// login/link/unlink ones; a mismatch is [`CallbackError::WrongFlow`]. The transaction is
    /// deleted in every case.
    ///
    /// Identity never switches inside a session: a login always writes a fresh session (a new
    /// server-side id, none of the previous session's tokens), whoever was logged in before;
    /// a link, unlink or connect completion about another user than the session that started
    /// it, or than the current session, is refused with [`Error::IdentityMismatch`] and the
    /// session is left as it was.
    ///
    /// # Errors
    /// As the individual `complete_*` methods.
    pub async fn complete_callback(
        &self,
        params: &CallbackParams,
        jar: &mut dyn CookieJar,
    ) -> Result<CallbackOutcome> {
        let tx = self.take_transaction(params, jar).await?;
        let is_connect_callback = params.get("connect_code").is_some();
        if is_connect_callback && params.get("code").is_some() {
            return Err(Error::InvalidCallback(CallbackError::WrongFlow));
        }
        let result = match (tx.kind, is_connect_callback) {
            (TransactionKind::Connect, true) => self
                .finish_connect(&tx, params, jar)
                .await
                .map(CallbackOutcome::Connect),
            // A provider error on a connect flow arrives without connect_code.
            (TransactionKind::Connect, false) if params.get("error").is_some() => self
                .finish_connect(&tx, params, jar)
                .await
                .map(CallbackOutcome::Connect),
            (TransactionKind::Login, false) => self
                .finish_login(&tx, params, jar)
                .await
                .map(CallbackOutcome::Login),
            (TransactionKind::Link, false) => self
                .finish_account_flow(&tx, params, jar)
                .await
                .map(CallbackOutcome::Link),
            (TransactionKind::Unlink, false) => self
                .finish_account_flow(&tx, params, jar)
                .await
                .map(CallbackOutcome::Unlink),
            _ => Err(Error::InvalidCallback(CallbackError::WrongFlow)),
        };
        if let Err(e) = &result {
            tracing::info!(code = e.code(), kind = ?tx.kind, "callback failed");
        }
        result
    }
}
