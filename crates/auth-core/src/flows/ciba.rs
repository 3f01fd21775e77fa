//! Client-Initiated Backchannel Authentication (OpenID CIBA Core 1.0), poll mode, as Auth0 runs
//! it: the app names a user, the provider asks that user on a device of theirs (Guardian push,
//! email), and the app polls the token endpoint until the user answered.
//!
//! Three calls: [`ServerClient::start_backchannel_authentication`] (one `POST` to the
//! provider's `backchannel_authentication_endpoint`), [`ServerClient::poll_backchannel_authentication`]
//! (one token request), and [`ServerClient::backchannel_authentication`] (start, then poll until
//! done).
//!
//! Guarantees:
//! - the request carries `login_hint` as the JSON string
//!   `{"format":"iss_sub","iss":"<the provider's issuer, exactly>","sub":"<sub>"}`, a `scope`
//!   with `openid` (default `openid profile email`), the `binding_message`, and client
//!   authentication exactly like the token endpoint's; `authorization_details` is checked
//!   locally (a JSON array of objects with a string `type`) before anything is sent;
//! - polls are never closer together than `interval` (5 s when the provider sends none, never
//!   below 1 s), counted from the previous answer; each `slow_down` adds 5 s for that and every
//!   later poll; nothing is polled after `expires_in` has run out (the request then ends with
//!   [`CibaError::ExpiredToken`] without another request);
//! - `access_denied`, `expired_token` and `invalid_grant` end the request: it is never polled
//!   again. The decision is keyed on the OAuth `error` code, never on the HTTP status;
//! - the ID token is verified like a login's (signature, `iss`, `aud`, `azp`, `exp`, `iat`,
//!   `at_hash`; there is no nonce in CIBA) and its `sub` must be the user that was asked;
//! - the `auth_req_id` is a credential: it never appears in `Debug` output or logs.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::client::ServerClient;
use crate::error::{ConfigError, Error, Result};
use crate::params::normalize_scope;
use crate::protocol::token::TokenResponse;
use crate::secret::SecretString;
use crate::session::{UserClaims, user_claims};
use crate::time::now;

/// The CIBA `grant_type` of the token requests that poll for the result.
pub const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";
/// The scope asked for when the options set none (as auth0-auth-js and auth0-server-python).
pub const DEFAULT_CIBA_SCOPE: &str = "openid profile email";
/// How long to wait between polls when the provider's answer has no `interval` (CIBA Core §7.3).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// What each `slow_down` answer adds to the interval, for that and every later poll.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// The shortest wait between polls, whatever the provider says (an `interval` of 0 would
/// otherwise turn waiting into a busy loop against the provider).
const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The longest life of a request we wait for (Auth0's largest `requested_expiry`, 3 days).
const MAX_EXPIRY_SECS: u64 = 259_200;
/// Bounds on caller input, far above anything real.
const MAX_SUB_LEN: usize = 512;
const MAX_BINDING_MESSAGE_LEN: usize = 512;
const MAX_SCOPE_LEN: usize = 2048;
const MAX_AUDIENCE_LEN: usize = 2048;
const MAX_AUTHORIZATION_DETAILS_LEN: usize = 16 * 1024;

/// Why a backchannel authentication ended without tokens (after the provider answered), or
/// cannot be polled any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CibaError {
    /// The user denied the request (`access_denied`). Auth0 also answers this for a request
    /// that expired. Do not retry on your own; start a new request only if the user asks.
    #[error("the user denied the request (or it expired at the provider)")]
    AccessDenied,
    /// The request expired before the user answered (`expired_token`, or `expires_in` ran out
    /// here). Start a new request if the user should still be asked.
    #[error("the request expired before the user answered; start a new one")]
    ExpiredToken,
    /// The provider does not know this `auth_req_id` (`invalid_grant`): it was already used,
    /// belongs to another client, or was never issued. Start a new request.
    #[error("the provider no longer accepts this auth_req_id; start a new request")]
    InvalidGrant,
    /// The ID token is about another user than the one the request named. Nothing from the
    /// answer was returned.
    #[error("the ID token is about another user than the one the request named")]
    SubjectMismatch,
    /// This request already ended (tokens, or one of the errors above): an `auth_req_id` is
    /// single-use and is not sent again. Start a new request.
    #[error("this backchannel authentication already ended; start a new one")]
    Finished,
}

