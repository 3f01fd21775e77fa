//! Issue 13 items of the emulator: telemetry checks (`Auth0-Client`, `auth0Client`), login
//! options (`acr_values`, `ui_locales`, an aged `auth_time`), a per-audience MFA policy with
//! interactive step-up, and the `federated` logout flag.
//!
//! - **Telemetry** ([`Auth0Emulator::expect_telemetry`]): unchecked by default. Once an
//!   expectation is set, every back-channel request (discovery, JWKS, token, PAR, revocation,
//!   userinfo, My Account, CIBA, …) must carry a valid `Auth0-Client` header — base64url without
//!   padding of a JSON object with string `name` and semver `version`, the same value on every
//!   call — or must carry none when telemetry is expected off; an authorization request (the
//!   `/authorize` query, or the PAR body) must carry `auth0Client` with that same value exactly
//!   when [`Telemetry::HeaderAndAuthorizeParam`] is expected (Auth0 domain configurations), and
//!   never otherwise. Browser-facing endpoints (`/authorize`, both logouts, `/connect`) are
//!   not checked for the header. A violation is refused `400 invalid_request` with the reason,
//!   so it shows in [`Auth0Emulator::refused`].
//! - **MFA policy** ([`Auth0Emulator::require_mfa_for`]): a `refresh_token` grant for such an
//!   audience from a refresh token whose login had no MFA answers **403**
//!   `{"error":"mfa_required","error_description":"Multifactor authentication required",
//!   "mfa_token","mfa_requirements":{"challenge":[{"type":"otp"}]}}` (recorded as a scripted
//!   outcome, `injected: true`, not as a refusal). A login whose authorization request has
//!   `acr_values` = [`MFA_POLICY`], or asks for an MFA audience, performs MFA (the emulated user
//!   always passes it): its ID token carries `amr: ["mfa"]` and `acr` = the policy, and its
//!   refresh tokens get MFA audiences' tokens without `mfa_required`.
//! - **Login options**: `acr_values` must be [`MFA_POLICY`] (the only value the emulated tenant
//!   supports), `ui_locales` space-separated language tags; `max_age` is checked by the
//!   authorization endpoint already. [`Auth0Emulator::age_auth_time`] makes the next ID tokens of
//!   code exchanges report an older `auth_time`.
//! - **Federated logout**: `federated` is a presence flag on `/v2/logout` and `/oidc/logout`
//!   (`?federated`, or `federated=` as nextjs-auth0 sends it); any value (`federated=false`,
//!   `federated=true`) is refused, as is a repeated flag.

use std::collections::{HashMap, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::state::{CodeGrant, State};
use super::wire::{Answer, Pairs, Params, Refusal, Req, parse_pairs, random_token};
use super::{Auth0Emulator, Shared};

/// The `acr_values` of an MFA step-up (OpenID PAPE multi-factor policy).
pub const MFA_POLICY: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

/// The telemetry request header.
pub(crate) const TELEMETRY_HEADER: &str = "auth0-client";

/// What the emulator expects of a client's telemetry (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Telemetry {
    /// Nothing is checked (the default).
    #[default]
    Unchecked,
    /// Telemetry turned off: no `Auth0-Client` header, no `auth0Client` parameter.
    Off,
    /// `Auth0-Client` on every back-channel request; no `auth0Client` parameter (an issuer
    /// configuration).
    Header,
    /// `Auth0-Client` on every back-channel request and `auth0Client` on every authorization
    /// request (an Auth0 domain configuration).
    HeaderAndAuthorizeParam,
}

/// The mutable state of these features (a field of the emulator's state).
#[derive(Debug, Default)]
pub(crate) struct AdvancedState {
    pub(crate) telemetry: Telemetry,
    /// The first telemetry value seen; every later one must be equal.
    pub(crate) telemetry_value: Option<String>,
    /// Audiences whose tokens need MFA.
    pub(crate) mfa_audiences: HashSet<String>,
    /// Refresh tokens issued by a login that performed MFA.
    pub(crate) mfa_refresh_tokens: HashSet<String>,
    /// Issued `mfa_token`s, by value: the `sub` they are for.
    pub(crate) mfa_tokens: HashMap<String, String>,
    /// Seconds subtracted from `auth_time` in the ID tokens of code exchanges.
    pub(crate) auth_time_age: u64,
    /// Discovery leaves out `end_session_endpoint` (a tenant without RP-initiated logout).
    pub(crate) hide_end_session: bool,
}

