//! Connected Accounts through the Auth0 My Account API: connect a third-party account (so
//! Token Vault can hand out its tokens), list and delete connected accounts, list the
//! connections available for connecting.
//!
//! My Account API calls use an access token for audience `https://{domain}/me/` obtained with
//! the session's refresh token (multi-resource refresh tokens).

use oauth2::{CsrfToken, PkceCodeChallenge};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use url::Url;

use super::access_token::AccessTokenOptions;
use super::callback::CallbackParams;
use crate::client::ServerClient;
use crate::cookies::CookieJar;
use crate::error::{CallbackError, ConfigError, Error, Result};
use crate::http;
use crate::secret::SecretString;
use crate::time::now;
use crate::transaction::{Transaction, TransactionKind};

const CREATE: &str = "create:me:connected_accounts";
const READ: &str = "read:me:connected_accounts";
const DELETE: &str = "delete:me:connected_accounts";

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

/// A connected account as the My Account API describes it (unknown fields kept in `extra`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConnectedAccount {
    /// Account id (`cac_…`).
    pub id: String,
    /// The connection.
    pub connection: String,
    /// `offline` or `online`.
    #[serde(default)]
    pub access_type: Option<String>,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Creation time (ISO 8601).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Expiry (ISO 8601), if any.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
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

/// One page of connected accounts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[non_exhaustive]
pub struct ConnectedAccountsPage {
    /// The accounts.
    #[serde(default)]
    pub accounts: Vec<ConnectedAccount>,
    /// Cursor for the next page (`from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// One page of connections available for connecting.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[non_exhaustive]
pub struct ConnectionsPage {
    /// The connections (`name`, `strategy`, `scopes`, …) as the API returns them.
    #[serde(default)]
    pub connections: Vec<Value>,
    /// Cursor for the next page (`from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Paging and filtering for the list calls.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ListOptions {
    connection: Option<String>,
    from: Option<String>,
    take: Option<u32>,
}

impl ListOptions {
    /// The first page, default size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only accounts of this connection (accounts list only).
    pub fn connection(mut self, connection: impl Into<String>) -> Self {
        self.connection = Some(connection.into());
        self
    }

    /// Continue from a previous page's `next`.
    pub fn from(mut self, cursor: impl Into<String>) -> Self {
        self.from = Some(cursor.into());
        self
    }

    /// Page size.
    pub fn take(mut self, take: u32) -> Self {
        self.take = Some(take);
        self
    }
}

#[derive(Deserialize)]
struct ConnectResponse {
    auth_session: String,
    connect_uri: String,
    connect_params: ConnectParams,
}

#[derive(Deserialize)]
struct ConnectParams {
    ticket: String,
}

impl ServerClient {
    /// The My Account API base (`https://{domain}/me/v1`, or the issuer's origin + `/me/v1`).
    fn my_account_url(&self, path: &str) -> Result<Url> {
        let base = self.my_account_audience()?;
        Url::parse(&format!("{base}v1/{path}")).map_err(|_| {
            ConfigError::Invalid {
                name: "domain",
                reason: "cannot build the My Account API URL".into(),
            }
            .into()
        })
    }

    /// The My Account API audience, `https://{domain}/me/`.
    pub(crate) fn my_account_audience(&self) -> Result<String> {
        let c = &self.inner.config;
        let issuer = Url::parse(&c.issuer).map_err(|_| ConfigError::Invalid {
            name: "issuer",
            reason: "not a URL".into(),
        })?;
        Ok(format!("{}/me/", issuer.origin().ascii_serialization()))
    }

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

    /// The My Account API's `connect_uri`, where the browser is sent: https only; plain http
    /// only on loopback when the issuer itself is plain http on loopback (local emulators).
    fn checked_connect_uri(&self, connect_uri: &str) -> Result<Url> {
        let refused = |reason: &str| Error::InvalidResponse {
            endpoint: "my_account_connect",
            reason: reason.into(),
        };
        let url = Url::parse(connect_uri).map_err(|_| refused("connect_uri is not a URL"))?;
        let http_ok = || {
            Url::parse(&self.inner.config.issuer)
                .is_ok_and(|i| i.scheme() == "http" && crate::config::is_loopback(&i))
                && crate::config::is_loopback(&url)
        };
        match url.scheme() {
            "https" if url.host().is_some() => {}
            "http" if http_ok() => {}
            _ => return Err(refused("connect_uri must be an https URL")),
        }
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(refused("connect_uri must not carry credentials or a fragment"));
        }
        Ok(url)
    }

