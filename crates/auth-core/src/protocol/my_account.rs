//! The Auth0 My Account API client (`https://{domain}/me/v1/`): connected accounts (start and
//! complete a connect, list, delete) and the connections available for connecting.
//!
//! Every call carries an access token for audience `https://{domain}/me/`, obtained with the
//! session's refresh token (multi-resource refresh tokens) and the scope the call needs. The
//! connect flow itself (transaction, callback) is `flows/connect.rs`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use crate::client::ServerClient;
use crate::cookies::CookieJar;
use crate::error::{ConfigError, Error, Result};
use crate::flows::access_token::AccessTokenOptions;
use crate::http;
use crate::secret::SecretString;

const CREATE: &str = "create:me:connected_accounts";
const READ: &str = "read:me:connected_accounts";
const DELETE: &str = "delete:me:connected_accounts";

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

/// What `connected-accounts/connect` answers: where to send the browser, and the session to
/// complete against.
pub(crate) struct ConnectStarted {
    /// The My Account API's `auth_session`.
    pub(crate) auth_session: String,
    /// The checked `connect_uri` with its `ticket`.
    pub(crate) target: Url,
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

    /// One My Account API call: an access token with `scope`, then `method` on `url` with
    /// the JSON `body`.
    async fn my_account_call(
        &self,
        method: reqwest::Method,
        scope: &str,
        url: &Url,
        body: Option<&Value>,
        jar: &mut dyn CookieJar,
    ) -> Result<http::Response> {
        let token = self.my_account_token(scope, jar).await?;
        http::bearer_json(&self.inner.http, method, url, token.expose(), body).await
    }

    /// `POST connected-accounts/connect` with `body` (connection, redirect URI, state, PKCE
    /// challenge, scopes, authorization parameters): the `auth_session` and where to send the
    /// browser (the checked `connect_uri` with its `ticket`).
    pub(crate) async fn my_account_connect(
        &self,
        body: &Value,
        jar: &mut dyn CookieJar,
    ) -> Result<ConnectStarted> {
        let url = self.my_account_url("connected-accounts/connect")?;
        let resp = self
            .my_account_call(reqwest::Method::POST, CREATE, &url, Some(body), jar)
            .await?;
        if resp.status != 201 && resp.status != 200 {
            return Err(Error::InvalidResponse {
                endpoint: "my_account_connect",
                reason: format!("unexpected status {}", resp.status),
            });
        }
        let started: ConnectResponse = parse(
            &resp,
            "my_account_connect",
            "missing auth_session, connect_uri or ticket",
        )?;
        let mut target = self.checked_connect_uri(&started.connect_uri)?;
        target
            .query_pairs_mut()
            .append_pair("ticket", &started.connect_params.ticket);
        Ok(ConnectStarted {
            auth_session: started.auth_session,
            target,
        })
    }

    /// `POST connected-accounts/complete` with `body` (auth session, connect code, redirect
    /// URI, PKCE verifier): the new connected account.
    pub(crate) async fn my_account_complete(
        &self,
        body: &Value,
        jar: &mut dyn CookieJar,
    ) -> Result<ConnectedAccount> {
        let url = self.my_account_url("connected-accounts/complete")?;
        let resp = self
            .my_account_call(reqwest::Method::POST, CREATE, &url, Some(body), jar)
            .await?;
        parse(&resp, "my_account_complete", "not a connected account")
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
        self.my_account_list(&ACCOUNTS, &options, jar).await
    }

    /// Deletes one connected account by id.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an id that is empty, `.`, `..`, or contains `/`, `\`,
    /// `%`, whitespace or control characters (checked before any request); otherwise as
    /// [`ServerClient::start_connect_account`].
    pub async fn delete_connected_account(&self, id: &str, jar: &mut dyn CookieJar) -> Result<()> {
        check_account_id(id)?;
        let mut url = self.my_account_url("connected-accounts/accounts")?;
        url.path_segments_mut()
            .map_err(|()| Error::InvalidParameter("bad My Account URL".into()))?
            .push(id);
        self.my_account_call(reqwest::Method::DELETE, DELETE, &url, None, jar)
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
        self.my_account_list(&CONNECTIONS, &options, jar).await
    }

    /// One page of a list, `GET connected-accounts/{path}` with the paging options.
    async fn my_account_list<T: DeserializeOwned>(
        &self,
        list: &List,
        options: &ListOptions,
        jar: &mut dyn CookieJar,
    ) -> Result<T> {
        let mut url = self.my_account_url(list.path)?;
        paging(&mut url, options, list.with_connection);
        let resp = self
            .my_account_call(reqwest::Method::GET, READ, &url, None, jar)
            .await?;
        parse(&resp, list.endpoint, list.not_a_page)
    }
}

/// A list of the API: its path, whether it filters by connection, and how a bad answer is
/// reported.
struct List {
    path: &'static str,
    with_connection: bool,
    endpoint: &'static str,
    not_a_page: &'static str,
}

const ACCOUNTS: List = List {
    path: "connected-accounts/accounts",
    with_connection: true,
    endpoint: "my_account_accounts",
    not_a_page: "not an accounts page",
};

const CONNECTIONS: List = List {
    path: "connected-accounts/connections",
    with_connection: false,
    endpoint: "my_account_connections",
    not_a_page: "not a connections page",
};

/// The JSON body of an API answer, or [`Error::InvalidResponse`] with `reason`.
fn parse<T: DeserializeOwned>(resp: &http::Response, endpoint: &'static str, reason: &str) -> Result<T> {
    serde_json::from_slice(&resp.body).map_err(|_| Error::InvalidResponse {
        endpoint,
        reason: reason.into(),
    })
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
