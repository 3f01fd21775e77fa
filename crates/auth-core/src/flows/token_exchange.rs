//! Custom token exchange (RFC 8693, Auth0 Custom Token Exchange): trade a token the app got
//! elsewhere (a legacy system's token, another IdP's token) for tokens of this tenant, and
//! optionally make the result the browser's session.
//!
//! Reads top to bottom: validate the options (a `subject_token_type` in a namespace Auth0
//! reserves is refused before anything is sent) → `POST {token_endpoint}` with
//! `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, the options and client
//! authentication (a DPoP proof too when DPoP is on) → verify a returned ID token like a
//! refresh's (no nonce) and its `at_hash` → return, or write a fresh session.
//!
//! The provider's refusals keep their `error` code and HTTP status
//! ([`TokenExchangeError::Refused`]): the tenant's Action decides (`invalid_request` for a
//! subject token it rejects, any code given to `api.access.deny`, `429 too_many_attempts` when
//! one IP sends too many invalid subject tokens).

use std::fmt;

use serde_json::Value;

use super::access_token::AccessToken;
use crate::client::ServerClient;
use crate::cookies::CookieJar;
use crate::error::{Error, OAuthError, Result};
use crate::params::normalize_scope;
use crate::protocol::token::{TokenResponse, fresh_session};
use crate::secret::SecretString;
use crate::session::{DEFAULT_AUDIENCE, TokenSet, UserClaims, user_claims};
use crate::time::now;

/// The RFC 8693 grant type.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Longest `subject_token` / `actor_token` sent (a JWT with many claims fits easily).
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Longest token type URI.
const MAX_TYPE_LEN: usize = 256;
/// Names the grant, client authentication or the library sets; never extra parameters.
const RESERVED_PARAMS: [&str; 13] = [
    "grant_type",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "audience",
    "scope",
    "organization",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "requested_token_type",
];

/// Why a token exchange failed, beyond transport and ID-token problems.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenExchangeError {
    /// The `subject_token_type` (or `actor_token_type`) is in a namespace Auth0 reserves
    /// (`urn:ietf:*`, `urn:auth0:*`, `urn:okta:*`, `http(s)://auth0.com/*`,
    /// `http(s)://okta.com/*`); nothing was sent. Use a URI your organisation owns, e.g.
    /// `urn:acme:legacy-token` or `https://acme.com/token-type/v1`, as configured in the Token
    /// Exchange Profile.
    #[error("token type `{0}` is in a namespace Auth0 reserves; use a URI your organisation owns")]
    ReservedTokenType(String),
    /// The options are unusable (an empty subject token, a token type that is not an absolute
    /// URI, an actor token without its type, …); nothing was sent. The message says which.
    #[error("invalid token exchange request: {0}")]
    InvalidRequest(String),
    /// Making the result a session needs an ID token, and the provider returned none: ask for
    /// the `openid` scope (the session variant adds it) and check the profile's Action sets
    /// the user.
    #[error("the token exchange returned no ID token, so no session can be made from it")]
    NoIdToken,
    /// The provider refused the exchange; `error` and `status` are the provider's
    /// (`invalid_request`, `access_denied`, a custom code, `429 too_many_attempts`, …).
    #[error("the provider refused the token exchange: {0}")]
    Refused(OAuthError),
}

impl TokenExchangeError {
    /// A stable code for logs and [`Error::code`]: `reserved_token_type`, `invalid_request`,
    /// `missing_id_token` or `token_exchange_refused` (the provider's own code is
    /// [`TokenExchangeError::error_code`]).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::ReservedTokenType(_) => "reserved_token_type",
            Self::InvalidRequest(_) => "invalid_request",
            Self::NoIdToken => "missing_id_token",
            Self::Refused(_) => "token_exchange_refused",
        }
    }

    /// The OAuth `error` code this failure answers with: the provider's for
    /// [`TokenExchangeError::Refused`], `invalid_request` otherwise.
    #[must_use]
    pub fn error_code(&self) -> &str {
        match self {
            Self::Refused(e) => &e.error,
            _ => "invalid_request",
        }
    }
}

/// Options for [`ServerClient::exchange_token`] and
/// [`ServerClient::login_with_token_exchange`].
#[derive(Clone)]
#[must_use]
pub struct TokenExchangeOptions {
    subject_token: SecretString,
    subject_token_type: String,
    audience: Option<String>,
    scope: Option<String>,
    organization: Option<String>,
    actor: Option<(SecretString, String)>,
    extra: Vec<(String, String)>,
}