impl CibaError {
    /// A stable code: `access_denied`, `expired_token`, `invalid_grant` (the provider's own
    /// codes), `subject_mismatch` or `ciba_finished`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::AccessDenied => "access_denied",
            Self::ExpiredToken => "expired_token",
            Self::InvalidGrant => "invalid_grant",
            Self::SubjectMismatch => "subject_mismatch",
            Self::Finished => "ciba_finished",
        }
    }
}

/// What to ask for with [`ServerClient::start_backchannel_authentication`].
///
/// ```
/// use auth_core::BackchannelAuthenticationOptions;
///
/// let options = BackchannelAuthenticationOptions::new("auth0|6530d8f2", "Approve transfer #A-1234")
///     .audience("https://api.example.com/")
///     .scope("openid profile offline_access");
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct BackchannelAuthenticationOptions {
    sub: String,
    binding_message: String,
    scope: Option<String>,
    audience: Option<String>,
    requested_expiry: Option<u64>,
    authorization_details: Option<Value>,
}

impl BackchannelAuthenticationOptions {
    /// Ask the user `sub` (their Auth0 `user_id`, e.g. `auth0|…`), showing `binding_message`
    /// on both devices (required by Auth0; keep it short, Auth0 allows 64 characters).
    pub fn new(sub: impl Into<String>, binding_message: impl Into<String>) -> Self {
        Self {
            sub: sub.into(),
            binding_message: binding_message.into(),
            scope: None,
            audience: None,
            requested_expiry: None,
            authorization_details: None,
        }
    }

    /// The scope; `openid` is added when missing. Default [`DEFAULT_CIBA_SCOPE`]; add
    /// `offline_access` for a refresh token.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The API the access token is for.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// How long the user has to answer, in seconds (Auth0: 1 to 259200, default 300).
    pub fn requested_expiry(mut self, seconds: u64) -> Self {
        self.requested_expiry = Some(seconds);
        self
    }

    /// RAR `authorization_details` (RFC 9396): a JSON array of objects, each with a string
    /// `type` registered on the `audience` API. Checked when the request starts.
    pub fn authorization_details(mut self, details: Value) -> Self {
        self.authorization_details = Some(details);
        self
    }

    /// [`authorization_details`](Self::authorization_details) from its JSON text, as it arrives
    /// in a form field.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when the text is not a JSON array of objects with a
    /// non-empty string `type`.
    pub fn authorization_details_json(self, json: &str) -> Result<Self> {
        if json.len() > MAX_AUTHORIZATION_DETAILS_LEN {
            return Err(invalid_details());
        }
        let value: Value = serde_json::from_str(json).map_err(|_| invalid_details())?;
        check_authorization_details(&value)?;
        Ok(self.authorization_details(value))
    }

    /// Refuses what no provider would accept, before any request.
    fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::InvalidParameter(what.to_owned()));
        if self.sub.is_empty() || self.sub.len() > MAX_SUB_LEN || self.sub.chars().any(char::is_control) {
            return bad("`login_hint` must be the user's `sub` (non-empty, no control characters)");
        }
        if self.binding_message.trim().is_empty()
            || self.binding_message.len() > MAX_BINDING_MESSAGE_LEN
            || self.binding_message.chars().any(char::is_control)
        {
            return bad(
                "`binding_message` is required: a short text shown on both devices (no control characters)",
            );
        }
        if let Some(scope) = &self.scope
            && (scope.trim().is_empty() || scope.len() > MAX_SCOPE_LEN || scope.chars().any(char::is_control))
        {
            return bad("`scope` must be a space-separated list of scopes; omit it for the default");
        }
        if let Some(audience) = &self.audience
            && (audience.trim().is_empty()
                || audience.len() > MAX_AUDIENCE_LEN
                || audience.chars().any(char::is_control))
        {
            return bad("`audience` must be the identifier of an API; omit it for none");
        }
        if let Some(secs) = self.requested_expiry
            && !(1..=MAX_EXPIRY_SECS).contains(&secs)
        {
            return bad("`requested_expiry` must be between 1 and 259200 seconds");
        }
        if let Some(details) = &self.authorization_details {
            check_authorization_details(details)?;
            if details.to_string().len() > MAX_AUTHORIZATION_DETAILS_LEN {
                return Err(invalid_details());
            }
        }
        Ok(())
    }
}

