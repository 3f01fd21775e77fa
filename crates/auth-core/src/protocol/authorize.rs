//! The authorize half of every redirect-based flow: one [`AuthorizeRequest`] used by login,
//! link and unlink (state, nonce, PKCE S256, the configured authorization parameters with the
//! call's laid over them and pinning kept, RAR `authorization_details` riding along as a
//! parameter, telemetry's `auth0Client`, pushed (PAR, RFC 9126) or in the URL), stored as a
//! [`Transaction`] that only the callback of the same kind of flow can complete.
//! Connect-style flows, whose authorize step is another API's, take the same
//! [`RequestSecrets`] and transaction.

use oauth2::{CsrfToken, PkceCodeChallenge, PkceCodeVerifier};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::client::ServerClient;
use crate::cookies::CookieJar;
use crate::discovery::ProviderMetadata;
use crate::error::{ConfigError, Error, Result};
use crate::http;
use crate::params::{AuthorizationParams, normalize_scope};
use crate::secret::SecretString;
use crate::time::now;
use crate::transaction::{Transaction, TransactionKind};

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

/// How an authorization request reaches the provider.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Par {
    /// Pushed (RFC 9126) when this call (`Some`), else the client, enables PAR, or when the
    /// provider requires it; in the URL otherwise.
    AsConfigured(Option<bool>),
    /// As `AsConfigured(None)`, and pushed besides whenever the provider offers a PAR endpoint
    /// (for requests that carry a credential, such as the session's ID token). Such an
    /// unasked-for push that the provider refuses with an OAuth error goes in the URL instead
    /// (an Auth0 tenant where PAR is not enabled lists the endpoint all the same).
    WheneverOffered,
}

/// One authorization request (OIDC Core 3.1.2.1) of a flow, built by
/// [`ServerClient::authorize_request`] and sent by [`AuthorizeRequest::start`].
///
/// The request is, in this order: `response_type=code`, `client_id`, `redirect_uri`, `scope`,
/// `state`, `nonce`, `code_challenge` and its method; the flow's own parameters; the merged
/// authorization parameters; `auth0Client` when telemetry is on for an Auth0 domain.
#[must_use]
pub(crate) struct AuthorizeRequest {
    kind: TransactionKind,
    params: AuthorizationParams,
    redirect_uri: String,
    requested_scope: Option<String>,
    scope: String,
    flow_params: Vec<(String, String)>,
    app_state: Option<Value>,
    session_sub: Option<String>,
    check_max_age: bool,
    par: Par,
}

impl ServerClient {
    /// An authorization request for a flow of `kind`: the configured parameters with the
    /// call's laid over them ([`AuthorizationParams::merged_pinned`]), `redirect_uri` (required)
    /// and `scope` taken out; the scope sent is the requested one with `openid` (see
    /// [`AuthorizeRequest::scope`]).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for reserved or malformed per-call parameters or a per-call
    /// value for a pinned one; [`ConfigError::Missing`] without a `redirect_uri`.
    pub(crate) fn authorize_request(
        &self,
        kind: TransactionKind,
        per_call: &AuthorizationParams,
    ) -> Result<AuthorizeRequest> {
        let c = &self.inner.config;
        per_call.validate()?;
        let mut params = c.authorization_params.merged_pinned(per_call, &c.pinned_params)?;
        let redirect_uri = params
            .remove("redirect_uri")
            .ok_or(ConfigError::Missing("redirect_uri"))?;
        let requested_scope = params.remove("scope");
        Ok(AuthorizeRequest {
            kind,
            scope: normalize_scope(requested_scope.as_deref()),
            params,
            redirect_uri,
            requested_scope,
            flow_params: Vec::new(),
            app_state: None,
            session_sub: None,
            check_max_age: true,
            par: Par::AsConfigured(None),
        })
    }

    /// Whether the authorization parameter `name` is pinned: the configured value (or its
    /// absence) always wins over per-call values (see
    /// [`crate::ServerClientBuilder::pin_authorization_param`]). HTTP integrations use this to
    /// never forward a pinned name from request input.
    #[must_use]
    pub fn is_pinned_authorization_param(&self, name: &str) -> bool {
        self.inner.config.pinned_params.contains(name)
    }

