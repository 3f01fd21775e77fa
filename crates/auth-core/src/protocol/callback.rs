//! The callback half of every authorize-based flow, shared by all completions: parsing the
//! authorization response (query or `form_post` body), taking the transaction its `state`
//! names, and the code exchange (RFC 9207 `iss`, the provider's `error`, the code with the
//! PKCE verifier, the ID token verified against the transaction and its `at_hash`).

use serde_json::{Map, Value};
use url::Url;

use super::token::{TokenResponse, fresh_session};
use crate::client::ServerClient;
use crate::cookies::CookieJar;
use crate::discovery::ProviderMetadata;
use crate::error::{CallbackError, Error, Result};
use crate::secret::SecretString;
use crate::session::{SessionData, TokenSet, user_claims};
use crate::time::now;
use crate::transaction::{Transaction, TransactionKind, is_valid_state};

/// Largest callback we parse; real ones are a few hundred bytes.
const MAX_CALLBACK_LEN: usize = 16 * 1024;

/// The parameters of an authorization response.
///
/// Build it from the callback URL ([`CallbackParams::from_url`]), its query string, or a
/// `response_mode=form_post` body ([`CallbackParams::from_form`]). Repeated parameters are
/// refused (RFC 6749 §3.1).
///
/// `Debug` shows every parameter name but only the values of a few harmless ones (`state`,
/// `error`, …): the authorization `code` and anything else (tokens such as `id_token` or
/// `logout_token`, unknown parameters) print as `[redacted]`, so logging a callback never leaks
/// a credential.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CallbackParams {
    params: Vec<(String, String)>,
}

/// Parameters whose values [`CallbackParams`]'s `Debug` shows; every other value is redacted.
const SHOWN_IN_DEBUG: &[&str] = &[
    "state",
    "error",
    "error_description",
    "error_uri",
    "iss",
    "scope",
    "response_mode",
];

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        /// One value: shown, or `[redacted]`.
        struct Value<'a>(&'a str, bool);
        impl std::fmt::Debug for Value<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                if self.1 {
                    std::fmt::Debug::fmt(self.0, f)
                } else {
                    f.write_str("[redacted]")
                }
            }
        }
        let mut map = f.debug_map();
        for (name, value) in &self.params {
            map.entry(name, &Value(value, SHOWN_IN_DEBUG.contains(&name.as_str())));
        }
        map.finish()
    }
}

impl CallbackParams {
    /// Parses the query of a full callback URL.
    ///
    /// # Errors
    /// [`CallbackError::Malformed`] or [`CallbackError::DuplicateParameter`].
    pub fn from_url(url: &str) -> Result<Self> {
        if url.len() > MAX_CALLBACK_LEN {
            return Err(Error::InvalidCallback(CallbackError::Malformed));
        }
        let parsed = Url::parse(url).map_err(|_| Error::InvalidCallback(CallbackError::Malformed))?;
        Self::from_query(parsed.query().unwrap_or(""))
    }

    /// Parses a query string (without the leading `?`).
    ///
    /// # Errors
    /// As [`CallbackParams::from_url`].
    pub fn from_query(query: &str) -> Result<Self> {
        Self::from_form(query.as_bytes())
    }

    /// Parses an `application/x-www-form-urlencoded` body.
    ///
    /// # Errors
    /// As [`CallbackParams::from_url`].
    pub fn from_form(body: &[u8]) -> Result<Self> {
        if body.len() > MAX_CALLBACK_LEN {
            return Err(Error::InvalidCallback(CallbackError::Malformed));
        }
        let mut params: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(body) {
            if params.iter().any(|(n, _)| *n == k) {
                return Err(Error::InvalidCallback(CallbackError::DuplicateParameter(
                    crate::http::truncate(&k, 32),
                )));
            }
            params.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self { params })
    }

    /// The provider's `error` / `error_description` (RFC 6749 §4.1.2.1), trimmed to sane
    /// sizes, as a typed error; `Ok` when the callback carries none.
    pub(crate) fn provider_error(&self) -> Result<()> {
        match self.get("error") {
            Some(error) => Err(Error::Authorization(crate::error::OAuthError {
                error: crate::http::truncate(error, 128),
                error_description: self
                    .get("error_description")
                    .map(|d| crate::http::truncate(d, 512)),
                status: None,
            })),
            None => Ok(()),
        }
    }

