//! CIBA (OpenID CIBA Core 1.0, poll mode) as Auth0 runs it: `POST /bc-authorize` and the
//! `urn:openid:params:grant-type:ciba` grant of `/oauth/token`, strict to `auth0-wire.md`, with
//! the user's answer scripted per test ([`Auth0Emulator::script_ciba`]).
//!
//! `/bc-authorize` refuses (`4xx`, recorded as refused):
//! - anything but `scope`, `login_hint`, `binding_message`, `audience`, `requested_expiry`,
//!   `authorization_details` and the client credentials (`id_token_hint`, `login_hint_token`,
//!   `client_notification_token`, … are named in the refusal); client authentication exactly as
//!   registered, like the token endpoint;
//! - a `scope` without `openid`;
//! - a `login_hint` that is not the JSON object `{"format":"iss_sub","iss","sub"}` with `iss`
//!   exactly the issuer (trailing slash included); an unknown user is `unknown_user_id`;
//! - a missing or longer than 64 characters `binding_message` (`invalid_binding_message`);
//! - a `requested_expiry` that is not an integer in 1..=259200;
//! - `authorization_details` that are not a JSON array of objects with a `type`, are sent
//!   without `audience`, or name a type not registered on that audience
//!   ([`Auth0Emulator::ciba_register_types`]) (`invalid_authorization_details`).
//!
//! The CIBA grant refuses (recorded as refused): extra parameters, an unknown `auth_req_id` or
//! one of another client (`invalid_grant`), **any poll of a request that already ended**
//! (`invalid_grant`: an `auth_req_id` is single-use, and a client must stop after
//! `access_denied` / `expired_token`), and **any poll sooner than the current interval after
//! the previous answer** (`slow_down`, and the interval grows by 5 s, as Auth0 does).
//!
//! Protocol answers that follow the script (`authorization_pending`, `slow_down`,
//! `access_denied`, `expired_token` at the scripted or real expiry) are not refusals: they are
//! recorded with `injected: true`, so [`Auth0Emulator::refused`] stays empty for a well-behaved
//! client. They use varied HTTP statuses (`authorization_pending` 400, `slow_down` 429 with
//! `Retry-After`, `access_denied` 403, `expired_token` 400) because Auth0 documents only the
//! bodies: a client must key on `error`.
//!
//! Every poll is recorded with its time, the interval then required and the time since the
//! previous answer ([`Auth0Emulator::ciba_requests`]).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::oauth::{ID_TOKEN_TTL, authenticate_client, new_refresh_token, released_claims};
use super::state::{RefreshGrant, State};
use super::wire::{Answer, Params, Refusal, Req, now, parse_scope, random_token};
use super::{Auth0Emulator, RecordedRequest, Shared};

/// `grant_type` of the CIBA token requests.
pub const CIBA_GRANT_TYPE: &str = "urn:openid:params:grant-type:ciba";

/// `expires_in` when neither the script nor `requested_expiry` says (Auth0's default).
const DEFAULT_EXPIRES_IN: u64 = 300;
/// Auth0's largest `requested_expiry`.
const MAX_REQUESTED_EXPIRY: u64 = 259_200;
/// Auth0's limit on `binding_message`.
const MAX_BINDING_MESSAGE_CHARS: usize = 64;
/// What a `slow_down` adds to the interval (CIBA Core §11, RFC 8628 §3.5).
const SLOW_DOWN_STEP: u64 = 5;
/// What the user does with a backchannel authentication request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CibaOutcome {
    /// Approves: the first `pending_polls` polls answer `authorization_pending`, the next one
    /// gets the tokens.
    Approve {
        /// Polls answered `authorization_pending` first.
        pending_polls: u32,
    },
    /// Denies: `pending_polls` pending answers, then `access_denied`.
    Deny {
        /// Polls answered `authorization_pending` first.
        pending_polls: u32,
    },
    /// The request expires at the provider: `pending_polls` pending answers, then
    /// `expired_token` (whatever the clock says).
    ExpireAfter {
        /// Polls answered `authorization_pending` first.
        pending_polls: u32,
    },
    /// Never answers: `authorization_pending` until `expires_in` has passed, then
    /// `expired_token`.
    Ignore,
    /// A `slow_down` storm: the first `slow_downs` polls answer `slow_down` (each adding 5 s to
    /// the interval for that and every later poll), the next `pending_polls` answer
    /// `authorization_pending`, the one after gets the tokens.
    SlowDownThenApprove {
        /// Polls answered `slow_down` first.
        slow_downs: u32,
        /// Polls answered `authorization_pending` after the `slow_down`s.
        pending_polls: u32,
    },
    /// A misbehaving provider: approves at the first poll but issues the ID token for `sub`
    /// instead of the requested user.
    ApproveAs {
        /// The `sub` of the issued tokens.
        sub: String,
    },
}

