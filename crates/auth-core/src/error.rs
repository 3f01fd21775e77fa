//! One error type for every flow, with stable machine-readable codes.
//!
//! [`Error::code`] strings never change between releases; match on them (or on the variants)
//! rather than on `Display` text, which is written for people and may improve.

use std::fmt;

/// Everything that can go wrong in a flow.
///
/// Nested enums say *which* rule failed; [`Error::code`] gives a stable string per variant.
/// `Display` never includes tokens, secrets or raw IdP bodies.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is incomplete or inconsistent. The message says what to change.
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),

    /// The identity provider could not be reached, timed out, or answered with something that is
    /// not HTTP we can use.
    #[error("could not talk to the identity provider: {0}")]
    Transport(#[from] TransportError),

    /// The provider's discovery document or JWKS is unusable.
    #[error("identity provider metadata problem: {0}")]
    Discovery(#[from] DiscoveryError),

    /// No login transaction matches the callback's `state`: it expired, was already used, was
    /// started in another browser, or the state was tampered with. Start the login again.
    #[error("no login transaction matches this callback; start the login again")]
    MissingTransaction,

    /// The callback is not a well-formed authorization response.
    #[error("invalid callback: {0}")]
    InvalidCallback(CallbackError),

    /// The authorization server redirected back with an `error` (RFC 6749 §4.1.2.1).
    #[error("the authorization server refused the request: {0}")]
    Authorization(OAuthError),

    /// A token, PAR or other back-channel endpoint answered with an OAuth error.
    #[error("the {endpoint} endpoint refused the request: {error}")]
    Endpoint {
        /// Which endpoint answered (`token`, `pushed_authorization_request`, …).
        endpoint: &'static str,
        /// What it said.
        error: OAuthError,
    },

    /// The provider answered with a success status but a body we cannot use.
    #[error("invalid response from the {endpoint} endpoint: {reason}")]
    InvalidResponse {
        /// Which endpoint answered.
        endpoint: &'static str,
        /// What was wrong with it (never the body itself).
        reason: String,
    },

    /// The ID token failed validation (OIDC Core 3.1.3.7).
    #[error("ID token rejected: {0}")]
    IdToken(#[from] IdTokenError),

    /// An authorization parameter the caller passed is not allowed.
    #[error("invalid authorization parameter: {0}")]
    InvalidParameter(String),

    /// A session or transaction store failed.
    #[error("session store error: {0}")]
    Store(#[from] StoreError),

    /// The operation needs a logged-in user and there is no session.
    #[error("there is no session; log in first")]
    NotAuthenticated,

    /// A new access token is needed but the session has no refresh token (ask for the
    /// `offline_access` scope at login).
    #[error("the session has no refresh token; request the offline_access scope at login")]
    MissingRefreshToken,

    /// The Auth0 My Account API refused the request (`application/problem+json`).
    #[error("the My Account API refused the request: {0}")]
    MyAccount(MyAccountError),

    /// A back-channel logout token failed validation (OIDC Back-Channel Logout §2.6).
    #[error("logout token rejected: {0}")]
    LogoutToken(LogoutTokenError),

    /// The session has ended while this request used it (a server-side record deleted since
    /// it was read: logout, back-channel logout, expiry); the user must log in again. A refresh
    /// token the provider no longer accepts is [`Error::LoginRequired`] with `invalid_grant`.
    #[error("the session has expired or was revoked; log in again")]
    SessionExpired,

    /// A link, unlink or connect completion is about another user than the session it would
    /// change (the ID token's `sub`, the session's `sub`, or the `sub` of the session that
    /// started the flow differ). Nothing was written: the session is unchanged. Log in again
    /// as the intended user and restart the flow.
    #[error("the callback is about another user than the session; the session was left unchanged")]
    IdentityMismatch,

    /// A request policy of the HTTP integration refused the request before any flow started
    /// (nothing was changed and nothing was sent to the provider): an account-changing route
    /// started by another site, or a connection or scope outside the app's allow-list. Start
    /// the action from the app's own pages, with an allowed connection.
    #[error("request refused: {0}")]
    Forbidden(ForbiddenReason),

    /// A custom token exchange failed: refused before any request (a reserved or malformed
    /// token type, missing input) or by the provider (its code and status kept).
    #[error("{0}")]
    TokenExchange(crate::flows::token_exchange::TokenExchangeError),

    /// A token request needs multi-factor authentication first (Auth0 answers `403
    /// mfa_required`, by tenant policy or a post-login Action). The session is kept. Step up:
    /// log in again with [`crate::MfaRequired::step_up_authorization_params`] (`acr_values`
    /// asking for MFA, and the audience); that login's token for the audience is then used
    /// without a refresh. The `mfa_token` inside is secret: never hand it to the browser.
    #[error("{0}")]
    MfaRequired(Box<crate::flows::mfa::MfaRequired>),

    /// The token endpoint refused a refresh with an answer that means "log in again"
    /// (`invalid_grant`, `invalid_scope`, `consent_required`, `login_required`,
    /// `interaction_required`). [`Error::code`] is the provider's code;
    /// [`LoginRequired::session_ended`] says whether the session was ended (`invalid_grant`:
    /// the refresh token is dead) or kept (the other codes: only this audience or scope needs
    /// a new login, e.g. with the scope or consent asked for). [`Error::requires_login`] is
    /// `true`. `mfa_required` is not part of this family: see [`Error::MfaRequired`].
    #[error("{0}")]
    LoginRequired(Box<LoginRequired>),

    /// A backchannel authentication (CIBA) ended without tokens: the user denied it, it
    /// expired, the provider no longer knows its `auth_req_id`, the ID token named another
    /// user, or it was polled after it had ended. [`Error::code`] is the provider's code for
    /// the first three (`access_denied`, `expired_token`, `invalid_grant`).
    #[error("backchannel authentication: {0}")]
    Ciba(#[from] crate::flows::ciba::CibaError),

    /// A value in the session is not of the type the app asked for (app data read with
    /// [`crate::SessionSnapshot::get`], claims with [`crate::SessionSnapshot::claims`]), or an
    /// app-data value is not JSON. It names the key (or the claims) and the type, never the
    /// value: fix the type (`Option` or `#[serde(default)]` for data older sessions lack).
    #[error("{0}")]
    SessionValue(crate::app_data::SessionValueError),

    /// The session would be `size` bytes once sealed, over the `limit` its store can hold (the
    /// session cookies: [`crate::MAX_COOKIE_SESSION_CHUNKS`] cookies of about 4 KB; server-side:
    /// [`crate::MAX_SERVER_SESSION_BYTES`]). Nothing was written: the stored session is as it
    /// was. Keep less in the session (large data belongs in the app's database, keyed by the
    /// user's `sub`); drop claims the app does not need.
    #[error(
        "the session would be {size} bytes once sealed, over its store's limit of {limit} bytes; \
         nothing was written (keep less in the session)"
    )]
    SessionTooLarge {
        /// The sealed size the session would have, in bytes.
        size: usize,
        /// The most the store holds, in bytes.
        limit: usize,
    },

    /// The application's hook stopped the flow ([`crate::HookError`], returned by e.g. the
    /// `before_session_saved` hook). Nothing was written: the stored session is as it was.
    /// [`Error::code`] is `hook_refused` when the application refused ([`crate::HookError::refuse`]),
    /// else `hook_failed`.
    #[error("the application's {hook} hook stopped the flow: {0}", hook = .0.hook())]
    Hook(crate::hooks::HookError),
}

impl Error {
    /// A stable, machine-readable code for this error.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "configuration_error",
            Self::Transport(_) => "transport_error",
            Self::Discovery(_) => "discovery_error",
            Self::MissingTransaction => "missing_transaction",
            Self::InvalidCallback(CallbackError::MissingState | CallbackError::InvalidState) => {
                "invalid_state"
            }
            Self::InvalidCallback(_) => "invalid_callback",
            Self::Authorization(_) => "authorization_error",
            Self::Endpoint { .. } => "oauth_error",
            Self::InvalidResponse { .. } => "invalid_response",
            Self::IdToken(_) => "id_token_invalid",
            Self::InvalidParameter(_) => "invalid_parameter",
            Self::Store(_) => "store_error",
            Self::NotAuthenticated => "missing_session",
            Self::MissingRefreshToken => "missing_refresh_token",
            Self::SessionExpired => "session_expired",
            Self::IdentityMismatch => "identity_mismatch",
            Self::LogoutToken(_) => "invalid_logout_token",
            Self::MyAccount(_) => "my_account_error",
            Self::Forbidden(r) => r.code(),
            Self::TokenExchange(e) => e.code(),
            Self::MfaRequired(_) => "mfa_required",
            Self::LoginRequired(l) => l.reason.code(),
            Self::Ciba(e) => e.code(),
            Self::SessionValue(_) => "invalid_session_value",
            Self::SessionTooLarge { .. } => "session_too_large",
            Self::Hook(e) => e.code(),
        }
    }

    /// Whether the way out of this error is a new interactive login: there is no session
    /// ([`Error::NotAuthenticated`]), it has ended ([`Error::SessionExpired`]), it has no
    /// refresh token ([`Error::MissingRefreshToken`]), or the provider refused a refresh with a
    /// code of the [`Error::LoginRequired`] family. Redirect a browser to the login route (with
    /// the scope or audience that was asked for); answer an API call 401.
    ///
    /// [`Error::MfaRequired`] is `false`: it needs a *step-up* login with
    /// [`crate::MfaRequired::step_up_authorization_params`], not a plain one. Transport, store
    /// and other provider errors are `false`: a new login would not help; retry later.
    ///
    /// ```
    /// use auth_core::Error;
    ///
    /// assert!(Error::SessionExpired.requires_login());
    /// assert!(!Error::Config(auth_core::ConfigError::Missing("domain")).requires_login());
    /// ```
    #[must_use]
    pub fn requires_login(&self) -> bool {
        matches!(
            self,
            Self::NotAuthenticated
                | Self::SessionExpired
                | Self::MissingRefreshToken
                | Self::LoginRequired(_)
        )
    }

    /// The OAuth `error` code the provider answered with, when this error carries one
    /// (`invalid_scope`, `mfa_required`, `access_denied`, …), for matching and logs. The
    /// codes of [`Error::LoginRequired`] and [`Error::MfaRequired`] are fixed strings; others
    /// are as the provider sent them (at most 128 bytes): escape them before putting them in
    /// HTML. See [`Error::oauth_error`] for the description.
    #[must_use]
    pub fn provider_code(&self) -> Option<&str> {
        match self {
            Self::LoginRequired(l) => Some(l.reason.code()),
            Self::MfaRequired(_) => Some("mfa_required"),
            _ => self.oauth_error().map(|o| o.error.as_str()),
        }
    }

    /// The OAuth error the provider returned, if this error carries one.
    #[must_use]
    pub fn oauth_error(&self) -> Option<&OAuthError> {
        match self {
            Self::Authorization(e) | Self::Endpoint { error: e, .. } => Some(e),
            Self::TokenExchange(crate::flows::token_exchange::TokenExchangeError::Refused(e)) => Some(e),
            _ => None,
        }
    }
}

