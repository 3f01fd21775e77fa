//! DPoP (RFC 9449) at the emulated tenant, strictly as `auth0-wire.md` says, and an emulated
//! API (resource server) that checks how each token is presented.
//!
//! Token endpoint: a request carrying a `DPoP` header must carry exactly one proof that
//! verifies with the public `jwk` of its own header (`typ: dpop+jwt`, `alg: ES256`, no private
//! `d`), with `htm` `POST`, `htu` exactly `{issuer}oauth/token`, a fresh `iat` (±60 s), a `jti`
//! never seen before (replays are refused with `invalid_dpop_proof`), no `ath`, and — when the
//! nonce knob is on — the current nonce (otherwise `400 use_dpop_nonce` with a `DPoP-Nonce`
//! header, recorded as injected: it is the protocol's challenge, not a client defect). Tokens of
//! the DPoP grants (authorization code, refresh, custom token exchange) are then bound:
//! `token_type: "DPoP"` and `cnf.jkt` = the proof key's RFC 7638 thumbprint. CIBA and Token
//! Vault answers stay `Bearer` (Auth0 does not list them as DPoP grants). Without a header
//! nothing changes, unless [`Auth0Emulator::require_dpop`] is on.
//!
//! API ([`Auth0Emulator::start_api`]): a token with `cnf.jkt` must come as `Authorization: DPoP`
//! with a proof for that key carrying `htm`, `htu` (the URL without query), `ath` =
//! base64url(SHA-256(token)) and a fresh `jti`; any other token as `Authorization: Bearer`
//! without a proof. Refusals are `401` with `WWW-Authenticate`.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::state::State;
use super::wire::{Answer, Refusal, Req, now, random_token};
use super::{Auth0Emulator, Shared};

/// How far a proof's `iat` may be from the emulator's clock.
const IAT_WINDOW: u64 = 60;
/// Remembered `jti`s (oldest forgotten first).
const MAX_JTIS: usize = 100_000;

/// The grants whose tokens Auth0 binds to the proof key.
const BINDING_GRANTS: [&str; 3] = [
    "authorization_code",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:token-exchange",
];

/// DPoP bookkeeping of the tenant.
#[derive(Debug, Default)]
pub(crate) struct DpopState {
    /// Every `jti` seen at the token endpoint.
    jtis: Jtis,
    /// Token requests without a proof are refused.
    required: bool,
    /// The nonce proofs must carry, when the nonce knob is on.
    nonce: Option<String>,
}

/// A bounded set of seen `jti`s.
#[derive(Debug, Default)]
pub(crate) struct Jtis {
    seen: HashSet<String>,
    order: VecDeque<String>,
}

impl Jtis {
    /// `false` when `jti` was seen before.
    fn insert(&mut self, jti: &str) -> bool {
        if !self.seen.insert(jti.to_owned()) {
            return false;
        }
        self.order.push_back(jti.to_owned());
        if self.order.len() > MAX_JTIS
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }
}

/// What the token endpoint made of the `DPoP` header.
#[derive(Debug)]
pub(crate) enum Checked {
    /// No header.
    Absent,
    /// A valid proof by the key with this thumbprint.
    Proof { jkt: String },
    /// Answer this instead (the nonce challenge).
    Challenge(Answer),
}

/// Checks the `DPoP` header of a token request.
pub(crate) fn check_token_request(sh: &Shared, st: &mut State, req: &Req<'_>) -> Result<Checked, Refusal> {
    const WHAT: &str = "/oauth/token (DPoP)";
    let Some(proof) = single_proof(req.headers).map_err(|e| invalid_proof(WHAT, &e))? else {
        if st.dpop.required {
            return Err(Refusal::invalid_request(format!(
                "{WHAT}: this application requires sender-constrained tokens: send a DPoP proof"
            )));
        }
        return Ok(Checked::Absent);
    };
    let htu = format!("{}oauth/token", sh.issuer);
    let (jkt, claims) =
        verify_proof(&proof, "POST", &htu, None, &mut st.dpop.jtis).map_err(|e| invalid_proof(WHAT, &e))?;
    let sent = claims.get("nonce").and_then(Value::as_str);
    match (&st.dpop.nonce, sent) {
        (Some(current), Some(n)) if n == current => {}
        (Some(current), _) => {
            let mut answer = Answer::token_json(
                400,
                &json!({"error": "use_dpop_nonce",
                        "error_description": "Authorization server requires nonce in DPoP proof"}),
            );
            answer.headers.push(("dpop-nonce", current.clone()));
            answer.error = Some("use_dpop_nonce".to_owned());
            answer.reason = Some(match sent {
                Some(n) => format!("{WHAT}: nonce {n:?} is not the current one: DPoP-Nonce challenge"),
                None => format!("{WHAT}: no nonce: DPoP-Nonce challenge"),
            });
            answer.injected = true;
            return Ok(Checked::Challenge(answer));
        }
        (None, Some(n)) => {
            return Err(invalid_proof(
                WHAT,
                &format!("nonce {n:?} was never issued by this server"),
            ));
        }
        (None, None) => {}
    }
    Ok(Checked::Proof { jkt })
}