impl Auth0Emulator {
    /// Sets what the emulator expects of the client's telemetry from now on (see the
    /// [`advanced`](self) module docs). Violations are refused and show in
    /// [`Auth0Emulator::refused`].
    pub fn expect_telemetry(&self, expected: Telemetry) {
        let mut st = self.shared.lock();
        st.advanced.telemetry = expected;
        st.advanced.telemetry_value = None;
    }

    /// From now on, tokens for `audience` need MFA: a refresh for it from a login without MFA
    /// answers `403 mfa_required`.
    pub fn require_mfa_for(&self, audience: &str) {
        self.shared
            .lock()
            .advanced
            .mfa_audiences
            .insert(audience.to_owned());
    }

    /// From now on, the ID tokens of code exchanges report an `auth_time` `secs` seconds in
    /// the past (a session at the tenant that is that old); `0` restores the normal behaviour.
    pub fn age_auth_time(&self, secs: u64) {
        self.shared.lock().advanced.auth_time_age = secs;
    }

    /// With `true`, discovery no longer advertises `end_session_endpoint` (an Auth0 tenant
    /// without OIDC RP-initiated logout: clients fall back to `/v2/logout`).
    pub fn hide_end_session_endpoint(&self, hide: bool) {
        self.shared.lock().advanced.hide_end_session = hide;
    }

    /// The `mfa_token`s issued so far (to check none ever reaches the browser).
    pub fn issued_mfa_tokens(&self) -> Vec<String> {
        self.shared.lock().advanced.mfa_tokens.keys().cloned().collect()
    }
}

/// Decodes and checks a telemetry value: base64url without padding of a JSON object with a
/// non-empty string `name` and a semver string `version` (other keys allowed).
///
/// # Errors
/// What is wrong with it.
pub fn decode_telemetry(value: &str) -> Result<Value, String> {
    if value.is_empty() {
        return Err("the value is empty".to_owned());
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "{value:?} is not base64url without padding (character {c:?})"
        ));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|e| format!("{value:?} is not base64url: {e}"))?;
    let json: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{value:?} does not decode to JSON: {e}"))?;
    let Some(obj) = json.as_object() else {
        return Err(format!("{json} is not a JSON object"));
    };
    if obj.get("name").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(format!("{json} has no string `name`"));
    }
    let version = obj.get("version").and_then(Value::as_str).unwrap_or("");
    let core = version.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("{json}: `version` {version:?} is not semver"));
    }
    Ok(json)
}

/// Browser-facing endpoints: the user agent calls them, never the client's back channel.
fn is_browser_endpoint(req: &Req<'_>) -> bool {
    matches!(
        (req.method, req.path),
        ("GET", "/authorize") | ("GET", "/v2/logout") | ("GET", "/oidc/logout") | ("GET", "/connect")
    )
}

