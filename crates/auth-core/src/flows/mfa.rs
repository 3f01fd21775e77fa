//! MFA step-up: a token request the provider answers `mfa_required` (Auth0: an API that needs
//! multi-factor authentication, by tenant policy or a post-login Action) becomes
//! [`crate::Error::MfaRequired`], carrying what a step-up needs. The session stays valid.
//!
//! Step up interactively: log in again with [`MfaRequired::step_up_authorization_params`]
//! (`audience` and `acr_values` = [`MFA_ACR_VALUE`]); the code exchange's access token is stored
//! under that audience, so the next [`crate::ServerClient::get_access_token`] for it needs no
//! refresh. The `mfa_token` is a credential for Auth0's MFA API (`/mfa/challenge`, the MFA
//! grants): it is kept as a [`SecretString`] and never shown in `Debug`, logs or HTTP answers.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;
use crate::http::truncate;
use crate::params::AuthorizationParams;
use crate::secret::SecretString;
use crate::session::DEFAULT_AUDIENCE;

/// The `acr_values` asking for multi-factor authentication (OpenID PAPE multi-factor policy),
/// the value Auth0 documents for step-up.
pub const MFA_ACR_VALUE: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

/// The provider's `error` code for a token request that needs MFA first.
pub(crate) const MFA_REQUIRED: &str = "mfa_required";

/// What [`crate::Error::MfaRequired`] carries: the audience and scope asked for, the provider's
/// `mfa_token` (secret) and `mfa_requirements` (e.g. `{"challenge": [{"type": "otp"}]}`).
#[derive(Clone)]
#[non_exhaustive]
pub struct MfaRequired {
    /// The API audience the token was asked for (`None`: the default audience).
    pub audience: Option<String>,
    /// The scope asked for, if any.
    pub scope: Option<String>,
    /// The `mfa_token` for Auth0's MFA API. Never send it to the browser as it is.
    pub mfa_token: Option<SecretString>,
    /// The provider's `mfa_requirements` object, when it sent one.
    pub mfa_requirements: Option<Value>,
    /// The provider's `error_description` (for logs; shortened to 512 bytes).
    pub error_description: Option<String>,
    /// HTTP status of the answer (Auth0: 403).
    pub status: u16,
}

impl fmt::Debug for MfaRequired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaRequired")
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("mfa_token", &self.mfa_token.as_ref().map(|_| "[redacted]"))
            .field("mfa_requirements", &self.mfa_requirements)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for MfaRequired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.audience {
            Some(a) => write!(f, "a token for audience `{a}` needs multi-factor authentication")?,
            None => f.write_str("the token needs multi-factor authentication")?,
        }
        f.write_str("; log in again with acr_values (step-up) to get it")
    }
}

impl MfaRequired {
    /// The authorization parameters of the step-up login: `audience` (when not the default)
    /// and `acr_values` = [`MFA_ACR_VALUE`]. Pass them to
    /// [`crate::LoginOptions::authorization_params`].
    #[must_use]
    pub fn step_up_authorization_params(&self) -> AuthorizationParams {
        let mut p = AuthorizationParams::new().param("acr_values", MFA_ACR_VALUE);
        if let Some(a) = &self.audience {
            p = p.audience(a.clone());
        }
        p
    }
}

/// Reads an OAuth error body: `Some` when it is `mfa_required`.
pub(crate) fn from_body(body: &[u8], status: u16) -> Option<MfaRequired> {
    #[derive(Deserialize)]
    struct Body {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
        #[serde(default)]
        mfa_token: Option<String>,
        #[serde(default)]
        mfa_requirements: Option<Value>,
    }
    let b: Body = serde_json::from_slice(body).ok()?;
    if b.error != MFA_REQUIRED {
        return None;
    }
    Some(MfaRequired {
        audience: None,
        scope: None,
        mfa_token: b
            .mfa_token
            .filter(|t| !t.is_empty() && t.len() <= 8192)
            .map(SecretString::new),
        mfa_requirements: b.mfa_requirements.filter(Value::is_object),
        error_description: b.error_description.map(|d| truncate(&d, 512)),
        status,
    })
}

/// Adds the audience and scope asked for to an [`Error::MfaRequired`]; other errors pass.
pub(crate) fn with_context(error: Error, audience: &str, scope: Option<&str>) -> Error {
    match error {
        Error::MfaRequired(mut m) => {
            m.audience = (audience != DEFAULT_AUDIENCE).then(|| audience.to_owned());
            m.scope = scope.map(str::to_owned);
            Error::MfaRequired(m)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_auth0_mfa_required_and_hides_the_token() {
        let body = br#"{"error":"mfa_required","error_description":"Multifactor authentication required",
            "mfa_token":"Fe26.secret-mfa-token","mfa_requirements":{"challenge":[{"type":"otp"}]}}"#;
        let m = from_body(body, 403).expect("mfa_required");
        assert_eq!(
            m.mfa_token.as_ref().map(SecretString::expose),
            Some("Fe26.secret-mfa-token")
        );
        assert_eq!(
            m.mfa_requirements.as_ref().unwrap()["challenge"][0]["type"],
            "otp"
        );
        let e = with_context(Error::MfaRequired(Box::new(m)), "https://api/", Some("read:x"));
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("Fe26"), "{shown}");
        assert!(shown.contains("https://api/"), "{shown}");
        assert_eq!(e.code(), "mfa_required");
        let Error::MfaRequired(m) = e else { unreachable!() };
        let p = m.step_up_authorization_params();
        assert_eq!(p.get("acr_values"), Some(MFA_ACR_VALUE));
        assert_eq!(p.get("audience"), Some("https://api/"));
        assert!(from_body(br#"{"error":"invalid_grant"}"#, 403).is_none());
        assert!(from_body(b"not json", 403).is_none());
    }
}
