//! Interactive login: authorization code flow with PKCE, state and nonce; optional PAR and RAR.

use oauth2::{CsrfToken, PkceCodeChallenge};
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use super::callback::CallbackParams;
use super::token::{TokenResponse, check_at_hash};
use crate::client::ServerClient;
use crate::cookies::CookieJar;
use crate::discovery::ProviderMetadata;
use crate::error::{CallbackError, ConfigError, Error, IdTokenError, Result};
use crate::id_token::{self, Expected};
use crate::params::{AuthorizationParams, normalize_scope};
use crate::session::{Internal, SessionData, TokenSet, UserClaims, user_claims};
use crate::time::now;
use crate::transaction::{Transaction, TransactionKind, is_valid_state};
use crate::{http, secret::SecretString};

/// Largest serialized `app_state`: it rides in a transaction cookie, which must stay under the
/// browser's 4 KB limit after sealing.
pub const MAX_APP_STATE_BYTES: usize = 1536;

/// Deepest nesting accepted in `app_state`: well inside serde_json's recursion limit (128),
/// which the transaction must pass again when it is read back on the callback.
pub(crate) const MAX_APP_STATE_DEPTH: usize = 64;

/// Refuses an `app_state` that is too large or too deeply nested to ride in a transaction,
/// taking a refused value out of `app_state` and freeing it without recursion.
///
/// Checked without recursion and without serializing more than the size limit: serde_json's
/// serializer recurses once per nesting level with no depth limit, and so does dropping a
/// `Value`, so either overflows the stack on a value nested thousands of levels deep.
pub(crate) fn check_app_state(app_state: &mut Option<Value>) -> Result<()> {
    let refused = app_state_problem(app_state.as_ref());
    if refused.is_some()
        && let Some(value) = app_state.take()
    {
        drop_iteratively(value);
    }
    refused.map_or(Ok(()), Err)
}