/// How the next `/bc-authorize` request plays out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CibaScript {
    /// What the user does.
    pub outcome: CibaOutcome,
    /// `interval` in the answer; `None` leaves it out (the client must then wait 5 s).
    pub interval: Option<u64>,
    /// `expires_in` in the answer; `None`: the request's `requested_expiry`, else 300.
    pub expires_in: Option<u64>,
}

impl Default for CibaScript {
    /// Auth0's defaults: approve after one pending poll, `interval` 5, `expires_in` 300 (or
    /// `requested_expiry`).
    fn default() -> Self {
        CibaScript {
            outcome: CibaOutcome::Approve { pending_polls: 1 },
            interval: Some(5),
            expires_in: None,
        }
    }
}

impl CibaScript {
    /// `outcome` with `interval` seconds (keep tests short with 1).
    pub fn new(outcome: CibaOutcome, interval: Option<u64>) -> CibaScript {
        CibaScript {
            outcome,
            interval,
            expires_in: None,
        }
    }

    /// The same with `expires_in` seconds.
    pub fn expires_in(mut self, seconds: u64) -> CibaScript {
        self.expires_in = Some(seconds);
        self
    }
}

/// One poll of a CIBA request, as the emulator saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct CibaPoll {
    /// When it arrived.
    pub at: Instant,
    /// Time since the previous answer about this request (the `/bc-authorize` answer for the
    /// first poll).
    pub since_previous_answer: Duration,
    /// The interval in force when it arrived (the announced one, or 5 s, plus 5 s per
    /// `slow_down` so far).
    pub required_interval: Duration,
    /// What was answered: `authorization_pending`, `slow_down`, `access_denied`,
    /// `expired_token`, `invalid_grant` or `tokens`.
    pub answer: String,
}

/// A backchannel authentication request the emulator accepted, with its polls.
#[derive(Debug, Clone, PartialEq)]
pub struct CibaRecord {
    /// The `auth_req_id` issued.
    pub auth_req_id: String,
    /// The client that started it.
    pub client_id: String,
    /// The `sub` of `login_hint`.
    pub sub: String,
    /// The raw `login_hint` as sent.
    pub login_hint: String,
    /// `scope` as sent.
    pub scope: String,
    /// `binding_message` as sent.
    pub binding_message: String,
    /// `audience`, if sent.
    pub audience: Option<String>,
    /// `requested_expiry`, if sent.
    pub requested_expiry: Option<u64>,
    /// `authorization_details`, if sent (parsed).
    pub authorization_details: Option<Value>,
    /// `interval` announced (`None`: left out).
    pub interval: Option<u64>,
    /// `expires_in` announced.
    pub expires_in: u64,
    /// When `/bc-authorize` answered.
    pub answered_at: Instant,
    /// Every poll, oldest first.
    pub polls: Vec<CibaPoll>,
}

/// One live (or ended) request.
#[derive(Debug, Clone)]
struct Pending {
    record: CibaRecord,
    outcome: CibaOutcome,
    /// The interval now required between polls, in seconds.
    interval: u64,
    expires_at: Instant,
    /// When the previous answer about this request was produced.
    last_answer: Instant,
    /// Polls answered by the script so far (too-fast polls excluded).
    scripted_polls: u32,
    ended: bool,
}

/// The emulator's CIBA state.
#[derive(Debug, Default)]
pub(crate) struct CibaState {
    scripts: VecDeque<CibaScript>,
    requests: HashMap<String, Pending>,
    /// `auth_req_id`s in the order they were issued.
    order: Vec<String>,
    /// RAR types registered per audience.
    types: HashMap<String, Vec<String>>,
    /// Discovery leaves the CIBA metadata out.
    hidden: bool,
}