impl fmt::Debug for TokenExchangeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchangeOptions")
            .field("subject_token", &"[redacted]")
            .field("subject_token_type", &self.subject_token_type)
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("organization", &self.organization)
            .field("actor_token_type", &self.actor.as_ref().map(|(_, t)| t.as_str()))
            .field(
                "extra",
                &self.extra.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl TokenExchangeOptions {
    /// Exchanges `subject_token`, of the custom type `subject_token_type` (the URI of a Token
    /// Exchange Profile, e.g. `urn:acme:legacy-token`).
    pub fn new(subject_token: impl Into<SecretString>, subject_token_type: impl Into<String>) -> Self {
        Self {
            subject_token: subject_token.into(),
            subject_token_type: subject_token_type.into(),
            audience: None,
            scope: None,
            organization: None,
            actor: None,
            extra: Vec::new(),
        }
    }

    /// The API the access token is for (default: the tenant's default audience).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The scopes asked for, space-separated (`openid` for an ID token, `offline_access` for a
    /// refresh token).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The organization (id or name) to log the user in to.
    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = Some(organization.into());
        self
    }

    /// Who acts on the user's behalf (RFC 8693 delegation): `actor_token` of type
    /// `actor_token_type`. No refresh token is issued then.
    pub fn actor(
        mut self,
        actor_token: impl Into<SecretString>,
        actor_token_type: impl Into<String>,
    ) -> Self {
        self.actor = Some((actor_token.into(), actor_token_type.into()));
        self
    }

    /// An extra parameter for the profile's Action (`event.request.body`). The grant's own
    /// names and client-authentication names are refused.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }

    /// Checks everything that can be checked before a request and builds the form.
    fn form(&self, scope: Option<&str>) -> Result<Vec<(String, String)>, TokenExchangeError> {
        let invalid = |m: &str| TokenExchangeError::InvalidRequest(m.to_owned());
        let token = self.subject_token.expose();
        if token.trim().is_empty() {
            return Err(invalid("`subject_token` is required"));
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid("`subject_token` is longer than 16 KiB"));
        }
        check_token_type("subject_token_type", &self.subject_token_type)?;
        let mut form = vec![
            ("grant_type".to_owned(), TOKEN_EXCHANGE_GRANT.to_owned()),
            ("subject_token".to_owned(), token.to_owned()),
            ("subject_token_type".to_owned(), self.subject_token_type.clone()),
        ];
        for (name, value) in [
            ("audience", self.audience.as_deref()),
            ("scope", scope),
            ("organization", self.organization.as_deref()),
        ] {
            match value.map(str::trim) {
                Some("") => return Err(invalid(&format!("`{name}` is empty; omit it instead"))),
                Some(v) => form.push((name.to_owned(), v.to_owned())),
                None => {}
            }
        }
        if let Some((actor, actor_type)) = &self.actor {
            if actor.expose().trim().is_empty() || actor.expose().len() > MAX_TOKEN_LEN {
                return Err(invalid("`actor_token` must be 1 byte to 16 KiB"));
            }
            check_token_type("actor_token_type", actor_type)?;
            form.push(("actor_token".to_owned(), actor.expose().to_owned()));
            form.push(("actor_token_type".to_owned(), actor_type.clone()));
        }
        for (name, value) in &self.extra {
            let ok_name = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
            if !ok_name || RESERVED_PARAMS.contains(&name.as_str()) || form.iter().any(|(k, _)| k == name) {
                return Err(invalid(&format!(
                    "extra parameter `{name}` is not allowed (reserved, repeated or malformed)"
                )));
            }
            if value.is_empty() || value.len() > 4096 {
                return Err(invalid(&format!(
                    "extra parameter `{name}` must be 1 to 4096 bytes"
                )));
            }
            form.push((name.clone(), value.clone()));
        }
        Ok(form)
    }
}

