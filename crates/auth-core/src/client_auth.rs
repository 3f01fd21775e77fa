//! How the client authenticates at the token and PAR endpoints.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore as _;

use crate::error::{ConfigError, Result};
use crate::secret::SecretString;

/// The algorithm of a `private_key_jwt` signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
}

impl SigningAlgorithm {
    fn jwt(self) -> Algorithm {
        match self {
            Self::RS256 => Algorithm::RS256,
            Self::PS256 => Algorithm::PS256,
            Self::ES256 => Algorithm::ES256,
        }
    }
}

/// Client authentication (OIDC Core §9).
///
/// Confidential clients use a secret (`client_secret_basic` by default, or
/// `client_secret_post`) or a private key (`private_key_jwt`, RFC 7523). Public clients use
/// [`ClientAuth::none`] and rely on PKCE alone.
#[derive(Clone)]
pub struct ClientAuth(Kind);

#[derive(Clone)]
enum Kind {
    Basic(SecretString),
    Post(SecretString),
    PrivateKeyJwt {
        key: EncodingKey,
        alg: SigningAlgorithm,
        kid: Option<String>,
    },
    None,
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Basic(_) => f.write_str("ClientAuth::ClientSecretBasic([redacted])"),
            Kind::Post(_) => f.write_str("ClientAuth::ClientSecretPost([redacted])"),
            Kind::PrivateKeyJwt { alg, kid, .. } => f
                .debug_struct("ClientAuth::PrivateKeyJwt")
                .field("alg", alg)
                .field("kid", kid)
                .field("key", &"[redacted]")
                .finish(),
            Kind::None => f.write_str("ClientAuth::None"),
        }
    }
}

impl ClientAuth {
    /// `client_secret_basic`: the secret in an HTTP Basic `Authorization` header. The default.
    pub fn secret(secret: impl Into<SecretString>) -> Self {
        Self(Kind::Basic(secret.into()))
    }

    /// `client_secret_post`: the secret as a form parameter.
    pub fn secret_post(secret: impl Into<SecretString>) -> Self {
        Self(Kind::Post(secret.into()))
    }

    /// `private_key_jwt` (RFC 7523): a short-lived JWT signed with this PEM key (PKCS#8 or
    /// PKCS#1 RSA, PKCS#8 or SEC1 EC). Its public key must be registered with the provider.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when the PEM does not hold a key for `alg`.
    pub fn private_key_jwt(pem: &str, alg: SigningAlgorithm) -> Result<Self> {
        let key = match alg {
            SigningAlgorithm::RS256 | SigningAlgorithm::PS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
            SigningAlgorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
        }
        .map_err(|_| ConfigError::Invalid {
            name: "private key",
            reason: format!("the PEM does not contain a private key usable with {alg:?}"),
        })?;
        Ok(Self(Kind::PrivateKeyJwt { key, alg, kid: None }))
    }

    /// Sets the `kid` header of `private_key_jwt` assertions (some providers need it to pick
    /// the key). No effect for other methods.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        if let Kind::PrivateKeyJwt { kid: k, .. } = &mut self.0 {
            *k = Some(kid.into());
        }
        self
    }

    /// A public client: no authentication, PKCE only.
    #[must_use]
    pub fn none() -> Self {
        Self(Kind::None)
    }

    /// The OAuth name of the method, e.g. `client_secret_basic`.
    #[must_use]
    pub fn method(&self) -> &'static str {
        match self.0 {
            Kind::Basic(_) => "client_secret_basic",
            Kind::Post(_) => "client_secret_post",
            Kind::PrivateKeyJwt { .. } => "private_key_jwt",
            Kind::None => "none",
        }
    }

    /// The client secret, if this method has one (used to verify HS* ID tokens).
    pub(crate) fn client_secret(&self) -> Option<&SecretString> {
        match &self.0 {
            Kind::Basic(s) | Kind::Post(s) => Some(s),
            _ => None,
        }
    }

    /// Adds the authentication to a back-channel request: form fields and possibly a Basic
    /// header. `audience` is the provider's issuer (the assertion's `aud`).
    pub(crate) fn apply(
        &self,
        client_id: &str,
        audience: &str,
        form: &mut Vec<(String, String)>,
    ) -> Result<Option<String>> {
        match &self.0 {
            Kind::Basic(secret) => {
                // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
                let user: String = url::form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
                let pass: String = url::form_urlencoded::byte_serialize(secret.expose().as_bytes()).collect();
                Ok(Some(format!(
                    "Basic {}",
                    STANDARD.encode(format!("{user}:{pass}"))
                )))
            }
            Kind::Post(secret) => {
                form.push(("client_id".into(), client_id.into()));
                form.push(("client_secret".into(), secret.expose().into()));
                Ok(None)
            }
            Kind::PrivateKeyJwt { key, alg, kid } => {
                let assertion = sign_assertion(client_id, audience, key, *alg, kid.as_deref())?;
                form.push(("client_id".into(), client_id.into()));
                form.push((
                    "client_assertion_type".into(),
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion".into(), assertion));
                Ok(None)
            }
            Kind::None => {
                form.push(("client_id".into(), client_id.into()));
                Ok(None)
            }
        }
    }
}

fn sign_assertion(
    client_id: &str,
    audience: &str,
    key: &EncodingKey,
    alg: SigningAlgorithm,
    kid: Option<&str>,
) -> Result<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut jti = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut jti);
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": URL_SAFE_NO_PAD.encode(jti),
    });
    let mut header = Header::new(alg.jwt());
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, key).map_err(|_| {
        ConfigError::Invalid {
            name: "private key",
            reason: "signing the client assertion failed; check the key and algorithm".into(),
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let a = ClientAuth::secret("super-secret-value");
        assert!(!format!("{a:?}").contains("super-secret"));
        let a = ClientAuth::secret_post("super-secret-value");
        assert!(!format!("{a:?}").contains("super-secret"));
    }

    #[test]
    fn basic_header_form_encodes_parts() {
        let a = ClientAuth::secret("s3cr:t/+");
        let mut form = Vec::new();
        let h = a.apply("my client", "https://i/", &mut form).unwrap().unwrap();
        let decoded = STANDARD.decode(h.trim_start_matches("Basic ")).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "my+client:s3cr%3At%2F%2B");
        assert!(form.is_empty());
    }

    #[test]
    fn bad_pem_is_a_config_error() {
        let e = ClientAuth::private_key_jwt("not a pem", SigningAlgorithm::RS256).unwrap_err();
        assert_eq!(e.code(), "configuration_error");
    }
}