/// An OAuth 2.0 error response: `error`, and optionally `error_description` and `error_uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The `error` code, e.g. `access_denied` or `invalid_grant`.
    pub error: String,
    /// The provider's human-readable `error_description`, if any.
    pub error_description: Option<String>,
    /// HTTP status of the response, when it came from a back-channel call.
    pub status: Option<u16>,
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        if let Some(d) = &self.error_description {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

/// What [`Error::LoginRequired`] carries: which code the token endpoint answered, whether the
/// session was ended, and what was asked for.
///
/// The description is the provider's `error_description`, shortened to
/// [`LoginRequired::MAX_DESCRIPTION`] bytes with anything that looks like a token removed; it
/// is for logs, not for end users.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginRequired {
    /// Which code the provider answered.
    pub reason: LoginRequiredReason,
    /// The provider's `error_description`, capped and without tokens.
    pub description: Option<String>,
    /// HTTP status of the answer (Auth0: 403 for `invalid_grant`, 400 otherwise).
    pub status: Option<u16>,
    /// `true` when the session was ended (deleted) because its refresh token is no longer
    /// accepted (`invalid_grant`); `false` when it was kept.
    pub session_ended: bool,
    /// The API audience the token was asked for (`None`: the default audience).
    pub audience: Option<String>,
    /// The scope asked for, if any.
    pub scope: Option<String>,
}