impl Auth0Emulator {
    /// Queues how the next `/bc-authorize` request plays out (first queued, first used); an
    /// empty queue means [`CibaScript::default`].
    pub fn script_ciba(&self, script: CibaScript) {
        self.shared.lock().ciba.scripts.push_back(script);
    }

    /// Registers RAR `authorization_details` types on the API `audience` (CIBA requests may
    /// only carry registered types).
    pub fn ciba_register_types(&self, audience: &str, types: &[&str]) {
        self.shared
            .lock()
            .ciba
            .types
            .entry(audience.to_owned())
            .or_default()
            .extend(types.iter().map(|t| (*t).to_owned()));
    }

    /// With `true`, discovery no longer advertises `backchannel_authentication_endpoint` (a
    /// tenant without CIBA); `/bc-authorize` still answers.
    pub fn hide_ciba(&self, hidden: bool) {
        self.shared.lock().ciba.hidden = hidden;
    }

    /// The backchannel authentication requests accepted so far, oldest first, with their polls.
    pub fn ciba_requests(&self) -> Vec<CibaRecord> {
        let st = self.shared.lock();
        st.ciba
            .order
            .iter()
            .filter_map(|id| st.ciba.requests.get(id))
            .map(|p| p.record.clone())
            .collect()
    }
}

/// The discovery answer with the CIBA metadata added (unless [`Auth0Emulator::hide_ciba`]).
pub(crate) fn advertise(sh: &Shared, st: &State, mut answer: Answer) -> Answer {
    if st.ciba.hidden {
        return answer;
    }
    if let Ok(Value::Object(mut doc)) = serde_json::from_slice::<Value>(&answer.body) {
        doc.insert(
            "backchannel_authentication_endpoint".to_owned(),
            json!(format!("{}bc-authorize", sh.issuer)),
        );
        doc.insert(
            "backchannel_token_delivery_modes_supported".to_owned(),
            json!(["poll"]),
        );
        answer.body = serde_json::to_vec(&Value::Object(doc)).expect("JSON");
    }
    answer
}

/// Parameters `/bc-authorize` refuses by name, and why.
const BC_FORBIDDEN: [(&str, &str); 7] = [
    (
        "id_token_hint",
        "Auth0 identifies the user by login_hint (format iss_sub) only",
    ),
    (
        "login_hint_token",
        "Auth0 identifies the user by login_hint (format iss_sub) only",
    ),
    (
        "client_notification_token",
        "Auth0 supports the poll delivery mode only (no ping/push)",
    ),
    ("user_code", "Auth0 does not support CIBA user codes"),
    ("nonce", "CIBA has no nonce"),
    ("grant_type", "grant_type belongs to the token requests that poll"),
    (
        "auth_req_id",
        "auth_req_id belongs to the token requests that poll",
    ),
];

