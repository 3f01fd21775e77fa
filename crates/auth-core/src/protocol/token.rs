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
use crate::error::{Error, IdTokenError, LoginRequired, LoginRequiredReason, OAuthError, Result};
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

/// A token-endpoint refusal that means "log in again" (see [`LoginRequiredReason`]) as a
/// [`LoginRequired`] for the token asked for (`audience`, `scope`); `None` for other codes.
/// `sent` are the secrets the request carried (the refresh token): they, and anything else
/// that looks like a token, never reach the description.
pub(crate) fn login_required(
    error: &OAuthError,
    audience: Option<&str>,
    scope: Option<&str>,
    sent: &[&str],
    session_ended: bool,
) -> Option<LoginRequired> {
    let reason = LoginRequiredReason::from_code(&error.error)?;
    Some(LoginRequired {
        reason,
        description: error
            .error_description
            .as_deref()
            .map(|d| safe_description(d, sent))
            .filter(|d| !d.is_empty()),
        status: error.status,
        session_ended,
        audience: audience.map(str::to_owned),
        scope: scope.map(str::to_owned),
    })
}

/// [`login_required`] applied to an error: an [`Error::Endpoint`] of that family becomes
/// [`Error::LoginRequired`] (the session kept); every other error passes unchanged.
pub(crate) fn login_required_error(
    error: Error,
    audience: Option<&str>,
    scope: Option<&str>,
    sent: &[&str],
) -> Error {
    match error {
        Error::Endpoint { endpoint, error } => match login_required(&error, audience, scope, sent, false) {
            Some(l) => Error::LoginRequired(Box::new(l)),
            None => Error::Endpoint { endpoint, error },
        },
        other => other,
    }
}

/// A provider's `error_description` fit for logs and errors: control characters removed, the
/// `sent` secrets and any word that looks like a token (long, token alphabet, with digits)
/// replaced by `[redacted]`, at most [`LoginRequired::MAX_DESCRIPTION`] bytes.
pub(crate) fn safe_description(description: &str, sent: &[&str]) -> String {
    let mut d: String = description
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    for secret in sent.iter().filter(|s| s.len() >= 8) {
        d = d.replace(secret, "[redacted]");
    }
    let words: Vec<&str> = d
        .split(' ')
        .map(|w| if looks_like_token(w) { "[redacted]" } else { w })
        .collect();
    http::truncate(words.join(" ").trim(), LoginRequired::MAX_DESCRIPTION)
}

fn looks_like_token(word: &str) -> bool {
    let w = word.trim_matches(|c: char| "()[]{}<>\"'`,;:".contains(c));
    w.len() >= 24
        && w.chars().any(|c| c.is_ascii_digit())
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~+/=".contains(c))
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
        app_data: Map::new(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: &str, description: &str, status: u16) -> OAuthError {
        OAuthError {
            error: code.into(),
            error_description: Some(description.into()),
            status: Some(status),
        }
    }

    #[test]
    fn the_log_in_again_family_is_typed_and_keeps_the_provider_code() {
        for code in [
            "invalid_grant",
            "invalid_scope",
            "consent_required",
            "login_required",
            "interaction_required",
        ] {
            let e = Error::Endpoint {
                endpoint: "token",
                error: refused(code, "nope", 400),
            };
            let e = login_required_error(e, Some("https://api/"), Some("openid read:x"), &[]);
            assert!(e.requires_login(), "{code}");
            assert_eq!(e.code(), code);
            assert_eq!(e.provider_code(), Some(code));
            let Error::LoginRequired(l) = &e else {
                panic!("{code}: {e:?}")
            };
            assert!(!l.session_ended);
            assert_eq!(l.audience.as_deref(), Some("https://api/"));
            assert_eq!(l.status, Some(400));
        }
        // Other codes (and mfa_required, its own error) stay what they were.
        for code in ["invalid_client", "server_error", "mfa_required", "use_dpop_nonce"] {
            let e = Error::Endpoint {
                endpoint: "token",
                error: refused(code, "x", 400),
            };
            let e = login_required_error(e, None, None, &[]);
            assert!(matches!(e, Error::Endpoint { .. }), "{code}");
            assert!(!e.requires_login(), "{code}");
            assert_eq!(e.provider_code(), Some(code));
        }
        assert!(
            !login_required_error(Error::NotAuthenticated, None, None, &[])
                .code()
                .is_empty()
        );
    }

    #[test]
    fn descriptions_are_capped_and_never_carry_tokens() {
        let rt = "v1.MjAyNi0xMi0wNlQxMzo0MDowMFo-refresh";
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlMTIz";
        let o = refused(
            "invalid_grant",
            &format!(
                "Unknown or invalid refresh token {rt} (was: {jwt})\r\nscope `read:me` for https://api.example.com/"
            ),
            403,
        );
        let l = login_required(&o, None, None, &[rt], true).unwrap();
        let d = l.description.clone().unwrap();
        assert!(!d.contains("MjAy") && !d.contains("eyJ"), "{d}");
        assert!(!d.contains('\n'), "{d}");
        assert!(
            d.contains("read:me") && d.contains("https://api.example.com/"),
            "{d}"
        );
        let shown = Error::LoginRequired(Box::new(l)).to_string();
        assert!(shown.contains("log in again"), "{shown}");
        let long = refused("invalid_scope", &"scope is not allowed ".repeat(100), 400);
        let d = login_required(&long, None, None, &[], false)
            .unwrap()
            .description
            .unwrap();
        assert!(
            d.len() <= LoginRequired::MAX_DESCRIPTION + '…'.len_utf8(),
            "{}",
            d.len()
        );
        assert!(login_required(&refused("access_denied", "x", 400), None, None, &[], false).is_none());
    }
}