impl LoginRequired {
    /// The longest description kept, in bytes.
    pub const MAX_DESCRIPTION: usize = 256;

    /// A refusal with `reason` and nothing else known (the session kept), e.g. to test how an
    /// app answers one.
    ///
    /// ```
    /// use auth_core::{Error, LoginRequired, LoginRequiredReason};
    ///
    /// let e = Error::LoginRequired(Box::new(LoginRequired::new(LoginRequiredReason::InvalidScope)));
    /// assert!(e.requires_login());
    /// assert_eq!(e.code(), "invalid_scope");
    /// ```
    #[must_use]
    pub fn new(reason: LoginRequiredReason) -> Self {
        Self {
            reason,
            description: None,
            status: None,
            session_ended: false,
            audience: None,
            scope: None,
        }
    }
}

impl fmt::Display for LoginRequired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the token endpoint answered `{}`", self.reason.code())?;
        if let Some(a) = &self.audience {
            write!(f, " for audience `{a}`")?;
        }
        if let Some(s) = &self.scope {
            write!(f, " (scope `{s}`)")?;
        }
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        if self.session_ended {
            f.write_str("; the session was ended, log in again")
        } else {
            f.write_str("; log in again (asking for this scope or consent) to get the token")
        }
    }
}

/// The provider codes of [`Error::LoginRequired`] (RFC 6749 §5.2, OIDC Core 3.1.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginRequiredReason {
    /// `invalid_grant`: the refresh token is expired, revoked or was already rotated.
    InvalidGrant,
    /// `invalid_scope`: the scope asked for was not granted to the refresh token.
    InvalidScope,
    /// `consent_required`: the user has to consent (again).
    ConsentRequired,
    /// `login_required`: the provider wants the user to authenticate again.
    LoginRequired,
    /// `interaction_required`: the provider needs the user in the browser.
    InteractionRequired,
}