/// Frees a `Value` of any depth with an explicit stack instead of recursive drops.
fn drop_iteratively(value: Value) {
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            Value::Array(items) => pending.extend(items),
            Value::Object(fields) => pending.extend(fields.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

fn app_state_problem(app_state: Option<&Value>) -> Option<Error> {
    let app_state = app_state?;
    let mut containers = vec![(app_state, 1)];
    while let Some((value, depth)) = containers.pop() {
        let children: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            Value::Object(fields) => fields.values().collect(),
            _ => continue,
        };
        if depth > MAX_APP_STATE_DEPTH {
            return Some(Error::InvalidParameter(format!(
                "app_state is nested more than {MAX_APP_STATE_DEPTH} levels deep"
            )));
        }
        containers.extend(
            children
                .into_iter()
                .filter(|c| c.is_array() || c.is_object())
                .map(|c| (c, depth + 1)),
        );
    }

    /// Counts bytes and fails past the limit, so serializing stops there.
    struct Bounded(usize);
    impl std::io::Write for Bounded {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            if self.0 > MAX_APP_STATE_BYTES {
                return Err(std::io::Error::other("app_state too large"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Bounded(0), app_state).err().map(|_| {
        Error::InvalidParameter(format!(
            "app_state is larger than {MAX_APP_STATE_BYTES} bytes once serialized"
        ))
    })
}

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
    /// where to send the user afterwards). At most [`MAX_APP_STATE_BYTES`] once serialized,
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

#[derive(Deserialize)]
struct ParResponse {
    request_uri: String,
    #[allow(dead_code)]
    #[serde(default)]
    expires_in: Option<Value>,
}

impl ServerClient {
    /// Whether the authorization parameter `name` is pinned: the configured value (or its
    /// absence) always wins over per-call values (see
    /// [`crate::ServerClientBuilder::pin_authorization_param`]). HTTP integrations use this to
    /// never forward a pinned name from request input.
    #[must_use]
    pub fn is_pinned_authorization_param(&self, name: &str) -> bool {
        self.inner.config.pinned_params.contains(name)
    }

    /// Starts an interactive login: stores a transaction (state, nonce, PKCE verifier,
    /// redirect URI, app state) and returns the URL to redirect the browser to.
    ///
    /// # Errors
    /// - [`Error::InvalidParameter`] for reserved or malformed per-call parameters, a per-call
    ///   value for a pinned parameter, or an oversized `app_state`;
    /// - [`Error::Config`] when PAR is asked for but the provider has no PAR endpoint;
    /// - transport, discovery and PAR endpoint errors.
    pub async fn start_interactive_login(
        &self,
        mut options: LoginOptions,
        jar: &mut dyn CookieJar,
    ) -> Result<Url> {
        let c = &self.inner.config;
        options.authorization_params.validate()?;
        let mut params = c
            .authorization_params
            .merged_pinned(&options.authorization_params, &c.pinned_params)?;
        let redirect_uri = checked_redirect_uri(params.remove("redirect_uri"))?;
        let scope = normalize_scope(params.remove("scope").as_deref());
        check_app_state(&mut options.app_state)?;
        if params.get("response_mode") == Some("form_post") && !c.cookies.secure {
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

        let meta = self.metadata().await?;
        let use_par = options
            .pushed_authorization_requests
            .unwrap_or(c.pushed_authorization_requests)
            || meta.require_pushed_authorization_requests;
        if use_par && meta.pushed_authorization_request_endpoint.is_none() {
            return Err(ConfigError::ParNotSupported.into());
        }

        let state = CsrfToken::new_random_len(32).secret().clone();
        let nonce = CsrfToken::new_random_len(32).secret().clone();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();

        let mut query: Vec<(String, String)> = vec![
            ("response_type".into(), "code".into()),
            ("client_id".into(), c.client_id.clone()),
            ("redirect_uri".into(), redirect_uri.to_string()),
            ("scope".into(), scope.clone()),
            ("state".into(), state.clone()),
            ("nonce".into(), nonce.clone()),
            ("code_challenge".into(), challenge.as_str().to_owned()),
            ("code_challenge_method".into(), "S256".into()),
        ];
        query.extend(params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
        self.add_authorize_telemetry(&mut query);

        let url = if use_par {
            self.push_authorization_request(&meta, query).await?
        } else {
            let mut url = meta.authorization_endpoint.clone();
            url.query_pairs_mut().extend_pairs(&query);
            url
        };

        let tx = Transaction {
            kind: TransactionKind::Login,
            state,
            nonce,
            code_verifier: SecretString::new(verifier.secret().clone()),
            redirect_uri: redirect_uri.to_string(),
            audience: params.get("audience").map(str::to_owned),
            scope,
            app_state: options.app_state,
            max_age: params.get("max_age").and_then(|m| m.parse().ok()),
            organization: params.get("organization").map(str::to_owned),
            auth_session: None,
            session_sub: None,
            created_at: now(),
        };
        self.inner.transactions.set(&tx, jar).await?;
        tracing::debug!(par = use_par, "interactive login started");
        Ok(url)
    }

    /// RFC 9126: pushes the parameters and returns `{authorization_endpoint}?client_id&request_uri`.
    pub(crate) async fn push_authorization_request(
        &self,
        meta: &ProviderMetadata,
        mut form: Vec<(String, String)>,
    ) -> Result<Url> {
        let c = &self.inner.config;
        let Some(par_endpoint) = &meta.pushed_authorization_request_endpoint else {
            return Err(ConfigError::ParNotSupported.into());
        };
        // Client authentication adds client_id where the method needs it; keep exactly one.
        form.retain(|(k, _)| k != "client_id");
        let auth = c.client_auth.apply(&c.client_id, &meta.issuer, &mut form)?;
        if !form.iter().any(|(k, _)| k == "client_id") {
            form.push(("client_id".into(), c.client_id.clone()));
        }
        let resp: ParResponse = http::post_form(
            &self.inner.http,
            "pushed_authorization_request",
            par_endpoint,
            &form,
            auth.as_deref(),
            &[],
            &[201, 200],
        )
        .await?;
        if resp.request_uri.is_empty() || resp.request_uri.len() > 2048 {
            return Err(Error::InvalidResponse {
                endpoint: "pushed_authorization_request",
                reason: "request_uri is missing or oversized".into(),
            });
        }
        let mut url = meta.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &c.client_id)
            .append_pair("request_uri", &resp.request_uri);
        Ok(url)
    }

    /// Completes a login from the callback URL the provider redirected to.
    ///
    /// The transaction is deleted whatever the outcome, so a callback can be used only once.
    ///
    /// # Errors
    /// [`Error::MissingTransaction`], [`Error::InvalidCallback`], [`Error::Authorization`]
    /// (the provider's `error`/`error_description`), token endpoint errors and
    /// [`Error::IdToken`] for each failed ID-token rule.
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
        let tx = self.take_transaction(params, jar).await?;
        if tx.kind != TransactionKind::Login {
            return Err(Error::InvalidCallback(CallbackError::WrongFlow));
        }
        let result = self.finish_login(&tx, params, jar).await;
        if let Err(e) = &result {
            tracing::info!(code = e.code(), error = %e, "login callback failed");
        }
        result
    }

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

    pub(crate) async fn finish_login(
        &self,
        tx: &Transaction,
        params: &CallbackParams,
        jar: &mut dyn CookieJar,
    ) -> Result<LoginResult> {
        let (tokens, id_token, claims) = self.exchange_code(tx, params).await?;
        let user = user_claims(claims.clone());
        let session = new_session(tx, &tokens, id_token, &claims);
        self.write_session(&session, true, jar).await?;
        tracing::debug!("interactive login completed");
        Ok(LoginResult {
            app_state: tx.app_state.clone(),
            authorization_details: tokens.authorization_details,
            user,
        })
    }

    /// The code half of every authorize-based flow: RFC 9207 `iss`, the provider's `error`,
    /// the code exchange with the transaction's `redirect_uri` and verifier, and the ID token
    /// checked against the transaction (nonce, max_age, organization) and `at_hash`.
    pub(crate) async fn exchange_code(
        &self,
        tx: &Transaction,
        params: &CallbackParams,
    ) -> Result<(TokenResponse, String, Map<String, Value>)> {
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
        let id_token = tokens.id_token.clone().ok_or(IdTokenError::Missing)?;
        let claims = self
            .verify_response_id_token(&meta, &id_token, Some(tx), tokens.access_token.expose())
            .await?;
        Ok((tokens, id_token, claims))
    }

    /// An ID token from a token response, validated ([`ServerClient::validate_id_token`]) and
    /// its `at_hash` checked against the response's access token; its claims.
    pub(crate) async fn verify_response_id_token(
        &self,
        meta: &ProviderMetadata,
        id_token: &str,
        tx: Option<&Transaction>,
        access_token: &str,
    ) -> Result<Map<String, Value>> {
        let claims = self.validate_id_token(meta, id_token, tx).await?;
        verify_at_hash(&claims, id_token, access_token)?;
        Ok(claims)
    }

    /// The ID token of a token response that answers no transaction (refresh, token
    /// exchange), if there is one: verified as [`ServerClient::verify_response_id_token`].
    pub(crate) async fn optional_response_id_token(
        &self,
        tokens: &TokenResponse,
    ) -> Result<Option<(SecretString, Map<String, Value>)>> {
        let Some(id_token) = &tokens.id_token else {
            return Ok(None);
        };
        let meta = self.metadata().await?;
        let claims = self
            .verify_response_id_token(&meta, id_token, None, tokens.access_token.expose())
            .await?;
        Ok(Some((SecretString::new(id_token.clone()), claims)))
    }

    /// Validates an ID token from the token endpoint; `tx` carries nonce, max_age and
    /// organization for tokens from an authorization code. A configured organization is
    /// checked on every ID token (login, link, unlink, refresh), whatever the transaction says.
    pub(crate) async fn validate_id_token(
        &self,
        meta: &ProviderMetadata,
        token: &str,
        tx: Option<&Transaction>,
    ) -> Result<Map<String, Value>> {
        let c = &self.inner.config;
        let expected = Expected {
            issuer: &meta.issuer,
            client_id: &c.client_id,
            nonce: tx.map(|t| t.nonce.as_str()),
            max_age: tx.and_then(|t| t.max_age),
            organization: c
                .authorization_params
                .get("organization")
                .or_else(|| tx.and_then(|t| t.organization.as_deref())),
            leeway: c.clock_leeway.as_secs(),
            now: now(),
            allowed_algs: &meta.id_token_signing_alg_values_supported,
            client_secret: c.symmetric_token_key(),
        };
        id_token::validate(&self.inner.discovery, token, &expected).await
    }
}

/// A fresh session from a code exchange.
pub(crate) fn new_session(
    tx: &Transaction,
    tokens: &TokenResponse,
    id_token: String,
    claims: &Map<String, Value>,
) -> SessionData {
    fresh_session(
        claims.get("sid").and_then(Value::as_str),
        user_claims(claims.clone()),
        SecretString::new(id_token),
        tokens.refresh_token.clone(),
        token_set(tx, tokens),
    )
}

/// A fresh session (created now) for `user` with one token set; its id is `sid` (the ID
/// token's), or a random one.
pub(crate) fn fresh_session(
    sid: Option<&str>,
    user: Map<String, Value>,
    id_token: SecretString,
    refresh_token: Option<SecretString>,
    token_set: TokenSet,
) -> SessionData {
    let sid = sid.map_or_else(|| CsrfToken::new_random_len(32).secret().clone(), str::to_owned);
    let now = now();
    SessionData {
        user,
        id_token: Some(id_token),
        refresh_token,
        token_sets: vec![token_set],
        connection_token_sets: Vec::new(),
        internal: Internal {
            sid,
            created_at: now,
            last_active: Some(now),
            extra: Map::new(),
        },
        extra: Map::new(),
    }
}

/// The token set a code exchange produced, keyed by the transaction's audience.
pub(crate) fn token_set(tx: &Transaction, tokens: &TokenResponse) -> TokenSet {
    TokenSet {
        audience: tx
            .audience
            .clone()
            .unwrap_or_else(|| crate::session::DEFAULT_AUDIENCE.to_owned()),
        access_token: tokens.access_token.clone(),
        scope: Some(tokens.scope.clone().unwrap_or_else(|| tx.scope.clone())),
        expires_at: now().saturating_add(tokens.expires_in()),
        extra: crate::dpop::token_type_fields(tokens.token_type.as_deref()),
    }
}

/// Validates the ID token's `at_hash` against the access token (OIDC Core 3.1.3.8).
pub(crate) fn verify_at_hash(
    claims: &Map<String, Value>,
    id_token: &str,
    access_token: &str,
) -> Result<(), IdTokenError> {
    let alg = id_token_alg(id_token).ok_or(IdTokenError::Malformed)?;
    check_at_hash(claims, &alg, access_token)
}

fn id_token_alg(token: &str) -> Option<String> {
    use base64::Engine as _;
    let head = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("alg")?.as_str().map(str::to_owned)
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

fn checked_redirect_uri(value: Option<String>) -> Result<Url> {
    let value = value.ok_or(ConfigError::Missing("redirect_uri"))?;
    let url = Url::parse(&value)
        .map_err(|_| Error::InvalidParameter("`redirect_uri` must be an absolute URL".into()))?;
    if !matches!(url.scheme(), "http" | "https") || url.fragment().is_some() {
        return Err(Error::InvalidParameter(
            "`redirect_uri` must be an http(s) URL without a fragment".into(),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn nested(depth: usize, wrap: impl Fn(Value) -> Value) -> Value {
        let mut v = json!(1);
        for _ in 0..depth {
            v = wrap(v);
        }
        v
    }

    /// The error code for `app_state`; a refused value is taken (and freed) by the check.
    fn code(app_state: Value) -> Option<&'static str> {
        let mut slot = Some(app_state);
        let code = check_app_state(&mut slot).err().map(|e| e.code());
        assert_eq!(
            slot.is_none(),
            code.is_some(),
            "refused values are taken, others kept"
        );
        code
    }

    /// Found by the bad-input table test: the size check serialized `app_state` in full,
    /// and serde_json's serializer overflowed the stack on a value nested 10 000 deep.
    #[test]
    fn deep_or_huge_app_state_is_refused_without_overflowing_the_stack() {
        let array = |v| Value::Array(vec![v]);
        // Not `json!({"a": v})`: that serializes `v` into a copy, recursively.
        let object = |v| Value::Object(Map::from_iter([("a".to_owned(), v)]));
        for depth in [MAX_APP_STATE_DEPTH + 1, 10_000, 100_000] {
            assert_eq!(code(nested(depth, array)), Some("invalid_parameter"), "{depth}");
            assert_eq!(code(nested(depth, object)), Some("invalid_parameter"), "{depth}");
        }
        assert_eq!(code(json!("x".repeat(1024 * 1024))), Some("invalid_parameter"));
        assert_eq!(code(json!(vec![0; 1024 * 1024])), Some("invalid_parameter"));
        assert_eq!(check_app_state(&mut None).ok(), Some(()));
    }

    #[test]
    fn app_state_limits_are_exact_and_what_passes_reads_back() {
        // `"…"` is the string plus two quotes.
        let at_limit = json!("x".repeat(MAX_APP_STATE_BYTES - 2));
        assert_eq!(code(at_limit), None);
        assert_eq!(
            code(json!("x".repeat(MAX_APP_STATE_BYTES - 1))),
            Some("invalid_parameter")
        );

        let deepest = nested(MAX_APP_STATE_DEPTH, |v| Value::Array(vec![v]));
        assert_eq!(code(deepest.clone()), None);
        // Whatever passes survives the transaction's trip through serde_json and back.
        let tx = Transaction {
            kind: TransactionKind::Login,
            state: "s".repeat(32),
            nonce: "n".into(),
            code_verifier: SecretString::new("v"),
            redirect_uri: "https://app/cb".into(),
            audience: None,
            scope: "openid".into(),
            app_state: Some(deepest.clone()),
            max_age: None,
            organization: None,
            auth_session: None,
            session_sub: None,
            created_at: 1,
        };
        let json = serde_json::to_vec(&tx).unwrap();
        let back: Transaction = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.app_state, Some(deepest));
    }
}