/// The telemetry checks, before any endpoint runs.
pub(crate) fn check_telemetry(st: &mut State, req: &Req<'_>) -> Result<(), Refusal> {
    let expected = st.advanced.telemetry;
    if expected == Telemetry::Unchecked {
        return Ok(());
    }
    let what = format!("{} {} (telemetry)", req.method, req.path);
    if !is_browser_endpoint(req) {
        let values: Vec<&[u8]> = req
            .headers
            .get_all(TELEMETRY_HEADER)
            .iter()
            .map(axum::http::HeaderValue::as_bytes)
            .collect();
        match (expected, values.as_slice()) {
            (Telemetry::Off, []) => {}
            (Telemetry::Off, _) => {
                return Err(Refusal::invalid_request(format!(
                    "{what}: telemetry is turned off, yet the request carries an Auth0-Client header"
                )));
            }
            (_, []) => {
                return Err(Refusal::invalid_request(format!(
                    "{what}: the Auth0-Client header is missing (every back-channel request to the tenant \
                     carries it)"
                )));
            }
            (_, [one]) => {
                let value = std::str::from_utf8(one).unwrap_or("");
                decode_telemetry(value)
                    .map_err(|e| Refusal::invalid_request(format!("{what}: Auth0-Client: {e}")))?;
                same_value(st, value, &what)?;
            }
            (_, _) => {
                return Err(Refusal::invalid_request(format!(
                    "{what}: the Auth0-Client header is repeated"
                )));
            }
        }
    }
    let authorize_params: Option<Pairs> = match (req.method, req.path) {
        ("GET", "/authorize") if !req.query.iter().any(|(k, _)| k == "request_uri") => {
            Some(req.query.clone())
        }
        ("POST", "/oauth/par") => Some(parse_pairs(req.body)),
        _ => None,
    };
    if let Some(params) = authorize_params {
        let found: Vec<&str> = params
            .iter()
            .filter(|(k, _)| k == "auth0Client")
            .map(|(_, v)| v.as_str())
            .collect();
        match (expected, found.as_slice()) {
            (Telemetry::HeaderAndAuthorizeParam, [value]) => {
                decode_telemetry(value)
                    .map_err(|e| Refusal::invalid_request(format!("{what}: auth0Client: {e}")))?;
                same_value(st, value, &what)?;
            }
            (Telemetry::HeaderAndAuthorizeParam, []) => {
                return Err(Refusal::invalid_request(format!(
                    "{what}: the auth0Client parameter is missing (an Auth0 domain configuration sends it \
                     with every authorization request; with PAR in the pushed body)"
                )));
            }
            (_, []) => {}
            (_, _) => {
                return Err(Refusal::invalid_request(format!(
                    "{what}: unexpected auth0Client parameter (expected: {expected:?}; it goes only to Auth0 \
                     domains, exactly once, and never when telemetry is off)"
                )));
            }
        }
    }
    Ok(())
}

fn same_value(st: &mut State, value: &str, what: &str) -> Result<(), Refusal> {
    match &st.advanced.telemetry_value {
        Some(first) if first != value => Err(Refusal::invalid_request(format!(
            "{what}: the telemetry value {value:?} differs from the one sent before ({first:?}); one value \
             for every call"
        ))),
        Some(_) => Ok(()),
        None => {
            st.advanced.telemetry_value = Some(value.to_owned());
            Ok(())
        }
    }
}