/// Binds a successful answer of a DPoP grant to the proof key; adds the current nonce to every
/// answer while the nonce knob is on.
pub(crate) fn finish(
    sh: &Shared,
    st: &State,
    mut answer: Answer,
    checked: &Checked,
    grant_type: &str,
) -> Answer {
    if let Some(nonce) = &st.dpop.nonce
        && !answer.headers.iter().any(|(k, _)| *k == "dpop-nonce")
    {
        answer.headers.push(("dpop-nonce", nonce.clone()));
    }
    let Checked::Proof { jkt } = checked else {
        return answer;
    };
    if answer.status != 200 || !BINDING_GRANTS.contains(&grant_type) {
        return answer;
    }
    let Ok(mut body) = serde_json::from_slice::<Value>(&answer.body) else {
        return answer;
    };
    let Some(token) = body["access_token"].as_str() else {
        return answer;
    };
    let Ok(mut claims) = sh.keys.verify(token, &sh.issuer, true) else {
        return answer;
    };
    claims["cnf"] = json!({ "jkt": jkt });
    body["access_token"] = json!(sh.keys.sign(&claims));
    body["token_type"] = json!("DPoP");
    answer.body = serde_json::to_vec(&body).expect("JSON");
    answer
}

fn invalid_proof(what: &str, why: &str) -> Refusal {
    Refusal::oauth_400("invalid_dpop_proof", format!("{what}: {why}"))
}

/// The one `DPoP` header, if any.
fn single_proof(headers: &HeaderMap) -> Result<Option<String>, String> {
    let mut values = headers.get_all("dpop").iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("more than one DPoP header (RFC 9449 §4.3: exactly one)".to_owned());
    }
    first
        .to_str()
        .map(|v| Some(v.to_owned()))
        .map_err(|_| "the DPoP header is not visible ASCII".to_owned())
}

/// RFC 7638 SHA-256 thumbprint of a P-256 JWK.
pub(crate) fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// base64url(SHA-256(token)), the `ath` claim.
pub(crate) fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// Verifies a proof (RFC 9449 §4.3); returns the key's thumbprint and the claims.
fn verify_proof(
    proof: &str,
    htm: &str,
    htu: &str,
    expected_ath: Option<&str>,
    jtis: &mut Jtis,
) -> Result<(String, Value), String> {
    let head = proof
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .ok_or("the proof is not a JWS with a JSON header")?;
    if proof.split('.').count() != 3 {
        return Err("the proof is not a compact JWS (three parts)".to_owned());
    }
    if head["typ"] != "dpop+jwt" {
        return Err(format!("header typ is {}, must be \"dpop+jwt\"", head["typ"]));
    }
    if head["alg"] != "ES256" {
        return Err(format!(
            "header alg is {}, this tenant accepts ES256 (dpop_signing_alg_values_supported)",
            head["alg"]
        ));
    }
    let jwk = &head["jwk"];
    if jwk.get("d").is_some() {
        return Err(
            "the header jwk carries the private key (`d`): it must be the public key only".to_owned(),
        );
    }
    if jwk["kty"] != "EC" || jwk["crv"] != "P-256" {
        return Err(format!("header jwk must be an EC P-256 public key, got {jwk}"));
    }
    let (Some(x), Some(y)) = (jwk["x"].as_str(), jwk["y"].as_str()) else {
        return Err("header jwk lacks x or y".to_owned());
    };
    let key = DecodingKey::from_ec_components(x, y).map_err(|e| format!("header jwk is unusable: {e}"))?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(proof, &key, &validation)
        .map_err(|e| format!("the proof's signature does not verify with its own jwk: {e}"))?
        .claims;
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or("jti is missing")?;
    if claims["htm"] != htm {
        return Err(format!("htm is {}, the request is {htm}", claims["htm"]));
    }
    if claims["htu"] != htu {
        return Err(format!(
            "htu is {}, must be exactly {htu:?} (the URL without query and fragment)",
            claims["htu"]
        ));
    }
    let iat = claims["iat"].as_u64().ok_or("iat is missing or not a number")?;
    let now = now();
    if iat + IAT_WINDOW < now || iat > now + IAT_WINDOW {
        return Err(format!(
            "iat {iat} is not fresh (now {now}, window ±{IAT_WINDOW} s)"
        ));
    }
    match (expected_ath, claims.get("ath").and_then(Value::as_str)) {
        (Some(want), Some(got)) if want == got => {}
        (Some(_), Some(_)) => return Err("ath is not base64url(SHA-256(access token))".to_owned()),
        (Some(_), None) => return Err("ath is missing (required with an access token)".to_owned()),
        (None, Some(_)) => return Err("ath must not be sent to the token endpoint".to_owned()),
        (None, None) => {}
    }
    if !jtis.insert(jti) {
        return Err(format!(
            "jti {jti:?} was already used: a proof is single-use (replay)"
        ));
    }
    Ok((thumbprint(x, y), claims))
}