/// A token type must be an absolute URI (`urn:…` or `http(s)://…`) outside Auth0's reserved
/// namespaces.
fn check_token_type(name: &str, value: &str) -> Result<(), TokenExchangeError> {
    if is_reserved_token_type(value) {
        return Err(TokenExchangeError::ReservedTokenType(crate::http::truncate(
            value,
            MAX_TYPE_LEN,
        )));
    }
    let well_formed = value.len() <= MAX_TYPE_LEN
        && !value
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        && match url::Url::parse(value) {
            Ok(u) if u.scheme() == "urn" => u.path().split(':').filter(|p| !p.is_empty()).count() >= 2,
            Ok(u) if matches!(u.scheme(), "http" | "https") => u.host().is_some(),
            _ => false,
        };
    if well_formed {
        Ok(())
    } else {
        Err(TokenExchangeError::InvalidRequest(format!(
            "`{name}` must be an absolute URI you own, such as `urn:acme:legacy-token` or \
             `https://acme.com/token-type/v1` (at most {MAX_TYPE_LEN} characters)"
        )))
    }
}

/// Whether `value` is in a namespace Auth0 reserves: `urn:ietf:*`, `urn:auth0:*`, `urn:okta:*`,
/// and `http(s)://` URIs on `auth0.com` or `okta.com` (and their subdomains).
#[must_use]
pub fn is_reserved_token_type(value: &str) -> bool {
    let lower = value.trim().to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("urn:") {
        let nid = rest.split(':').next().unwrap_or("");
        return matches!(nid, "ietf" | "auth0" | "okta");
    }
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = host.split(':').next().unwrap_or("").trim_end_matches('.');
    ["auth0.com", "okta.com"]
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

/// What a token exchange produced.
#[derive(Clone)]
#[non_exhaustive]
pub struct TokenExchangeResult {
    /// The access token, with its `token_type` (`DPoP` when DPoP-bound).
    pub access_token: AccessToken,
    /// The verified ID token, when `openid` was granted.
    pub id_token: Option<SecretString>,
    /// The refresh token, when `offline_access` was granted (never with an actor).
    pub refresh_token: Option<SecretString>,
    /// The user's claims from the verified ID token.
    pub user: Option<UserClaims>,
    /// The user's `sub` from the verified ID token.
    pub sub: Option<String>,
    /// RFC 8693 `issued_token_type`, when the provider said.
    pub issued_token_type: Option<String>,
}

impl fmt::Debug for TokenExchangeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchangeResult")
            .field("access_token", &self.access_token)
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("sub", &self.sub)
            .field("issued_token_type", &self.issued_token_type)
            .finish_non_exhaustive()
    }
}

impl ServerClient {
    /// Exchanges a token for tokens of this tenant (RFC 8693, Auth0 Custom Token Exchange),
    /// without touching any session. A returned ID token is verified (signature, `iss`, `aud`,
    /// `exp`, `at_hash`; no nonce) before `sub` and `user` are taken from it.
    ///
    /// # Errors
    /// [`Error::TokenExchange`]: [`TokenExchangeError::ReservedTokenType`] and
    /// [`TokenExchangeError::InvalidRequest`] before any request,
    /// [`TokenExchangeError::Refused`] with the provider's code and status; [`Error::IdToken`]
    /// for an ID token that fails verification; transport errors.
    pub async fn exchange_token(&self, options: TokenExchangeOptions) -> Result<TokenExchangeResult> {
        let scope = options.scope.clone();
        self.exchange(&options, scope.as_deref()).await.map(|(r, _)| r)
    }