fn invalid_details() -> Error {
    Error::InvalidParameter(
        "`authorization_details` must be a JSON array of objects, each with a non-empty string `type`".into(),
    )
}

/// RFC 9396 §2: an array of objects, each with a string `type`.
fn check_authorization_details(details: &Value) -> Result<()> {
    let ok = details.as_array().is_some_and(|items| {
        !items.is_empty()
            && items.iter().all(|item| {
                item.as_object()
                    .and_then(|o| o.get("type"))
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.is_empty())
            })
    });
    if ok { Ok(()) } else { Err(invalid_details()) }
}

/// A started backchannel authentication: what [`ServerClient::poll_backchannel_authentication`]
/// needs, and when it may poll next.
///
/// `Debug` never shows the `auth_req_id`.
#[derive(Clone)]
pub struct BackchannelAuthentication {
    auth_req_id: SecretString,
    sub: String,
    expires_in: u64,
    interval: Duration,
    deadline: Instant,
    next_poll: Instant,
    finished: bool,
}

impl fmt::Debug for BackchannelAuthentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackchannelAuthentication")
            .field("auth_req_id", &"[redacted]")
            .field("sub", &self.sub)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .field("finished", &self.finished)
            .finish()
    }
}

impl BackchannelAuthentication {
    /// Picks up a request started elsewhere (e.g. in another process): `auth_req_id` as the
    /// provider issued it, the `sub` it named, the time it has left, and the interval to poll
    /// at (`None`: 5 s). The first poll waits one interval.
    pub fn resume(
        auth_req_id: impl Into<SecretString>,
        sub: impl Into<String>,
        remaining: Duration,
        interval: Option<Duration>,
    ) -> Self {
        let now = Instant::now();
        let interval = clamp_interval(interval.unwrap_or(DEFAULT_POLL_INTERVAL));
        let remaining = remaining.min(Duration::from_secs(MAX_EXPIRY_SECS));
        Self {
            auth_req_id: auth_req_id.into(),
            sub: sub.into(),
            expires_in: remaining.as_secs(),
            interval,
            deadline: now + remaining,
            next_poll: now + interval,
            finished: false,
        }
    }

    /// The provider's `auth_req_id` (a credential: keep it server-side).
    #[must_use]
    pub fn auth_req_id(&self) -> &SecretString {
        &self.auth_req_id
    }

    /// The user the request named.
    #[must_use]
    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// The request's lifetime in seconds, as the provider stated it.
    #[must_use]
    pub fn expires_in(&self) -> u64 {
        self.expires_in
    }

    /// The current wait between polls: the provider's `interval` (5 s when absent) plus 5 s
    /// per `slow_down` so far.
    #[must_use]
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long until the next poll is allowed (zero when it is).
    #[must_use]
    pub fn next_poll_in(&self) -> Duration {
        self.next_poll.saturating_duration_since(Instant::now())
    }

    /// Whether the request ended (tokens or a final error); it is never polled again.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

fn clamp_interval(interval: Duration) -> Duration {
    interval.clamp(MIN_POLL_INTERVAL, Duration::from_secs(MAX_EXPIRY_SECS))
}

/// What one poll found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BackchannelPoll {
    /// `authorization_pending`: the user has not answered yet; poll again after
    /// [`BackchannelAuthentication::interval`].
    Pending,
    /// `slow_down`: the interval grew by 5 s (already applied to the handle); poll again later.
    SlowDown,
    /// The user approved: the verified result.
    Done(BackchannelAuthenticationResult),
}