/// Checks the login options of an authorization request; returns its `acr_values`.
pub(crate) fn check_login_options(params: &Params, what: &str) -> Result<Option<String>, Refusal> {
    if let Some(locales) = params.get("ui_locales") {
        let ok = locales.split(' ').all(|t| {
            !t.is_empty()
                && t.len() <= 35
                && t.split('-')
                    .all(|p| !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        });
        if !ok {
            return Err(Refusal::invalid_request(format!(
                "{what}: ui_locales {locales:?} must be space-separated language tags (e.g. `fr-CA en`)"
            )));
        }
    }
    let Some(acr) = params.get("acr_values") else {
        return Ok(None);
    };
    if acr.split(' ').any(|v| v != MFA_POLICY) {
        return Err(Refusal::invalid_request(format!(
            "{what}: acr_values {acr:?} is not supported (this tenant knows only {MFA_POLICY})"
        )));
    }
    Ok(Some(acr.to_owned()))
}

/// Whether the login of `grant` performs MFA: it asked for it, or for an MFA audience.
fn login_did_mfa(st: &State, grant: &CodeGrant) -> bool {
    grant.request.acr_values.as_deref() == Some(MFA_POLICY)
        || grant
            .request
            .audience
            .as_ref()
            .is_some_and(|a| st.advanced.mfa_audiences.contains(a))
}

/// After a code exchange's tokens are issued: `amr`/`acr` when the login performed MFA (and
/// its refresh token remembered as such), an aged `auth_time` when asked for.
pub(crate) fn after_code_grant(sh: &Shared, st: &mut State, grant: &CodeGrant, body: &mut Value) {
    let mfa = login_did_mfa(st, grant);
    if mfa && let Some(rt) = body["refresh_token"].as_str() {
        st.advanced.mfa_refresh_tokens.insert(rt.to_owned());
    }
    let age = st.advanced.auth_time_age;
    if !mfa && age == 0 {
        return;
    }
    let Some(mut claims) = body["id_token"].as_str().and_then(payload) else {
        return;
    };
    if mfa {
        claims["amr"] = json!(["mfa"]);
        claims["acr"] = json!(MFA_POLICY);
    }
    if age > 0 {
        claims["auth_time"] = json!(grant.auth_time.saturating_sub(age));
    }
    body["id_token"] = json!(sh.keys.sign(&claims));
}

/// A rotated refresh token inherits the MFA of the one it replaces.
pub(crate) fn on_rotation(st: &mut State, old: &str, new: &str) {
    if st.advanced.mfa_refresh_tokens.contains(old) {
        st.advanced.mfa_refresh_tokens.insert(new.to_owned());
    }
}

/// The MFA policy of a `refresh_token` grant: `Some(403 mfa_required)` when `audience` needs
/// MFA and `refresh_token`'s login had none.
pub(crate) fn mfa_required(st: &mut State, refresh_token: &str, sub: &str, audience: &str) -> Option<Answer> {
    if !st.advanced.mfa_audiences.contains(audience) || st.advanced.mfa_refresh_tokens.contains(refresh_token)
    {
        return None;
    }
    let mfa_token = format!("emu-mfa.{}", random_token(24));
    st.advanced.mfa_tokens.insert(mfa_token.clone(), sub.to_owned());
    let mut answer = Answer::token_json(
        403,
        &json!({
            "error": "mfa_required",
            "error_description": "Multifactor authentication required",
            "mfa_token": mfa_token,
            "mfa_requirements": {"challenge": [{"type": "otp"}]},
        }),
    );
    answer.error = Some("mfa_required".to_owned());
    answer.reason = Some(format!(
        "audience {audience:?} requires MFA (require_mfa_for) and this refresh token comes from a login \
         without MFA"
    ));
    answer.injected = true;
    Some(answer)
}

/// The query of a logout endpoint without its `federated` presence flag, and whether the flag
/// was there. A flag with a value, or a repeated one, is refused.
pub(crate) fn federated_flag(query: &Pairs, what: &str) -> Result<(Pairs, bool), Refusal> {
    let mut federated = false;
    let mut rest = Pairs::new();
    for (k, v) in query {
        if k != "federated" {
            rest.push((k.clone(), v.clone()));
            continue;
        }
        if !v.is_empty() {
            return Err(Refusal::invalid_request(format!(
                "{what}: `federated` is a presence flag (send `federated` with no value); got federated={v:?} \
                 (never send federated=false to mean off: omit it)"
            )));
        }
        if federated {
            return Err(Refusal::invalid_request(format!(
                "{what}: `federated` is repeated"
            )));
        }
        federated = true;
    }
    Ok((rest, federated))
}

/// The discovery answer as the knobs want it.
pub(crate) fn adjust_discovery(st: &State, answer: Answer) -> Answer {
    if !st.advanced.hide_end_session {
        return answer;
    }
    let Ok(mut doc) = serde_json::from_slice::<Value>(&answer.body) else {
        return answer;
    };
    if let Some(map) = doc.as_object_mut() {
        map.remove("end_session_endpoint");
    }
    Answer::json(answer.status, &doc)
}

/// The claims of a JWT the emulator signed (no verification: it just made it).
fn payload(jwt: &str) -> Option<Value> {
    let part = jwt.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telemetry_values_are_checked() {
        let good = URL_SAFE_NO_PAD.encode(br#"{"name":"auth-core","version":"0.1.0","env":{"rust":"1"}}"#);
        assert_eq!(decode_telemetry(&good).unwrap()["name"], "auth-core");
        let padded = base64::engine::general_purpose::STANDARD.encode(br#"{"name":"a","version":"1.0.10"}"#);
        assert!(decode_telemetry(&padded).is_err(), "standard base64 with padding");
        let no_version = URL_SAFE_NO_PAD.encode(br#"{"name":"a"}"#);
        assert!(decode_telemetry(&no_version).is_err());
        let bad_version = URL_SAFE_NO_PAD.encode(br#"{"name":"a","version":"latest"}"#);
        assert!(decode_telemetry(&bad_version).is_err());
        assert!(decode_telemetry("").is_err());
    }

    #[test]
    fn federated_is_a_presence_flag() {
        let q = |s: &str| parse_pairs(s.as_bytes());
        let (rest, on) = federated_flag(&q("client_id=a&federated"), "t").unwrap();
        assert!(on);
        assert_eq!(rest, q("client_id=a"));
        assert!(federated_flag(&q("federated="), "t").unwrap().1);
        assert!(!federated_flag(&q("client_id=a"), "t").unwrap().1);
        assert!(federated_flag(&q("federated=false"), "t").is_err());
        assert!(federated_flag(&q("federated&federated"), "t").is_err());
    }
}