/// `POST /bc-authorize`.
pub(crate) fn bc_authorize(
    sh: &Shared,
    st: &mut State,
    req: &Req<'_>,
    rec: &mut RecordedRequest,
) -> Result<Answer, Refusal> {
    const WHAT: &str = "/bc-authorize";
    let form = req.form_params(WHAT)?;
    let client_id = authenticate_client(sh, req, &form, WHAT)?;
    rec.client_id = Some(client_id.clone());
    for (name, why) in BC_FORBIDDEN {
        if form.has(name) {
            return Err(Refusal::invalid_request(format!(
                "{WHAT}: parameter `{name}` is not allowed: {why}"
            )));
        }
    }
    form.only(
        &[
            "scope",
            "login_hint",
            "binding_message",
            "audience",
            "requested_expiry",
            "authorization_details",
            "client_id",
            "client_secret",
        ],
        WHAT,
    )?;

    let scope_str = form.require("scope", WHAT)?;
    let scope = parse_scope(scope_str, WHAT)?;
    if !scope.iter().any(|s| s == "openid") {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: scope {scope_str:?} lacks `openid`"
        )));
    }

    let login_hint = form.require("login_hint", WHAT)?;
    let sub = check_login_hint(sh, login_hint)?;
    if !st.users.contains_key(&sub) {
        return Err(Refusal::oauth_400(
            "unknown_user_id",
            format!("{WHAT}: no user {sub:?} in this tenant"),
        ));
    }

    let binding_message = form.get("binding_message").ok_or_else(|| {
        Refusal::oauth_400(
            "invalid_binding_message",
            format!("{WHAT}: binding_message is required"),
        )
    })?;
    if binding_message.chars().count() > MAX_BINDING_MESSAGE_CHARS {
        return Err(Refusal::oauth_400(
            "invalid_binding_message",
            format!(
                "{WHAT}: binding_message has {} characters (at most {MAX_BINDING_MESSAGE_CHARS})",
                binding_message.chars().count()
            ),
        ));
    }

    let requested_expiry = match form.get("requested_expiry") {
        None => None,
        Some(raw) => match raw.parse::<u64>() {
            Ok(secs) if (1..=MAX_REQUESTED_EXPIRY).contains(&secs) && !raw.starts_with('+') => Some(secs),
            _ => {
                return Err(Refusal::invalid_request(format!(
                    "{WHAT}: requested_expiry must be an integer number of seconds between 1 and \
                     {MAX_REQUESTED_EXPIRY}, got {raw:?}"
                )));
            }
        },
    };
    let audience = form.get("audience").map(str::to_owned);
    let authorization_details = match form.get("authorization_details") {
        None => None,
        Some(raw) => Some(check_details(st, raw, audience.as_deref())?),
    };

    let script = st.ciba.scripts.pop_front().unwrap_or_default();
    let expires_in = script
        .expires_in
        .or(requested_expiry)
        .unwrap_or(DEFAULT_EXPIRES_IN);
    let auth_req_id = random_token(24);
    let mut body = json!({"auth_req_id": auth_req_id, "expires_in": expires_in});
    if let Some(interval) = script.interval {
        body["interval"] = json!(interval);
    }
    let answered_at = Instant::now();
    let record = CibaRecord {
        auth_req_id: auth_req_id.clone(),
        client_id,
        sub,
        login_hint: login_hint.to_owned(),
        scope: scope_str.to_owned(),
        binding_message: binding_message.to_owned(),
        audience,
        requested_expiry,
        authorization_details,
        interval: script.interval,
        expires_in,
        answered_at,
        polls: Vec::new(),
    };
    st.ciba.requests.insert(
        auth_req_id.clone(),
        Pending {
            record,
            outcome: script.outcome,
            interval: script.interval.unwrap_or(5),
            expires_at: answered_at + Duration::from_secs(expires_in),
            last_answer: answered_at,
            scripted_polls: 0,
            ended: false,
        },
    );
    st.ciba.order.push(auth_req_id);
    Ok(Answer::token_json(200, &body))
}

/// `login_hint` must be exactly `{"format":"iss_sub","iss":<issuer>,"sub":<sub>}`; returns `sub`.
fn check_login_hint(sh: &Shared, raw: &str) -> Result<String, Refusal> {
    const WHAT: &str = "/bc-authorize";
    let shape = "a JSON object {\"format\":\"iss_sub\",\"iss\":\"<issuer>\",\"sub\":\"<user_id>\"}";
    let Ok(Value::Object(hint)) = serde_json::from_str::<Value>(raw) else {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: login_hint must be {shape}, got {raw:?}"
        )));
    };
    let mut keys: Vec<&str> = hint.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys != ["format", "iss", "sub"] {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: login_hint must have exactly the members format, iss and sub, got {}",
            keys.join(", ")
        )));
    }
    if hint["format"] != "iss_sub" {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: login_hint format must be \"iss_sub\", got {}",
            hint["format"]
        )));
    }
    if hint["iss"] != sh.issuer.as_str() {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: login_hint iss must be the issuer exactly ({:?}, with its trailing slash), got {}",
            sh.issuer, hint["iss"]
        )));
    }
    match hint["sub"].as_str() {
        Some(sub) if !sub.is_empty() => Ok(sub.to_owned()),
        _ => Err(Refusal::invalid_request(format!(
            "{WHAT}: login_hint sub must be a non-empty string, got {}",
            hint["sub"]
        ))),
    }
}