/// The tokens of an approved backchannel authentication.
///
/// `Debug` shows no token.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackchannelAuthenticationResult {
    /// The access token.
    pub access_token: SecretString,
    /// Its `token_type` (`Bearer`).
    pub token_type: String,
    /// When the access token expires, seconds since the Unix epoch.
    pub expires_at: u64,
    /// The granted scope, when the provider said.
    pub scope: Option<String>,
    /// A refresh token, when `offline_access` was granted.
    pub refresh_token: Option<SecretString>,
    /// The verified ID token.
    pub id_token: SecretString,
    /// The user's claims from the ID token (protocol claims removed); `sub` is the user the
    /// request named.
    pub user: UserClaims,
    /// RAR `authorization_details` granted, when the token response carried them.
    pub authorization_details: Option<Value>,
}

impl BackchannelAuthenticationResult {
    /// The user's `sub`.
    #[must_use]
    pub fn sub(&self) -> &str {
        self.user.get("sub").and_then(Value::as_str).unwrap_or_default()
    }
}

/// The answer of the backchannel authentication endpoint (CIBA Core §7.3).
#[derive(Deserialize)]
struct StartResponse {
    auth_req_id: SecretString,
    expires_in: Value,
    #[serde(default)]
    interval: Option<Value>,
}

/// Seconds from a JSON number or numeric string; `None` for anything else.
fn seconds(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The endpoint to start at: configuration error when the provider offers no CIBA in poll mode.
fn backchannel_endpoint<'a>(endpoint: Option<&'a Url>, delivery_modes: &[String]) -> Result<&'a Url> {
    let Some(endpoint) = endpoint else {
        return Err(ConfigError::Invalid {
            name: "backchannel authentication (CIBA)",
            reason: "the provider's metadata has no usable `backchannel_authentication_endpoint`; enable \
                     CIBA for the tenant and the application (Auth0: Client-Initiated Backchannel \
                     Authentication grant)"
                .into(),
        }
        .into());
    };
    if !delivery_modes.is_empty() && !delivery_modes.iter().any(|m| m == "poll") {
        return Err(ConfigError::Invalid {
            name: "backchannel authentication (CIBA)",
            reason: "the provider does not offer the `poll` token delivery mode, the only one supported"
                .into(),
        }
        .into());
    }
    Ok(endpoint)
}

impl ServerClient {
    /// Starts a backchannel authentication: the provider asks the user named in `options` to
    /// approve on their own device. Poll with [`poll_backchannel_authentication`](Self::poll_backchannel_authentication),
    /// or use [`backchannel_authentication`](Self::backchannel_authentication) to start and wait
    /// in one call. No session is read or written.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (before any request) for unusable options;
    /// [`Error::Config`] when the provider advertises no `backchannel_authentication_endpoint`;
    /// [`Error::Endpoint`] (endpoint `backchannel_authentication`) when the provider refuses,
    /// e.g. `unknown_user_id`, `invalid_binding_message`, `invalid_request`;
    /// [`Error::InvalidResponse`] when its answer lacks `auth_req_id` or `expires_in`;
    /// transport and discovery errors.
    pub async fn start_backchannel_authentication(
        &self,
        options: BackchannelAuthenticationOptions,
    ) -> Result<BackchannelAuthentication> {
        options.validate()?;
        let meta = self.metadata().await?;
        let endpoint = backchannel_endpoint(
            meta.backchannel_authentication_endpoint.as_ref(),
            &meta.backchannel_token_delivery_modes_supported,
        )?;
        let login_hint = serde_json::json!({
            "format": "iss_sub",
            "iss": meta.issuer,
            "sub": options.sub,
        });
        let scope = normalize_scope(Some(options.scope.as_deref().unwrap_or(DEFAULT_CIBA_SCOPE)));
        let mut form: Vec<(String, String)> = vec![
            ("scope".into(), scope),
            ("login_hint".into(), login_hint.to_string()),
            ("binding_message".into(), options.binding_message.clone()),
        ];
        if let Some(audience) = &options.audience {
            form.push(("audience".into(), audience.clone()));
        }
        if let Some(secs) = options.requested_expiry {
            form.push(("requested_expiry".into(), secs.to_string()));
        }
        if let Some(details) = &options.authorization_details {
            form.push(("authorization_details".into(), details.to_string()));
        }
        // The deadline counts from before the request: never later than the provider's own.
        let sent = Instant::now();
        let started: StartResponse = self
            .authenticated_post(&meta, "backchannel_authentication", endpoint, form, &[200])
            .await?;
        let answered = Instant::now();
        let invalid = |reason: &str| Error::InvalidResponse {
            endpoint: "backchannel_authentication",
            reason: reason.to_owned(),
        };
        if started.auth_req_id.is_empty() || started.auth_req_id.expose().len() > 4096 {
            return Err(invalid("`auth_req_id` is empty or too long"));
        }
        let expires_in = seconds(&started.expires_in)
            .filter(|s| *s > 0)
            .ok_or_else(|| invalid("`expires_in` is not a positive number of seconds"))?
            .min(MAX_EXPIRY_SECS);
        let interval = match &started.interval {
            None | Some(Value::Null) => DEFAULT_POLL_INTERVAL,
            Some(v) => Duration::from_secs(
                seconds(v).ok_or_else(|| invalid("`interval` is not a number of seconds"))?,
            ),
        };
        let interval = clamp_interval(interval);
        tracing::debug!(
            expires_in,
            interval_secs = interval.as_secs(),
            "backchannel authentication started"
        );
        Ok(BackchannelAuthentication {
            auth_req_id: started.auth_req_id,
            sub: options.sub,
            expires_in,
            interval,
            deadline: sent + Duration::from_secs(expires_in),
            next_poll: answered + interval,
            finished: false,
        })
    }