    async fn my_account_token(&self, scope: &str, jar: &mut dyn CookieJar) -> Result<SecretString> {
        let t = self
            .get_access_token(
                AccessTokenOptions::new()
                    .audience(self.my_account_audience()?)
                    .scope(scope),
                jar,
            )
            .await?;
        Ok(t.token)
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
        super::login::check_app_state(&mut options.app_state)?;
        let session_sub = self.session_sub(jar).await?;
        let token = self.my_account_token(CREATE, jar).await?;
        let state = CsrfToken::new_random_len(32).secret().clone();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut body = json!({
            "connection": options.connection,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": challenge.as_str(),
            "code_challenge_method": "S256",
        });
        if !options.scopes.is_empty() {
            body["scopes"] = json!(options.scopes);
        }
        if !options.authorization_params.is_empty() {
            body["authorization_params"] = Value::Object(options.authorization_params);
        }
        let url = self.my_account_url("connected-accounts/connect")?;
        let resp = http::bearer_json(
            &self.inner.http,
            reqwest::Method::POST,
            &url,
            token.expose(),
            Some(&body),
        )
        .await?;
        if resp.status != 201 && resp.status != 200 {
            return Err(Error::InvalidResponse {
                endpoint: "my_account_connect",
                reason: format!("unexpected status {}", resp.status),
            });
        }
        let started: ConnectResponse =
            serde_json::from_slice(&resp.body).map_err(|_| Error::InvalidResponse {
                endpoint: "my_account_connect",
                reason: "missing auth_session, connect_uri or ticket".into(),
            })?;
        let mut target = self.checked_connect_uri(&started.connect_uri)?;
        target
            .query_pairs_mut()
            .append_pair("ticket", &started.connect_params.ticket);
        let tx = Transaction {
            kind: TransactionKind::Connect,
            state,
            nonce: String::new(),
            code_verifier: SecretString::new(verifier.secret().clone()),
            redirect_uri,
            audience: None,
            scope: String::new(),
            app_state: options.app_state,
            max_age: None,
            organization: None,
            auth_session: Some(started.auth_session),
            session_sub: Some(session_sub),
            created_at: now(),
        };
        self.inner.transactions.set(&tx, jar).await?;
        Ok(target)
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
        let tx = self.take_transaction(params, jar).await?;
        if tx.kind != TransactionKind::Connect {
            return Err(Error::InvalidCallback(CallbackError::WrongFlow));
        }
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
        let token = self.my_account_token(CREATE, jar).await?;
        let body = json!({
            "auth_session": auth_session,
            "connect_code": connect_code,
            "redirect_uri": tx.redirect_uri,
            "code_verifier": tx.code_verifier.expose(),
        });
        let url = self.my_account_url("connected-accounts/complete")?;
        let resp = http::bearer_json(
            &self.inner.http,
            reqwest::Method::POST,
            &url,
            token.expose(),
            Some(&body),
        )
        .await?;
        let account: ConnectedAccount =
            serde_json::from_slice(&resp.body).map_err(|_| Error::InvalidResponse {
                endpoint: "my_account_complete",
                reason: "not a connected account".into(),
            })?;
        Ok(ConnectResult {
            account,
            app_state: tx.app_state.clone(),
        })
    }

    /// Lists the user's connected accounts.
    ///
    /// # Errors
    /// As [`ServerClient::start_connect_account`].
    pub async fn list_connected_accounts(
        &self,
        options: ListOptions,
        jar: &mut dyn CookieJar,
    ) -> Result<ConnectedAccountsPage> {
        let token = self.my_account_token(READ, jar).await?;
        let mut url = self.my_account_url("connected-accounts/accounts")?;
        paging(&mut url, &options, true);
        let resp =
            http::bearer_json(&self.inner.http, reqwest::Method::GET, &url, token.expose(), None).await?;
        serde_json::from_slice(&resp.body).map_err(|_| Error::InvalidResponse {
            endpoint: "my_account_accounts",
            reason: "not an accounts page".into(),
        })
    }