    /// [`ServerClient::exchange_token`], then the result becomes the browser's session: a
    /// fresh session (new id; whatever session the jar held is replaced), as after an
    /// interactive login. `openid` is added to the scope when missing (the configured scope,
    /// or `openid profile email offline_access`, when none is given), since a session needs a
    /// verified ID token.
    ///
    /// # Errors
    /// As [`ServerClient::exchange_token`], plus [`TokenExchangeError::NoIdToken`] when no ID
    /// token came back, and store errors.
    pub async fn login_with_token_exchange(
        &self,
        options: TokenExchangeOptions,
        jar: &mut dyn CookieJar,
    ) -> Result<TokenExchangeResult> {
        let configured = self.inner.config.authorization_params.get("scope");
        let scope = normalize_scope(options.scope.as_deref().or(configured));
        let (result, tokens) = self.exchange(&options, Some(&scope)).await?;
        let (Some(id_token), Some(user)) = (&result.id_token, &result.user) else {
            return Err(Error::TokenExchange(TokenExchangeError::NoIdToken));
        };
        let sid = user
            .get("sid")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 256);
        let mut session = fresh_session(
            sid,
            user.clone(),
            id_token.clone(),
            result.refresh_token.clone(),
            TokenSet {
                audience: result.access_token.audience.clone(),
                access_token: result.access_token.token.clone(),
                scope: Some(tokens.scope.clone().unwrap_or(scope)),
                expires_at: result.access_token.expires_at,
                extra: crate::dpop::token_type_fields(tokens.token_type.as_deref()),
            },
        );
        self.before_session_saved(&mut session, crate::hooks::SaveKind::Login, true, jar)
            .await?;
        self.write_session(&session, true, jar).await?;
        tracing::debug!("token exchange completed into a new session");
        Ok(result)
    }

    async fn exchange(
        &self,
        options: &TokenExchangeOptions,
        scope: Option<&str>,
    ) -> Result<(TokenExchangeResult, TokenResponse)> {
        let c = &self.inner.config;
        let form = options.form(scope).map_err(Error::TokenExchange)?;
        let response = match self.token_request(form).await {
            Ok(t) => t,
            Err(Error::Endpoint { error, .. }) => {
                tracing::info!(error = %error.error, status = ?error.status, "token exchange refused");
                return Err(Error::TokenExchange(TokenExchangeError::Refused(error)));
            }
            Err(e) => return Err(e),
        };
        let (id_token, user) = match self.optional_response_id_token(&response).await? {
            Some((id_token, claims)) => (Some(id_token), Some(user_claims(claims))),
            None => (None, None),
        };
        let audience = options
            .audience
            .clone()
            .or_else(|| c.authorization_params.get("audience").map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
        let access_token = AccessToken::new(
            response.access_token.clone(),
            now().saturating_add(response.expires_in()),
            response.scope.clone().or_else(|| scope.map(str::to_owned)),
            audience,
        )
        .with_token_type(response.token_type.as_deref());
        let sub = user
            .as_ref()
            .and_then(|u| u.get("sub"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let result = TokenExchangeResult {
            access_token,
            id_token,
            refresh_token: response.refresh_token.clone(),
            user,
            sub,
            issued_token_type: response.issued_token_type.clone(),
        };
        Ok((result, response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_namespaces_are_recognised() {
        for t in [
            "urn:ietf:params:oauth:token-type:access_token",
            "URN:IETF:params:oauth:token-type:jwt",
            "urn:auth0:params:x",
            "urn:okta:anything",
            "https://auth0.com/token",
            "http://auth0.com/oauth/token-type/x",
            "https://okta.com/x",
            "https://tenant.auth0.com/x",
            "https://AUTH0.COM./x",
            "https://user@okta.com:443/x",
        ] {
            assert!(is_reserved_token_type(t), "{t}");
            let e = TokenExchangeOptions::new("t", t).form(None).unwrap_err();
            assert!(matches!(e, TokenExchangeError::ReservedTokenType(_)), "{t}");
            assert_eq!(e.error_code(), "invalid_request");
        }
        for t in [
            "urn:acme:legacy-token",
            "https://acme.com/token-type/v1",
            "https://notauth0.com/x",
            "https://auth0.com.evil.example/x",
            "urn:ietfx:y",
        ] {
            assert!(!is_reserved_token_type(t), "{t}");
        }
    }

    #[test]
    fn options_are_checked_before_any_request() {
        let ok = TokenExchangeOptions::new("tok", "urn:acme:legacy-token")
            .audience("https://api/")
            .scope("openid email")
            .organization("org_1")
            .actor("actor", "urn:acme:agent")
            .param("device", "d1");
        let form = ok.form(Some("openid email")).unwrap();
        let keys: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "grant_type",
                "subject_token",
                "subject_token_type",
                "audience",
                "scope",
                "organization",
                "actor_token",
                "actor_token_type",
                "device"
            ]
        );
        assert!(!format!("{ok:?}").contains("tok\""));
        for bad in [
            TokenExchangeOptions::new(" ", "urn:acme:x"),
            TokenExchangeOptions::new("t", "not a uri"),
            TokenExchangeOptions::new("t", "urn:acme"),
            TokenExchangeOptions::new("t", "mailto:x@y"),
            TokenExchangeOptions::new("t", "urn:acme:x").audience(""),
            TokenExchangeOptions::new("t", "urn:acme:x").param("client_secret", "x"),
            TokenExchangeOptions::new("t", "urn:acme:x").actor("a", "bad type"),
        ] {
            let e = bad.form(bad.scope.as_deref()).unwrap_err();
            assert!(matches!(e, TokenExchangeError::InvalidRequest(_)), "{bad:?}: {e}");
        }
    }
}