impl Auth0Emulator {
    /// Test knob: with `true`, token requests without a DPoP proof are refused (an application
    /// with sender constraining required).
    pub fn require_dpop(&self, required: bool) {
        self.shared.lock().dpop.required = required;
    }

    /// Test knob: with `true`, DPoP proofs must carry the server's current nonce (a fresh one
    /// is made if none exists); token answers carry `DPoP-Nonce`. `false` drops the nonce.
    pub fn require_dpop_nonce(&self, required: bool) {
        let mut st = self.shared.lock();
        st.dpop.nonce = required.then(|| st.dpop.nonce.clone().unwrap_or_else(|| random_token(16)));
    }

    /// Test knob: replaces the current DPoP nonce (proofs with the old one get the
    /// `use_dpop_nonce` challenge); returns the new one. Turns nonces on.
    pub fn rotate_dpop_nonce(&self) -> String {
        let nonce = random_token(16);
        self.shared.lock().dpop.nonce = Some(nonce.clone());
        nonce
    }

    /// Starts an emulated API on another loopback port (see the module docs).
    pub async fn start_api(&self) -> EmulatedApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("emulated API: bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("emulated API: local addr");
        let api = Arc::new(ApiShared {
            base: format!("http://{addr}"),
            tenant: self.shared.clone(),
            state: Mutex::new(ApiState::default()),
        });
        let app = axum::Router::new().fallback(serve_api).with_state(api.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        EmulatedApi { api, server }
    }
}

/// One request the emulated API received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query as sent.
    pub uri: String,
    /// The `Authorization` scheme (`DPoP`, `Bearer`, …).
    pub scheme: Option<String>,
    /// The access token presented.
    pub token: Option<String>,
    /// The claims of the DPoP proof, when one came.
    pub proof: Option<Value>,
    /// Every request header (lower-case name, value).
    pub headers: Vec<(String, String)>,
    /// Status answered.
    pub status: u16,
    /// Why it was refused.
    pub reason: Option<String>,
    /// Answered with the nonce challenge (not a defect).
    pub challenged: bool,
}

#[derive(Debug, Default)]
struct ApiState {
    jtis: Jtis,
    nonce: Option<String>,
    requests: Vec<ApiRequest>,
}

struct ApiShared {
    base: String,
    tenant: Arc<Shared>,
    state: Mutex<ApiState>,
}

/// A running emulated API; it stops when dropped.
pub struct EmulatedApi {
    api: Arc<ApiShared>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for EmulatedApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatedApi")
            .field("base", &self.api.base)
            .finish_non_exhaustive()
    }
}