    /// Deletes one connected account by id.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an id that is empty, `.`, `..`, or contains `/`, `\`,
    /// `%`, whitespace or control characters (checked before any request); otherwise as
    /// [`ServerClient::start_connect_account`].
    pub async fn delete_connected_account(&self, id: &str, jar: &mut dyn CookieJar) -> Result<()> {
        check_account_id(id)?;
        let token = self.my_account_token(DELETE, jar).await?;
        let mut url = self.my_account_url("connected-accounts/accounts")?;
        url.path_segments_mut()
            .map_err(|()| Error::InvalidParameter("bad My Account URL".into()))?
            .push(id);
        http::bearer_json(
            &self.inner.http,
            reqwest::Method::DELETE,
            &url,
            token.expose(),
            None,
        )
        .await?;
        Ok(())
    }

    /// Lists the connections the user can connect accounts for.
    ///
    /// # Errors
    /// As [`ServerClient::start_connect_account`].
    pub async fn list_connected_account_connections(
        &self,
        options: ListOptions,
        jar: &mut dyn CookieJar,
    ) -> Result<ConnectionsPage> {
        let token = self.my_account_token(READ, jar).await?;
        let mut url = self.my_account_url("connected-accounts/connections")?;
        paging(&mut url, &options, false);
        let resp =
            http::bearer_json(&self.inner.http, reqwest::Method::GET, &url, token.expose(), None).await?;
        serde_json::from_slice(&resp.body).map_err(|_| Error::InvalidResponse {
            endpoint: "my_account_connections",
            reason: "not a connections page".into(),
        })
    }
}

/// A connected account id becomes a URL path segment: refuse anything that could name another
/// path (`.`, `..`, separators) or is not a plausible id.
fn check_account_id(id: &str) -> Result<()> {
    let bad = id.is_empty()
        || id.len() > 256
        || id == "."
        || id == ".."
        || id
            .chars()
            .any(|c| c == '/' || c == '\\' || c == '%' || c.is_control() || c.is_whitespace());
    if bad {
        return Err(Error::InvalidParameter(
            "connected account id must be an id such as `cac_…` (not empty, `.`, `..`, or containing `/`)"
                .into(),
        ));
    }
    Ok(())
}

fn paging(url: &mut Url, options: &ListOptions, with_connection: bool) {
    let mut q = url.query_pairs_mut();
    if with_connection && let Some(c) = &options.connection {
        q.append_pair("connection", c);
    }
    if let Some(f) = &options.from {
        q.append_pair("from", f);
    }
    if let Some(t) = options.take {
        q.append_pair("take", &t.to_string());
    }
    drop(q);
    if url.query() == Some("") {
        url.set_query(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientAuth;

    fn client(issuer: &str) -> ServerClient {
        ServerClient::builder()
            .issuer(issuer)
            .client_id("c")
            .client_auth(ClientAuth::none())
            .secret("0123456789abcdef0123456789abcdef")
            .app_base_url("https://app.example.com")
            .build()
            .expect("valid test config")
    }

    #[test]
    fn connect_uri_must_be_https_unless_everything_is_loopback() {
        let https_issuer = client("https://tenant.example.com/");
        let loopback_issuer = client("http://127.0.0.1:4000/");
        let ok = |c: &ServerClient, u: &str| c.checked_connect_uri(u).is_ok();
        assert!(ok(&https_issuer, "https://tenant.example.com/connect"));
        assert!(ok(&loopback_issuer, "https://tenant.example.com/connect"));
        assert!(ok(&loopback_issuer, "http://127.0.0.1:4000/connect"));
        assert!(ok(&loopback_issuer, "http://localhost:4000/connect"));
        for bad in [
            "http://tenant.example.com/connect",
            "http://127.0.0.1:4000/connect",
            "javascript:alert(1)",
            "data:text/html,x",
            "ftp://tenant.example.com/",
            "https://user:pw@tenant.example.com/",
            "https://tenant.example.com/#frag",
            "not a url",
        ] {
            let e = https_issuer.checked_connect_uri(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_response", "{bad}");
        }
        // With a loopback http issuer, http is still refused off loopback.
        assert!(!ok(&loopback_issuer, "http://evil.example/connect"));
    }

    #[test]
    fn account_ids_that_name_another_path_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "/",
            "a\\b",
            "%2e%2e",
            "a b",
            "a\nb",
            &"x".repeat(257),
        ] {
            assert_eq!(
                check_account_id(bad).unwrap_err().code(),
                "invalid_parameter",
                "{bad:?}"
            );
        }
        for good in ["cac_abc123", "cac_AbC-1.2_x", "..a", "a.."] {
            assert!(check_account_id(good).is_ok(), "{good}");
        }
    }
}
