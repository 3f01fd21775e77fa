//! The token endpoint and what it answers: requests with client authentication (the same
//! authenticated POST serves PAR and CIBA), the response shape, the response's ID token
//! verified with its `at_hash`, and the fresh session a response starts.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oauth2::CsrfToken;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sha2::Digest as _;
use url::Url;

use crate::client::ServerClient;
use crate::discovery::ProviderMetadata;
use crate::error::{IdTokenError, Result};
use crate::http;
use crate::id_token::{self, Expected};
use crate::secret::SecretString;
use crate::session::{Internal, SessionData, TokenSet};
use crate::time::now;
use crate::transaction::Transaction;

/// A successful token response (RFC 6749 §5.1, OIDC Core 3.1.3.3, RFC 9396 §7).
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: SecretString,
    #[serde(default)]
    pub(crate) token_type: Option<String>,
    #[serde(default)]
    pub(crate) id_token: Option<String>,
    #[serde(default)]
    pub(crate) refresh_token: Option<SecretString>,
    #[serde(default)]
    pub(crate) expires_in: Option<Value>,
    #[serde(default)]
    pub(crate) scope: Option<String>,
    #[serde(default)]
    pub(crate) authorization_details: Option<Value>,
    /// RFC 8693 §2.2.1 (token exchange answers).
    #[serde(default)]
    pub(crate) issued_token_type: Option<String>,
}

impl TokenResponse {
    /// Lifetime in seconds; numbers or numeric strings are accepted, anything else counts as
    /// absent and the token is treated as short-lived.
    pub(crate) fn expires_in(&self) -> u64 {
        match &self.expires_in {
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().map(|f| f.max(0.0) as u64))
                .unwrap_or(0),
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            _ => 60,
        }
    }
}

impl ServerClient {
    /// POSTs `form` plus client authentication to the token endpoint.
    pub(crate) async fn token_request(&self, form: Vec<(String, String)>) -> Result<TokenResponse> {
        let meta = self.metadata().await?;
        if let Some(dpop) = &self.inner.config.dpop {
            // DPoP (RFC 9449): a proof on every token request, one retry on `use_dpop_nonce`.
            let resp = self.dpop_token_request(dpop, &meta, form).await?;
            resp.check_token_type_with(true)?;
            return Ok(resp);
        }
        let resp: TokenResponse = self
            .authenticated_post(&meta, "token", &meta.token_endpoint, form, &[200])
            .await?;
        resp.check_token_type_with(false)?;
        Ok(resp)
    }

    /// POSTs `form` plus client authentication (`client_auth.rs`) to one of the provider's
    /// back-channel endpoints (token, PAR, CIBA) and reads the JSON answer.
    pub(crate) async fn authenticated_post<T: DeserializeOwned>(
        &self,
        meta: &ProviderMetadata,
        endpoint: &'static str,
        url: &Url,
        mut form: Vec<(String, String)>,
        accepted: &[u16],
    ) -> Result<T> {
        let c = &self.inner.config;
        let auth = c.client_auth.apply(&c.client_id, &meta.issuer, &mut form)?;
        http::post_form(
            &self.inner.http,
            endpoint,
            url,
            &form,
            auth.as_deref(),
            &[],
            accepted,
        )
        .await
    }

    /// The ID token a token response must carry (code exchange, CIBA), verified as
    /// [`ServerClient::verify_response_id_token`]; the token and its claims.
    pub(crate) async fn required_response_id_token(
        &self,
        meta: &ProviderMetadata,
        tokens: &TokenResponse,
        tx: Option<&Transaction>,
    ) -> Result<(String, Map<String, Value>)> {
        let id_token = tokens.id_token.clone().ok_or(IdTokenError::Missing)?;
        let claims = self
            .verify_response_id_token(meta, &id_token, tx, tokens.access_token.expose())
            .await?;
        Ok((id_token, claims))
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
    let head = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(head).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("alg")?.as_str().map(str::to_owned)
}

/// OIDC Core 3.1.3.8: when the ID token has `at_hash`, it must match the access token.
pub(crate) fn check_at_hash(
    claims: &Map<String, Value>,
    alg: &str,
    access_token: &str,
) -> Result<(), IdTokenError> {
    let Some(expected) = claims.get("at_hash") else {
        return Ok(());
    };
    let digest: Vec<u8> = match alg {
        a if a.ends_with("384") => sha2::Sha384::digest(access_token.as_bytes()).to_vec(),
        a if a.ends_with("512") || a == "EdDSA" => sha2::Sha512::digest(access_token.as_bytes()).to_vec(),
        _ => sha2::Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    let half = URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2]);
    if expected.as_str() == Some(half.as_str()) {
        Ok(())
    } else {
        Err(IdTokenError::AccessTokenHashMismatch)
    }
}