impl LoginRequiredReason {
    /// The provider's code, e.g. `invalid_scope`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidScope => "invalid_scope",
            Self::ConsentRequired => "consent_required",
            Self::LoginRequired => "login_required",
            Self::InteractionRequired => "interaction_required",
        }
    }

    /// The reason for a provider `error` code, `None` when the code is not of this family.
    #[must_use]
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "invalid_grant" => Self::InvalidGrant,
            "invalid_scope" => Self::InvalidScope,
            "consent_required" => Self::ConsentRequired,
            "login_required" => Self::LoginRequired,
            "interaction_required" => Self::InteractionRequired,
            _ => return None,
        })
    }
}

/// What is wrong with the configuration, phrased as what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required setting is absent.
    #[error("{0} is required")]
    Missing(&'static str),
    /// A setting has an unusable value.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The setting (builder method or environment variable).
        name: &'static str,
        /// Why, and what to do instead.
        reason: String,
    },
    /// Pushed authorization requests were asked for but the provider advertises no PAR endpoint.
    #[error(
        "pushed authorization requests are enabled but the provider's metadata has no \
         `pushed_authorization_request_endpoint`; enable PAR at the provider or turn it off"
    )]
    ParNotSupported,
}

/// Failure to exchange HTTP with the provider.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The request did not complete within the configured timeout.
    #[error("request to {url} timed out")]
    Timeout {
        /// The URL without query.
        url: String,
    },
    /// Connecting or sending failed (DNS, refused connection, TLS).
    #[error("request to {url} failed")]
    Request {
        /// The URL without query.
        url: String,
        /// The underlying error, kept for logs.
        #[source]
        source: reqwest::Error,
    },
    /// The response body exceeded the size limit.
    #[error("response from {url} is larger than {limit} bytes")]
    TooLarge {
        /// The URL without query.
        url: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The provider answered with an unexpected HTTP status and no OAuth error body.
    #[error("{url} answered with HTTP {status}")]
    Status {
        /// The URL without query.
        url: String,
        /// The status code.
        status: u16,
    },
    /// Fetching discovery metadata or the JWKS from `url` failed moments ago and no usable
    /// cached copy exists; the failure is remembered briefly (see
    /// `ServerClientBuilder::discovery_failure_cache_ttl`) so an outage does not turn every
    /// request into an outbound call. Retry after `retry_after_secs`; check the provider's
    /// status and this host's network path to it.
    #[error("fetching {url} failed moments ago ({reason}); retry in {retry_after_secs} s")]
    RecentlyFailed {
        /// The URL without query.
        url: String,
        /// The earlier failure, as its `Display` text (never a body or a secret).
        reason: String,
        /// Seconds until the next attempt is allowed (at least 1).
        retry_after_secs: u64,
    },
}