    /// Polls once: waits until the handle's interval since the previous answer has passed (so
    /// calling it in a loop never polls too fast), then sends one CIBA token request.
    ///
    /// `Pending` and `SlowDown` mean "poll again" (`SlowDown` already added 5 s to the
    /// handle's interval); `Done` carries the verified result. After `Done` or an error that
    /// ends the request, the handle is finished and never sent again.
    ///
    /// # Errors
    /// [`Error::Ciba`] with [`CibaError::AccessDenied`], [`CibaError::ExpiredToken`] (also
    /// without a request once `expires_in` has run out), [`CibaError::InvalidGrant`],
    /// [`CibaError::SubjectMismatch`] or [`CibaError::Finished`]; [`Error::IdToken`] when the
    /// ID token fails verification; [`Error::Endpoint`] for any other OAuth error (the request
    /// then ends too); transport errors (the handle stays usable).
    pub async fn poll_backchannel_authentication(
        &self,
        handle: &mut BackchannelAuthentication,
    ) -> Result<BackchannelPoll> {
        if handle.finished {
            return Err(CibaError::Finished.into());
        }
        let now = Instant::now();
        if handle.next_poll.max(now) > handle.deadline {
            handle.finished = true;
            tracing::debug!("backchannel authentication expired before the user answered");
            return Err(CibaError::ExpiredToken.into());
        }
        if handle.next_poll > now {
            tokio::time::sleep(handle.next_poll - now).await;
        }
        let answer = self
            .token_request(vec![
                ("grant_type".into(), CIBA_GRANT.into()),
                ("auth_req_id".into(), handle.auth_req_id.expose().to_owned()),
            ])
            .await;
        let answered = Instant::now();
        match answer {
            Ok(tokens) => {
                handle.finished = true;
                self.backchannel_result(handle, tokens)
                    .await
                    .map(BackchannelPoll::Done)
            }
            Err(Error::Endpoint { endpoint, error }) => {
                let code = error.error.clone();
                let ended = match code.as_str() {
                    "authorization_pending" => {
                        handle.next_poll = answered + handle.interval;
                        return Ok(BackchannelPoll::Pending);
                    }
                    "slow_down" => {
                        handle.interval = clamp_interval(handle.interval + SLOW_DOWN_STEP);
                        handle.next_poll = answered + handle.interval;
                        tracing::debug!(
                            interval_secs = handle.interval.as_secs(),
                            "backchannel authentication: slow_down"
                        );
                        return Ok(BackchannelPoll::SlowDown);
                    }
                    "access_denied" => CibaError::AccessDenied.into(),
                    "expired_token" => CibaError::ExpiredToken.into(),
                    "invalid_grant" => CibaError::InvalidGrant.into(),
                    _ => Error::Endpoint { endpoint, error },
                };
                handle.finished = true;
                tracing::debug!(code = ended.code(), "backchannel authentication ended");
                Err(ended)
            }
            Err(other) => {
                handle.next_poll = answered + handle.interval;
                Err(other)
            }
        }
    }

