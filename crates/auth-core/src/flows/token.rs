//! The token endpoint: requests with client authentication, and the response shape.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;
use sha2::Digest as _;

use crate::client::ServerClient;
use crate::error::{IdTokenError, Result};
use crate::http;
use crate::secret::SecretString;

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
    pub(crate) async fn token_request(&self, mut form: Vec<(String, String)>) -> Result<TokenResponse> {
        let meta = self.metadata().await?;
        let c = &self.inner.config;
        if let Some(dpop) = &c.dpop {
            // DPoP (RFC 9449): a proof on every token request, one retry on `use_dpop_nonce`.
            let resp = self.dpop_token_request(dpop, &meta, form).await?;
            resp.check_token_type_with(true)?;
            return Ok(resp);
        }
        let auth = c.client_auth.apply(&c.client_id, &meta.issuer, &mut form)?;
        let resp: TokenResponse = http::post_form(
            &self.inner.http,
            "token",
            &meta.token_endpoint,
            &form,
            auth.as_deref(),
            &[],
            &[200],
        )
        .await?;
        resp.check_token_type_with(false)?;
        Ok(resp)
    }
}

/// OIDC Core 3.1.3.8: when the ID token has `at_hash`, it must match the access token.
pub(crate) fn check_at_hash(
    claims: &serde_json::Map<String, Value>,
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