/// Problems with the discovery document or the key set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The document is not valid JSON of the expected shape.
    #[error("{document} is malformed: {reason}")]
    Malformed {
        /// `openid-configuration` or `jwks`.
        document: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The metadata `issuer` differs from the configured one (OIDC Discovery §4.3).
    #[error("metadata issuer `{found}` does not match the configured issuer `{expected}`")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// What the document said.
        found: String,
    },
    /// An endpoint URL in the metadata is not acceptable (not https, not absolute).
    #[error("metadata field `{field}` is not a usable URL: {reason}")]
    BadEndpoint {
        /// The metadata field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// Why a callback was rejected before any network call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The callback has no `state` parameter.
    #[error("the callback has no `state` parameter")]
    MissingState,
    /// The `state` parameter is not one this library could have issued.
    #[error("the callback's `state` parameter is malformed")]
    InvalidState,
    /// The callback has neither `code` nor `error`.
    #[error("the callback has no `code` parameter")]
    MissingCode,
    /// A parameter appears more than once (RFC 6749 §3.1).
    #[error("parameter `{0}` appears more than once")]
    DuplicateParameter(String),
    /// The callback URL or form could not be parsed.
    #[error("the callback could not be parsed")]
    Malformed,
    /// The `iss` parameter (RFC 9207) names another issuer: possible mix-up attack.
    #[error("the callback's `iss` does not match the provider's issuer")]
    IssuerMismatch,
    /// The provider promises `iss` in responses (RFC 9207) but the callback lacks it.
    #[error("the callback has no `iss` parameter although the provider always sends one")]
    MissingIssuer,
    /// The transaction found for this state belongs to another flow.
    #[error("the transaction for this state belongs to a different flow")]
    WrongFlow,
}

/// Which ID-token rule failed (OIDC Core 3.1.3.7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// The token response has no `id_token`.
    #[error("the token response has no id_token")]
    Missing,
    /// Not a parsable JWS.
    #[error("the ID token is not a well-formed JWT")]
    Malformed,
    /// `alg` is `none`, symmetric without a client secret, or not advertised by the provider.
    #[error("signing algorithm `{0}` is not accepted")]
    UnsupportedAlgorithm(String),
    /// No JWKS key matches the token's `kid` (even after one refetch).
    #[error("no key in the provider's JWKS matches the token")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the signature is invalid")]
    InvalidSignature,
    /// `iss` is not exactly the provider's issuer.
    #[error("`iss` does not match the issuer")]
    IssuerMismatch,
    /// `aud` does not contain this client's id.
    #[error("`aud` does not contain this client")]
    AudienceMismatch,
    /// `azp` is missing while `aud` has several values, or names another client.
    #[error("`azp` is missing or names another client")]
    AuthorizedPartyMismatch,
    /// `exp` is in the past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `iat` lies in the future (beyond the leeway).
    #[error("`iat` is in the future")]
    IssuedInFuture,
    /// `nbf` lies in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `nonce` differs from the one sent with the authorization request.
    #[error("`nonce` does not match the transaction")]
    NonceMismatch,
    /// `max_age` was requested and `auth_time` is missing or too old.
    #[error("`auth_time` is missing or older than the requested max_age")]
    AuthTimeTooOld,
    /// An organization was requested and `org_id`/`org_name` does not match.
    #[error("the organization claim does not match the requested organization")]
    OrganizationMismatch,
    /// A required claim is absent or has the wrong type.
    #[error("required claim `{0}` is missing or invalid")]
    MissingClaim(&'static str),
    /// `at_hash` does not match the access token issued with the ID token.
    #[error("`at_hash` does not match the access token")]
    AccessTokenHashMismatch,
}

impl IdTokenError {
    /// A stable code for the failed rule, e.g. `nonce_mismatch`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing_id_token",
            Self::Malformed => "malformed",
            Self::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            Self::UnknownKey => "unknown_key",
            Self::InvalidSignature => "invalid_signature",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::AudienceMismatch => "audience_mismatch",
            Self::AuthorizedPartyMismatch => "azp_mismatch",
            Self::Expired => "expired",
            Self::IssuedInFuture => "iat_in_future",
            Self::NotYetValid => "not_yet_valid",
            Self::NonceMismatch => "nonce_mismatch",
            Self::AuthTimeTooOld => "auth_time_too_old",
            Self::OrganizationMismatch => "organization_mismatch",
            Self::MissingClaim(_) => "missing_claim",
            Self::AccessTokenHashMismatch => "at_hash_mismatch",
        }
    }
}