impl Drop for EmulatedApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl EmulatedApi {
    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api.base)
    }

    /// Every request received, oldest first.
    pub fn requests(&self) -> Vec<ApiRequest> {
        self.lock().requests.clone()
    }

    /// The requests refused by a check (nonce challenges excluded).
    pub fn refused(&self) -> Vec<ApiRequest> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.status >= 400 && !r.challenged)
            .cloned()
            .collect()
    }

    /// Test knob: with `true`, DPoP proofs must carry the API's nonce (`401` with
    /// `WWW-Authenticate: DPoP error="use_dpop_nonce"` and `DPoP-Nonce` otherwise).
    pub fn require_nonce(&self, required: bool) {
        self.lock().nonce = required.then(|| random_token(16));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ApiState> {
        self.api
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn serve_api(AxumState(api): AxumState<Arc<ApiShared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let _ = to_bytes(body, 1 << 16).await;
    let mut rec = ApiRequest {
        method: parts.method.as_str().to_owned(),
        uri: parts.uri.to_string(),
        headers: super::header_pairs(&parts.headers),
        ..ApiRequest::default()
    };
    let htu = format!("{}{}", api.base, parts.uri.path());
    let mut st = api
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let result = check_api_request(
        &api,
        &mut st,
        &parts.headers,
        parts.method.as_str(),
        &htu,
        &mut rec,
    );
    let (status, body, www, nonce) = match result {
        Ok(body) => (200, body, None, None),
        Err(ApiRefusal::Nonce(n)) => {
            rec.challenged = true;
            rec.reason = Some("DPoP nonce challenge".to_owned());
            (
                401,
                json!({"error": "use_dpop_nonce", "error_description": "Resource server requires nonce in DPoP proof"}),
                Some("DPoP error=\"use_dpop_nonce\", error_description=\"Resource server requires nonce in DPoP proof\"".to_owned()),
                Some(n),
            )
        }
        Err(ApiRefusal::Invalid(scheme, why)) => {
            eprintln!("[emulated-api] refused {} {}: {why}", rec.method, rec.uri);
            rec.reason = Some(why.clone());
            (
                401,
                json!({"error": "invalid_token", "error_description": why}),
                Some(format!("{scheme} error=\"invalid_token\", algs=\"ES256\"")),
                None,
            )
        }
    };
    rec.status = status;
    st.requests.push(rec);
    drop(st);
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Some(w) = www.and_then(|w| HeaderValue::from_str(&w).ok()) {
        headers.insert("www-authenticate", w);
    }
    if let Some(n) = nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
        headers.insert("dpop-nonce", n);
    }
    response
}

enum ApiRefusal {
    Nonce(String),
    Invalid(&'static str, String),
}

fn check_api_request(
    api: &ApiShared,
    st: &mut ApiState,
    headers: &HeaderMap,
    method: &str,
    htu: &str,
    rec: &mut ApiRequest,
) -> Result<Value, ApiRefusal> {
    let bearer = |why: String| ApiRefusal::Invalid("Bearer", why);
    let dpop = |why: String| ApiRefusal::Invalid("DPoP", why);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| bearer("no Authorization header".to_owned()))?;
    let (scheme, token) = authorization
        .split_once(' ')
        .ok_or_else(|| bearer(format!("malformed Authorization header {authorization:?}")))?;
    rec.scheme = Some(scheme.to_owned());
    rec.token = Some(token.to_owned());
    let proof = single_proof(headers).map_err(dpop)?;
    let tenant = &api.tenant;
    let claims = tenant.keys.verify(token, &tenant.issuer, true).ok();
    let jkt = claims
        .as_ref()
        .and_then(|c| c["cnf"]["jkt"].as_str())
        .map(str::to_owned);
    match (scheme, jkt) {
        ("DPoP", Some(jkt)) => {
            let proof = proof.ok_or_else(|| dpop("a DPoP-bound token needs a DPoP proof".to_owned()))?;
            let (key, proof_claims) =
                verify_proof(&proof, method, htu, Some(&ath(token)), &mut st.jtis).map_err(dpop)?;
            rec.proof = Some(proof_claims.clone());
            if key != jkt {
                return Err(dpop(format!(
                    "the proof's key {key} is not the key the token is bound to (cnf.jkt {jkt})"
                )));
            }
            if let Some(nonce) = &st.nonce
                && proof_claims.get("nonce").and_then(Value::as_str) != Some(nonce)
            {
                return Err(ApiRefusal::Nonce(nonce.clone()));
            }
        }
        ("DPoP", None) => {
            return Err(dpop(
                "the DPoP scheme is for DPoP-bound tokens (with cnf.jkt); this token is a bearer token"
                    .to_owned(),
            ));
        }
        ("Bearer", Some(_)) => {
            return Err(dpop(
                "the token is DPoP-bound (cnf.jkt): present it with the DPoP scheme and a proof (RFC 9449 §7.1)"
                    .to_owned(),
            ));
        }
        ("Bearer", None) => {
            if proof.is_some() {
                return Err(bearer("a DPoP proof came with a Bearer token".to_owned()));
            }
        }
        (other, _) => return Err(bearer(format!("unknown Authorization scheme {other:?}"))),
    }
    Ok(json!({
        "ok": true,
        "scheme": scheme,
        "sub": claims.as_ref().and_then(|c| c["sub"].as_str()),
    }))
}