    /// The value of `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a code exchange produced: the token response, its verified ID token and the claims.
pub(crate) struct CodeExchange {
    pub(crate) tokens: TokenResponse,
    pub(crate) id_token: String,
    pub(crate) claims: Map<String, Value>,
}

impl CodeExchange {
    /// The ID token's `sub`.
    pub(crate) fn sub(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// The token set this exchange produced, keyed by the transaction's audience.
    pub(crate) fn token_set(&self, tx: &Transaction) -> TokenSet {
        TokenSet {
            audience: tx
                .audience
                .clone()
                .unwrap_or_else(|| crate::session::DEFAULT_AUDIENCE.to_owned()),
            access_token: self.tokens.access_token.clone(),
            scope: Some(self.tokens.scope.clone().unwrap_or_else(|| tx.scope.clone())),
            expires_at: now().saturating_add(self.tokens.expires_in()),
            extra: crate::dpop::token_type_fields(self.tokens.token_type.as_deref()),
        }
    }

    /// A fresh session from this exchange; its id is the ID token's `sid`, or a random one.
    pub(crate) fn new_session(&self, tx: &Transaction) -> SessionData {
        fresh_session(
            self.claims.get("sid").and_then(Value::as_str),
            user_claims(self.claims.clone()),
            SecretString::new(self.id_token.clone()),
            self.tokens.refresh_token.clone(),
            self.token_set(tx),
        )
    }
}

impl ServerClient {
    /// Finds the transaction for the callback's state and deletes it (on every outcome).
    pub(crate) async fn take_transaction(
        &self,
        params: &CallbackParams,
        jar: &mut dyn CookieJar,
    ) -> Result<Transaction> {
        let state = params
            .get("state")
            .ok_or(Error::InvalidCallback(CallbackError::MissingState))?;
        if !is_valid_state(state) {
            return Err(Error::InvalidCallback(CallbackError::InvalidState));
        }
        let tx = self.inner.transactions.get(state, jar).await;
        self.inner.transactions.delete(state, jar).await?;
        tx?.ok_or(Error::MissingTransaction)
    }

    /// [`ServerClient::take_transaction`], refusing a transaction of another kind of flow
    /// ([`CallbackError::WrongFlow`]; it is deleted all the same).
    pub(crate) async fn take_transaction_of(
        &self,
        kind: TransactionKind,
        params: &CallbackParams,
        jar: &mut dyn CookieJar,
    ) -> Result<Transaction> {
        let tx = self.take_transaction(params, jar).await?;
        if tx.kind != kind {
            return Err(Error::InvalidCallback(CallbackError::WrongFlow));
        }
        Ok(tx)
    }

    /// The code half of every authorize-based flow: RFC 9207 `iss`, the provider's `error`,
    /// the code exchange with the transaction's `redirect_uri` and verifier, and the ID token
    /// checked against the transaction (nonce, max_age, organization) and `at_hash`.
    pub(crate) async fn exchange_code(
        &self,
        tx: &Transaction,
        params: &CallbackParams,
    ) -> Result<CodeExchange> {
        let meta = self.metadata().await?;
        check_response_issuer(&meta, params)?;
        params.provider_error()?;
        let code = params
            .get("code")
            .filter(|c| !c.is_empty())
            .ok_or(Error::InvalidCallback(CallbackError::MissingCode))?;
        let tokens = self
            .token_request(vec![
                ("grant_type".into(), "authorization_code".into()),
                ("code".into(), code.to_owned()),
                ("redirect_uri".into(), tx.redirect_uri.clone()),
                ("code_verifier".into(), tx.code_verifier.expose().to_owned()),
            ])
            .await?;
        let (id_token, claims) = self.required_response_id_token(&meta, &tokens, Some(tx)).await?;
        Ok(CodeExchange {
            tokens,
            id_token,
            claims,
        })
    }
}

/// RFC 9207 mix-up defence: an `iss` in the response must be our issuer; a provider that
/// promises `iss` must send it.
fn check_response_issuer(meta: &ProviderMetadata, params: &CallbackParams) -> Result<()> {
    match params.get("iss") {
        Some(iss) if iss != meta.issuer => Err(Error::InvalidCallback(CallbackError::IssuerMismatch)),
        None if meta.authorization_response_iss_parameter_supported => {
            Err(Error::InvalidCallback(CallbackError::MissingIssuer))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_duplicates() {
        let p = CallbackParams::from_url("https://app/cb?code=abc&state=s%20t").unwrap();
        assert_eq!(p.get("code"), Some("abc"));
        assert_eq!(p.get("state"), Some("s t"));
        let e = CallbackParams::from_url("https://app/cb?code=a&code=b&state=s").unwrap_err();
        assert!(matches!(e, Error::InvalidCallback(CallbackError::DuplicateParameter(ref p)) if p == "code"));
        assert!(CallbackParams::from_url("/relative?code=x").is_err());
        assert!(CallbackParams::from_form(&vec![b'a'; MAX_CALLBACK_LEN + 1]).is_err());
        let p = CallbackParams::from_form(b"code=x&state=y").unwrap();
        assert_eq!(p.get("state"), Some("y"));
        // Non-UTF-8 is replaced, never a panic.
        assert!(CallbackParams::from_form(b"code=%FF%FE&state=y").is_ok());
    }

    #[test]
    fn debug_redacts_the_code_and_tokens() {
        let p = CallbackParams::from_form(
            b"code=SECRET-CODE-1&state=st-123&id_token=SECRET.ID.TOKEN&logout_token=SECRET-LT\
              &access_token=SECRET-AT&unknown=SECRET-X&error=access_denied&iss=https%3A%2F%2Fidp%2F",
        )
        .unwrap();
        for debug in [format!("{p:?}"), format!("{p:#?}")] {
            assert!(!debug.contains("SECRET"), "{debug}");
            for name in ["code", "id_token", "logout_token", "access_token", "unknown"] {
                assert!(debug.contains(&format!("\"{name}\"")), "{name} listed: {debug}");
            }
            assert!(debug.contains("[redacted]"), "{debug}");
            assert!(
                debug.contains("st-123") && debug.contains("access_denied"),
                "{debug}"
            );
            assert!(debug.contains("https://idp/"), "{debug}");
        }
        assert_eq!(format!("{:?}", CallbackParams::default()), "{}");
    }
}