/// RFC 9396 shape, sent with `audience`, every type registered on it.
fn check_details(st: &State, raw: &str, audience: Option<&str>) -> Result<Value, Refusal> {
    const WHAT: &str = "/bc-authorize";
    let invalid = |why: String| Refusal::oauth_400("invalid_authorization_details", format!("{WHAT}: {why}"));
    let value: Value =
        serde_json::from_str(raw).map_err(|e| invalid(format!("authorization_details is not JSON: {e}")))?;
    let types: Option<Vec<&str>> = value.as_array().and_then(|items| {
        items
            .iter()
            .map(|i| i.as_object()?.get("type")?.as_str().filter(|t| !t.is_empty()))
            .collect()
    });
    let Some(types) = types.filter(|t| !t.is_empty()) else {
        return Err(invalid(format!(
            "authorization_details must be a non-empty JSON array of objects with a string `type`, got {raw}"
        )));
    };
    let Some(audience) = audience else {
        return Err(invalid(
            "authorization_details needs `audience`: its types are registered on an API".to_owned(),
        ));
    };
    let registered = st.ciba.types.get(audience);
    if let Some(t) = types
        .iter()
        .find(|t| !registered.is_some_and(|r| r.iter().any(|x| x == *t)))
    {
        return Err(invalid(format!(
            "type {t:?} is not registered on the API {audience:?} (test knob ciba_register_types)"
        )));
    }
    Ok(value)
}

/// The `urn:openid:params:grant-type:ciba` grant (the client is already authenticated).
pub(crate) fn grant(sh: &Shared, st: &mut State, form: &Params, client_id: &str) -> Result<Answer, Refusal> {
    const WHAT: &str = "/oauth/token (ciba)";
    form.only(&["grant_type", "auth_req_id", "client_id", "client_secret"], WHAT)?;
    let id = form.require("auth_req_id", WHAT)?;
    let arrived = Instant::now();
    let Some(p) = st.ciba.requests.get_mut(id) else {
        return Err(Refusal::invalid_grant(format!("{WHAT}: unknown auth_req_id")));
    };
    if p.record.client_id != client_id {
        return Err(Refusal::invalid_grant(format!(
            "{WHAT}: the auth_req_id was issued to client {:?}, not {client_id:?}",
            p.record.client_id
        )));
    }
    let since = arrived.saturating_duration_since(p.last_answer);
    let required = Duration::from_secs(p.interval);
    let mut poll = CibaPoll {
        at: arrived,
        since_previous_answer: since,
        required_interval: required,
        answer: String::new(),
    };
    if p.ended {
        poll.answer = "invalid_grant".to_owned();
        p.record.polls.push(poll);
        p.last_answer = Instant::now();
        return Err(Refusal::invalid_grant(format!(
            "{WHAT}: this auth_req_id already ended (it is single-use; stop polling after tokens, \
             access_denied or expired_token)"
        )));
    }
    if since < required {
        p.interval += SLOW_DOWN_STEP;
        poll.answer = "slow_down".to_owned();
        p.record.polls.push(poll);
        p.last_answer = Instant::now();
        let mut refusal = Refusal::oauth_400(
            "slow_down",
            format!(
                "{WHAT}: polled {} ms after the previous answer; the interval is {} s (now {} s)",
                since.as_millis(),
                required.as_secs(),
                p.interval
            ),
        )
        .into_answer();
        refusal.status = 429;
        refusal.headers.push(("retry-after", p.interval.to_string()));
        return Ok(refusal);
    }

    p.scripted_polls += 1;
    let n = p.scripted_polls;
    let expired = arrived > p.expires_at;
    let step = match &p.outcome {
        _ if expired => Step::Expired,
        CibaOutcome::Approve { pending_polls } if n <= *pending_polls => Step::Pending,
        CibaOutcome::Approve { .. } | CibaOutcome::ApproveAs { .. } => Step::Tokens,
        CibaOutcome::Deny { pending_polls } if n <= *pending_polls => Step::Pending,
        CibaOutcome::Deny { .. } => Step::Denied,
        CibaOutcome::ExpireAfter { pending_polls } if n <= *pending_polls => Step::Pending,
        CibaOutcome::ExpireAfter { .. } => Step::Expired,
        CibaOutcome::Ignore => Step::Pending,
        CibaOutcome::SlowDownThenApprove { slow_downs, .. } if n <= *slow_downs => Step::SlowDown,
        CibaOutcome::SlowDownThenApprove {
            slow_downs,
            pending_polls,
        } if n <= *slow_downs + *pending_polls => Step::Pending,
        CibaOutcome::SlowDownThenApprove { .. } => Step::Tokens,
    };
    let answer = match step {
        Step::Pending => scripted(
            400,
            "authorization_pending",
            "The end-user authorization is pending",
            None,
        ),
        Step::SlowDown => {
            p.interval += SLOW_DOWN_STEP;
            scripted(
                429,
                "slow_down",
                "You are polling faster than allowed",
                Some(p.interval),
            )
        }
        Step::Denied => {
            p.ended = true;
            scripted(
                403,
                "access_denied",
                "The end-user denied the authorization request or it has been expired",
                None,
            )
        }
        Step::Expired => {
            p.ended = true;
            scripted(400, "expired_token", "The auth_req_id has expired", None)
        }
        Step::Tokens => {
            p.ended = true;
            scripted(200, "tokens", "", None)
        }
    };
    poll.answer = answer.error.clone().unwrap_or_else(|| "tokens".to_owned());
    p.record.polls.push(poll);
    let answer = if answer.status == 200 {
        let record = p.record.clone();
        let sub = match step_sub(&p.outcome) {
            Some(other) => other,
            None => record.sub.clone(),
        };
        let body = issue(sh, st, &record, &sub);
        Answer::token_json(200, &body)
    } else {
        answer
    };
    if let Some(p) = st.ciba.requests.get_mut(id) {
        p.last_answer = Instant::now();
    }
    Ok(answer)
}