    /// Polls `handle` until the user answered or the request expired (see
    /// [`poll_backchannel_authentication`](Self::poll_backchannel_authentication) for the
    /// pacing). Returns at the latest when `expires_in` runs out.
    ///
    /// # Errors
    /// As [`poll_backchannel_authentication`](Self::poll_backchannel_authentication); a
    /// transport error stops the wait (the handle can be polled again).
    pub async fn wait_for_backchannel_authentication(
        &self,
        handle: &mut BackchannelAuthentication,
    ) -> Result<BackchannelAuthenticationResult> {
        loop {
            match self.poll_backchannel_authentication(handle).await? {
                BackchannelPoll::Done(result) => return Ok(result),
                BackchannelPoll::Pending | BackchannelPoll::SlowDown => {}
            }
        }
    }

    /// Starts a backchannel authentication and waits for its outcome: the user's approval
    /// (the verified tokens), or a typed error. Holds the caller for up to `expires_in`
    /// (Auth0 default 300 s).
    ///
    /// ```no_run
    /// # async fn run(client: auth_core::ServerClient) -> Result<(), auth_core::Error> {
    /// use auth_core::{BackchannelAuthenticationOptions, CibaError, Error};
    ///
    /// let options = BackchannelAuthenticationOptions::new("auth0|6530d8f2", "Approve transfer #A-1234");
    /// match client.backchannel_authentication(options).await {
    ///     Ok(done) => println!("approved by {}", done.sub()),
    ///     Err(Error::Ciba(CibaError::AccessDenied)) => println!("denied"),
    ///     Err(Error::Ciba(CibaError::ExpiredToken)) => println!("no answer in time"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`start_backchannel_authentication`](Self::start_backchannel_authentication) and
    /// [`poll_backchannel_authentication`](Self::poll_backchannel_authentication).
    pub async fn backchannel_authentication(
        &self,
        options: BackchannelAuthenticationOptions,
    ) -> Result<BackchannelAuthenticationResult> {
        let mut handle = self.start_backchannel_authentication(options).await?;
        self.wait_for_backchannel_authentication(&mut handle).await
    }