/// Which back-channel logout token rule failed (OIDC Back-Channel Logout 1.0 §2.6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutTokenError {
    /// Signature, algorithm, key or JWT syntax problem.
    #[error("{0}")]
    Jws(IdTokenError),
    /// The `typ` header is neither `logout+jwt` nor `JWT`.
    #[error("the `typ` header is not `logout+jwt`")]
    WrongType,
    /// `iss` is not exactly the provider's issuer.
    #[error("`iss` does not match the issuer")]
    IssuerMismatch,
    /// `aud` does not contain this client's id.
    #[error("`aud` does not contain this client")]
    AudienceMismatch,
    /// `iat` missing, in the future or too old.
    #[error("`iat` is missing, in the future, or too old")]
    BadIssuedAt,
    /// `exp` is in the past.
    #[error("the token has expired")]
    Expired,
    /// `jti` missing.
    #[error("`jti` is missing")]
    MissingJti,
    /// This `jti` was already used.
    #[error("the token was already used (replayed `jti`)")]
    Replayed,
    /// `events` lacks the back-channel logout event.
    #[error("`events` does not contain the back-channel logout event")]
    MissingEvent,
    /// `nonce` is present (forbidden in logout tokens).
    #[error("a logout token must not contain `nonce`")]
    NoncePresent,
    /// Neither `sid` nor `sub`.
    #[error("the token has neither `sid` nor `sub`")]
    MissingSidAndSub,
}

impl LogoutTokenError {
    /// A stable code for the failed rule.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Jws(e) => e.code(),
            Self::WrongType => "wrong_type",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::AudienceMismatch => "audience_mismatch",
            Self::BadIssuedAt => "bad_iat",
            Self::Expired => "expired",
            Self::MissingJti => "missing_jti",
            Self::Replayed => "replayed",
            Self::MissingEvent => "missing_event",
            Self::NoncePresent => "nonce_present",
            Self::MissingSidAndSub => "missing_sid_and_sub",
        }
    }
}

/// Why [`Error::Forbidden`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForbiddenReason {
    /// The browser's `Sec-Fetch-Site` header says another site (`cross-site`, `same-site`, or a
    /// value this library does not know) started a request to an account-changing route. Link
    /// to the route from the app's own pages (or POST a form from them).
    #[error("the request was started by another site (Sec-Fetch-Site)")]
    CrossSiteRequest,
    /// The requested connection is not on the app's allow-list for this route.
    #[error("the connection is not on the app's allow-list")]
    ConnectionNotAllowed,
    /// A requested scope is not on the app's allow-list for this route.
    #[error("a requested scope is not on the app's allow-list")]
    ScopeNotAllowed,
    /// A requested access-token audience is not on the app's allow-list for this route.
    #[error("the requested audience is not on the app's allow-list")]
    AudienceNotAllowed,
}

impl ForbiddenReason {
    /// The stable code [`Error::code`] reports for this reason.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::CrossSiteRequest => "cross_site_request",
            Self::ConnectionNotAllowed => "connection_not_allowed",
            Self::ScopeNotAllowed => "scope_not_allowed",
            Self::AudienceNotAllowed => "audience_not_allowed",
        }
    }
}

/// An RFC 9457 problem from the Auth0 My Account API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[non_exhaustive]
pub struct MyAccountError {
    /// Problem type URI.
    #[serde(rename = "type", default)]
    pub problem_type: Option<String>,
    /// Short summary.
    #[serde(default)]
    pub title: Option<String>,
    /// Explanation for this occurrence.
    #[serde(default)]
    pub detail: Option<String>,
    /// HTTP status.
    #[serde(default)]
    pub status: u16,
    /// Per-field validation problems, when the request body was refused.
    #[serde(default)]
    pub validation_errors: Option<serde_json::Value>,
}

impl fmt::Display for MyAccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(t) = &self.title {
            write!(f, " {t}")?;
        }
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

/// A session or transaction backend failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A store error with a message for logs.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A store error wrapping its cause.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