/// What a scripted poll answers.
enum Step {
    Pending,
    SlowDown,
    Denied,
    Expired,
    Tokens,
}

fn step_sub(outcome: &CibaOutcome) -> Option<String> {
    match outcome {
        CibaOutcome::ApproveAs { sub } => Some(sub.clone()),
        _ => None,
    }
}

/// A protocol answer following the script (not a refusal: recorded with `injected: true`).
fn scripted(status: u16, error: &str, description: &str, retry_after: Option<u64>) -> Answer {
    if status == 200 {
        return Answer::empty(200);
    }
    let mut answer = Answer::token_json(status, &json!({"error": error, "error_description": description}));
    if let Some(secs) = retry_after {
        answer.headers.push(("retry-after", secs.to_string()));
    }
    answer.error = Some(error.to_owned());
    answer.reason = Some(format!("scripted CIBA answer: {description}"));
    answer.injected = true;
    answer
}

/// `{access_token, id_token, token_type, expires_in, scope[, refresh_token][, authorization_details]}`.
fn issue(sh: &Shared, st: &mut State, record: &CibaRecord, sub: &str) -> Value {
    let now = now();
    let scope: Vec<&str> = record.scope.split(' ').collect();
    let audience = record.audience.clone().unwrap_or_else(|| sh.userinfo_audience());
    let mut at = json!({
        "iss": sh.issuer,
        "sub": sub,
        "aud": audience,
        "azp": record.client_id,
        "scope": record.scope,
        "iat": now,
        "exp": now + sh.opts.access_token_ttl,
        "jti": random_token(12),
    });
    if let Some(details) = &record.authorization_details {
        at["authorization_details"] = details.clone();
    }
    let has = |s: &str| scope.contains(&s);
    let mut id = released_claims(&st.user_claims(sub), &scope);
    for (k, v) in [
        ("iss", json!(sh.issuer)),
        ("aud", json!(record.client_id)),
        ("sub", json!(sub)),
        ("iat", json!(now)),
        ("exp", json!(now + ID_TOKEN_TTL)),
        ("auth_time", json!(now)),
    ] {
        id.insert(k.to_owned(), v);
    }
    let mut body = json!({
        "access_token": sh.keys.sign(&at),
        "id_token": sh.keys.sign(&Value::Object(id)),
        "token_type": "Bearer",
        "expires_in": sh.opts.access_token_ttl,
        "scope": record.scope,
    });
    if has("offline_access") {
        let token = new_refresh_token(
            st,
            RefreshGrant {
                client_id: record.client_id.clone(),
                sub: sub.to_owned(),
                sid: random_token(16),
                scope: scope.iter().map(|s| (*s).to_owned()).collect(),
                audience: record.audience.clone(),
                organization: None,
                revoked: None,
            },
        );
        body["refresh_token"] = json!(token);
    }
    if let Some(details) = &record.authorization_details {
        body["authorization_details"] = details.clone();
    }
    body
}