    /// Verifies the ID token of an approved request (like a login's, without nonce) and that
    /// it is about the requested user.
    async fn backchannel_result(
        &self,
        handle: &BackchannelAuthentication,
        tokens: TokenResponse,
    ) -> Result<BackchannelAuthenticationResult> {
        let meta = self.metadata().await?;
        let (id_token, claims) = self.required_response_id_token(&meta, &tokens, None).await?;
        if claims.get("sub").and_then(Value::as_str) != Some(handle.sub.as_str()) {
            tracing::warn!("backchannel authentication: the ID token names another user than requested");
            return Err(CibaError::SubjectMismatch.into());
        }
        let expires_at = now().saturating_add(tokens.expires_in());
        Ok(BackchannelAuthenticationResult {
            token_type: tokens.token_type.clone().unwrap_or_else(|| "Bearer".to_owned()),
            expires_at,
            scope: tokens.scope.clone(),
            refresh_token: tokens.refresh_token.clone(),
            authorization_details: tokens.authorization_details.clone(),
            user: user_claims(claims),
            id_token: SecretString::new(id_token),
            access_token: tokens.access_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts() -> BackchannelAuthenticationOptions {
        BackchannelAuthenticationOptions::new("auth0|alice", "Approve #1234")
    }

    #[test]
    fn options_are_checked_before_any_request() {
        assert!(opts().validate().is_ok());
        for bad in [
            BackchannelAuthenticationOptions::new("", "m"),
            BackchannelAuthenticationOptions::new("auth0|a\nb", "m"),
            BackchannelAuthenticationOptions::new("auth0|alice", ""),
            BackchannelAuthenticationOptions::new("auth0|alice", "   "),
            BackchannelAuthenticationOptions::new("auth0|alice", "a\r\nb"),
            opts().scope(" "),
            opts().audience(""),
            opts().requested_expiry(0),
            opts().requested_expiry(MAX_EXPIRY_SECS + 1),
            opts().authorization_details(json!({"type": "x"})),
            opts().authorization_details(json!([])),
            opts().authorization_details(json!([{"type": ""}])),
            opts().authorization_details(json!([{"type": 3}])),
            opts().authorization_details(json!(["payment"])),
        ] {
            let e = bad.validate().unwrap_err();
            assert_eq!(e.code(), "invalid_parameter", "{bad:?}");
        }
        let ok = opts()
            .authorization_details(json!([{"type": "payment_initiation", "amount": 5}]))
            .requested_expiry(300);
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn authorization_details_json_is_parsed_and_checked() {
        let o = opts()
            .authorization_details_json(r#"[{"type":"payment_initiation"}]"#)
            .unwrap();
        assert_eq!(
            o.authorization_details,
            Some(json!([{"type": "payment_initiation"}]))
        );
        for bad in ["not json", "{}", "[1]", r#"[{"kind":"x"}]"#, "[]"] {
            let e = opts().authorization_details_json(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_parameter", "{bad}");
        }
    }

    #[test]
    fn endpoint_must_be_advertised_with_poll_mode() {
        let url = Url::parse("https://t.example/bc-authorize").unwrap();
        assert!(backchannel_endpoint(Some(&url), &[]).is_ok());
        assert!(backchannel_endpoint(Some(&url), &["poll".into(), "ping".into()]).is_ok());
        let e = backchannel_endpoint(Some(&url), &["ping".into()]).unwrap_err();
        assert_eq!(e.code(), "configuration_error");
        let e = backchannel_endpoint(None, &["poll".into()]).unwrap_err();
        assert_eq!(e.code(), "configuration_error");
    }

    #[test]
    fn debug_never_shows_the_auth_req_id() {
        let h =
            BackchannelAuthentication::resume("SECRET-REQ-ID", "auth0|alice", Duration::from_secs(60), None);
        let shown = format!("{h:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert_eq!(h.interval(), DEFAULT_POLL_INTERVAL);
        assert!(h.next_poll_in() > Duration::from_secs(4));
    }

    #[test]
    fn intervals_are_clamped_and_seconds_parsed() {
        assert_eq!(clamp_interval(Duration::ZERO), MIN_POLL_INTERVAL);
        assert_eq!(clamp_interval(Duration::from_secs(7)), Duration::from_secs(7));
        assert_eq!(seconds(&json!(3)), Some(3));
        assert_eq!(seconds(&json!("4")), Some(4));
        assert_eq!(seconds(&json!(-1)), None);
        assert_eq!(seconds(&json!(1.5)), None);
        assert_eq!(seconds(&json!(true)), None);
    }

    #[tokio::test]
    async fn a_finished_or_expired_handle_is_never_sent() {
        let client = ServerClient::builder()
            .issuer("http://127.0.0.1:1/")
            .client_id("c")
            .client_auth(crate::ClientAuth::secret("s"))
            .secret("0123456789abcdef0123456789abcdef")
            .app_base_url("http://127.0.0.1:3000")
            .build()
            .unwrap();
        // No time left: expired without a request (the issuer is unreachable anyway).
        let mut h = BackchannelAuthentication::resume("id", "auth0|alice", Duration::ZERO, None);
        let e = client.poll_backchannel_authentication(&mut h).await.unwrap_err();
        assert!(matches!(e, Error::Ciba(CibaError::ExpiredToken)), "{e:?}");
        assert!(h.is_finished());
        let e = client.poll_backchannel_authentication(&mut h).await.unwrap_err();
        assert!(matches!(e, Error::Ciba(CibaError::Finished)), "{e:?}");
        assert_eq!(e.code(), "ciba_finished");
    }
}