    /// RFC 9126: pushes the parameters and returns `{authorization_endpoint}?client_id&request_uri`.
    async fn push_authorization_request(
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
}

impl AuthorizeRequest {
    /// A merged authorization parameter (e.g. `response_mode`).
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    /// The `scope` the configuration and the call asked for, as given.
    pub(crate) fn requested_scope(&self) -> Option<&str> {
        self.requested_scope.as_deref()
    }

    /// The `scope` to send instead of the requested one (a flow whose scope is fixed).
    pub(crate) fn scope(mut self, scope: String) -> Self {
        self.scope = scope;
        self
    }

    /// Refuses a `redirect_uri` that is not an absolute http(s) URL without a fragment, and
    /// sends it as the URL parser writes it.
    pub(crate) fn require_http_redirect_uri(mut self) -> Result<Self> {
        self.redirect_uri = checked_redirect_uri(&self.redirect_uri)?.to_string();
        Ok(self)
    }

    /// Parameters the flow sets itself, sent after the standard ones; the names in `owned`
    /// are dropped from the merged parameters, so only the flow's values are sent.
    pub(crate) fn flow_params(mut self, owned: &[&str], values: Vec<(String, String)>) -> Self {
        for name in owned {
            self.params.remove(name);
        }
        self.flow_params = values;
        self
    }

    /// JSON the completion returns (checked with [`check_app_state`] by the flow).
    pub(crate) fn app_state(mut self, app_state: Option<Value>) -> Self {
        self.app_state = app_state;
        self
    }

    /// The `sub` of the session that starts the flow: the completion is refused for any
    /// other user.
    pub(crate) fn session_sub(mut self, sub: String) -> Self {
        self.session_sub = Some(sub);
        self
    }

    /// Whether the ID token's `auth_time` is checked against a `max_age` parameter (login);
    /// link and unlink do not check it.
    pub(crate) fn check_max_age(mut self, check: bool) -> Self {
        self.check_max_age = check;
        self
    }

    /// How the request reaches the provider (default: [`Par::AsConfigured`]`(None)`).
    pub(crate) fn par(mut self, par: Par) -> Self {
        self.par = par;
        self
    }

    /// Sends the request: makes `state`, `nonce` and a PKCE S256 pair, pushes the request or
    /// puts it in the authorize URL, stores the transaction through the `TransactionStore`,
    /// and returns the URL to redirect the browser to.
    ///
    /// # Errors
    /// [`ConfigError::ParNotSupported`] when PAR is enabled or required but the provider has
    /// no PAR endpoint; transport, discovery, PAR endpoint and store errors.
    pub(crate) async fn start(self, client: &ServerClient, jar: &mut dyn CookieJar) -> Result<Url> {
        let c = &client.inner.config;
        let meta = client.metadata().await?;
        let (enabled, whenever_offered) = match self.par {
            Par::AsConfigured(call) => (call, false),
            Par::WheneverOffered => (None, true),
        };
        let par_wanted =
            enabled.unwrap_or(c.pushed_authorization_requests) || meta.require_pushed_authorization_requests;
        let par_offered = meta.pushed_authorization_request_endpoint.is_some();
        if par_wanted && !par_offered {
            return Err(ConfigError::ParNotSupported.into());
        }

        let secrets = RequestSecrets::new();
        let mut query: Vec<(String, String)> = vec![
            ("response_type".into(), "code".into()),
            ("client_id".into(), c.client_id.clone()),
            ("redirect_uri".into(), self.redirect_uri.clone()),
            ("scope".into(), self.scope.clone()),
            ("state".into(), secrets.state.clone()),
            ("nonce".into(), secrets.nonce.clone()),
            ("code_challenge".into(), secrets.code_challenge().to_owned()),
            ("code_challenge_method".into(), "S256".into()),
        ];
        query.extend(self.flow_params.iter().cloned());
        query.extend(self.params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
        client.add_authorize_telemetry(&mut query);

        let mut pushed = true;
        let url = if par_wanted {
            client.push_authorization_request(&meta, query).await?
        } else if whenever_offered && par_offered {
            match client.push_authorization_request(&meta, query.clone()).await {
                Ok(url) => url,
                // Advertised but refused for this client: PAR is not available, so the request
                // goes in the URL as the provider requires. Never when PAR is wanted.
                Err(Error::Endpoint {
                    endpoint: "pushed_authorization_request",
                    error,
                }) => {
                    tracing::info!(
                        error = %error.error,
                        "the provider refused a pushed link/unlink request; sending it in the URL"
                    );
                    pushed = false;
                    front_channel(&meta, &query)
                }
                Err(e) => return Err(e),
            }
        } else {
            pushed = false;
            front_channel(&meta, &query)
        };

        let mut tx = secrets.transaction(self.kind, self.redirect_uri, self.scope);
        tx.audience = self.params.get("audience").map(str::to_owned);
        tx.organization = self.params.get("organization").map(str::to_owned);
        if self.check_max_age {
            tx.max_age = self.params.get("max_age").and_then(|m| m.parse().ok());
        }
        tx.app_state = self.app_state;
        tx.session_sub = self.session_sub;
        client.inner.transactions.set(&tx, jar).await?;
        tracing::debug!(kind = ?tx.kind, par = pushed, "authorization request started");
        Ok(url)
    }
}

/// The request in the authorize URL's query.
fn front_channel(meta: &ProviderMetadata, query: &[(String, String)]) -> Url {
    let mut url = meta.authorization_endpoint.clone();
    url.query_pairs_mut().extend_pairs(query);
    url
}

/// The secrets of one redirect-based flow: `state` (CSRF defence and the transaction's key),
/// a `nonce` when an ID token answers, and a PKCE S256 pair.
pub(crate) struct RequestSecrets {
    pub(crate) state: String,
    pub(crate) nonce: String,
    challenge: PkceCodeChallenge,
    verifier: PkceCodeVerifier,
}

impl RequestSecrets {
    /// Fresh `state`, `nonce` and PKCE pair.
    pub(crate) fn new() -> Self {
        Self {
            nonce: CsrfToken::new_random_len(32).secret().clone(),
            ..Self::without_nonce()
        }
    }

    /// Fresh `state` and PKCE pair, and an empty `nonce`: for flows that get no ID token back
    /// (connected accounts).
    pub(crate) fn without_nonce() -> Self {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        Self {
            state: CsrfToken::new_random_len(32).secret().clone(),
            nonce: String::new(),
            challenge,
            verifier,
        }
    }

    /// The PKCE `code_challenge` (method `S256`).
    pub(crate) fn code_challenge(&self) -> &str {
        self.challenge.as_str()
    }

    /// The transaction that keeps these secrets until the callback, created now; the flow
    /// fills in what else it needs.
    pub(crate) fn transaction(
        self,
        kind: TransactionKind,
        redirect_uri: String,
        scope: String,
    ) -> Transaction {
        Transaction {
            kind,
            state: self.state,
            nonce: self.nonce,
            code_verifier: SecretString::new(self.verifier.secret().clone()),
            redirect_uri,
            audience: None,
            scope,
            app_state: None,
            max_age: None,
            organization: None,
            auth_session: None,
            session_sub: None,
            created_at: now(),
        }
    }
}

#[derive(Deserialize)]
struct ParResponse {
    request_uri: String,
    #[allow(dead_code)]
    #[serde(default)]
    expires_in: Option<Value>,
}

fn checked_redirect_uri(value: &str) -> Result<Url> {
    let url = Url::parse(value)
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
    use serde_json::{Map, json};

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
        let mut tx = RequestSecrets::new().transaction(
            TransactionKind::Login,
            "https://app/cb".into(),
            "openid".into(),
        );
        tx.app_state = Some(deepest.clone());
        let json = serde_json::to_vec(&tx).unwrap();
        let back: Transaction = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.app_state, Some(deepest));
    }
}
