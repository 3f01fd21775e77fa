//! The My Account API's Connected Accounts endpoints (`/me/v1/connected-accounts/…`) and the
//! browser-facing `connect_uri` (`GET /connect?ticket=…`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use serde_json::{Map, Value, json};

use super::Shared;
use super::state::{ConnectSession, State};
use super::wire::{
    Answer, Refusal, Req, check_challenge, check_verifier, field_error, now, percent_decode, random_token,
    rfc3339, s256, with_params,
};

/// Path prefix of the Connected Accounts endpoints.
const PREFIX: &str = "/me/v1/connected-accounts";
/// Lifetime of a connect flow (`expires_in` of `POST …/connect`).
const CONNECT_TTL: u64 = 300;
/// How long a connected account's upstream grant is said to last (`expires_at`).
const ACCOUNT_TTL: u64 = 90 * 86_400;
/// Page size when `take` is absent.
const DEFAULT_TAKE: usize = 10;
/// Largest `take`.
const MAX_TAKE: usize = 100;

/// `authorization_params` keys the client may not set (the emulator/Auth0 own them).
const RESERVED_AUTHORIZATION_PARAMS: [&str; 8] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "scope",
];

/// Dispatches `/me/…`.
pub(crate) fn handle(sh: &Shared, st: &mut State, req: &Req<'_>) -> Result<Answer, Refusal> {
    if let Some((status, problem)) = st.fail_next_my_account.take() {
        let mut answer = Answer::json(status, &problem);
        answer.content_type = Some("application/problem+json");
        answer.injected = true;
        answer.error = problem["title"].as_str().map(str::to_owned);
        answer.reason = Some(format!("injected by fail_next_my_account: {problem}"));
        return Ok(answer);
    }
    let not_found = || {
        Refusal::problem(
            404,
            "Not Found",
            format!("{} {}: no such My Account API endpoint", req.method, req.path),
        )
    };
    let Some(rest) = req.path.strip_prefix(PREFIX) else {
        return Err(not_found());
    };
    match (req.method, rest) {
        ("POST", "/connect") => connect(sh, st, req),
        ("POST", "/complete") => complete(sh, st, req),
        ("GET", "/accounts") => list_accounts(sh, st, req),
        ("GET", "/connections") => list_connections(sh, req),
        ("DELETE", id) if id.starts_with("/accounts/") => {
            delete_account(sh, st, req, &id["/accounts/".len()..])
        }
        (method, "/connect" | "/complete" | "/accounts" | "/connections") => Err(Refusal::problem(
            405,
            "Method Not Allowed",
            format!("{method} is not allowed on {}", req.path),
        )),
        (method, id) if id.starts_with("/accounts/") => Err(Refusal::problem(
            405,
            "Method Not Allowed",
            format!("{method} is not allowed on {} (only DELETE)", req.path),
        )),
        _ => Err(not_found()),
    }
}

/// Checks `Authorization: Bearer <JWT>`: our signature, `exp`, `iss`, `aud` = `{issuer}me/`
/// (401 otherwise) and `scope` containing `needed` (403 otherwise). Returns the token's `sub`.
fn bearer(sh: &Shared, req: &Req<'_>, needed: &str) -> Result<String, Refusal> {
    let Some((scheme, token)) = req.authorization() else {
        return Err(Refusal::problem_unauthorized(format!(
            "{} {}: missing Authorization: Bearer <access token for {}>",
            req.method,
            req.path,
            sh.my_account_audience()
        )));
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::problem_unauthorized(format!(
            "Authorization scheme {scheme:?} is not supported here (Bearer expected; DPoP is not required)"
        )));
    }
    let claims = sh
        .keys
        .verify(token.trim(), &sh.issuer, true)
        .map_err(|e| Refusal::problem_unauthorized(format!("invalid access token: {e}")))?;
    let audience = sh.my_account_audience();
    if !super::keys::aud_contains(&claims, &audience) {
        return Err(Refusal::problem_unauthorized(format!(
            "the access token's audience {} is not the My Account API {audience:?}",
            claims["aud"]
        )));
    }
    let scope = claims["scope"].as_str().unwrap_or("");
    if !scope.split(' ').any(|s| s == needed) {
        return Err(Refusal::problem(
            403,
            "Forbidden",
            format!(
                "insufficient scope: {} {} needs `{needed}`, the token has {scope:?}",
                req.method, req.path
            ),
        ));
    }
    claims["sub"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Refusal::problem_unauthorized("the access token has no sub".to_owned()))
}

/// The body as a JSON object (`Content-Type: application/json`, no query string).
fn json_object(req: &Req<'_>) -> Result<Map<String, Value>, Refusal> {
    let what = format!("{} {}", req.method, req.path);
    match req.media_type().as_deref() {
        Some("application/json") => {}
        other => {
            return Err(Refusal::problem(
                400,
                "Bad Request",
                format!("{what}: Content-Type must be application/json, got {other:?}"),
            ));
        }
    }
    if !req.query.is_empty() {
        return Err(Refusal::problem(
            400,
            "Bad Request",
            format!("{what}: unexpected query string (the payload is the JSON body)"),
        ));
    }
    match serde_json::from_slice::<Value>(req.body) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(other) => Err(Refusal::problem(
            400,
            "Bad Request",
            format!("{what}: the body must be a JSON object, got {other}"),
        )),
        Err(e) => Err(Refusal::problem(
            400,
            "Bad Request",
            format!("{what}: the body is not JSON: {e}"),
        )),
    }
}

/// Validation errors for unknown fields and `null` values.
fn check_field_names(obj: &Map<String, Value>, allowed: &[&str], errors: &mut Vec<Value>) {
    for (name, value) in obj {
        if !allowed.contains(&name.as_str()) {
            errors.push(field_error(
                name,
                format!("unknown field `{name}` (allowed: {})", allowed.join(", ")),
            ));
        } else if value.is_null() {
            errors.push(field_error(
                name,
                format!("`{name}` must not be null (omit absent fields)"),
            ));
        }
    }
}

/// A required non-empty string field (errors recorded; `None` when unusable).
fn string_field<'a>(obj: &'a Map<String, Value>, name: &str, errors: &mut Vec<Value>) -> Option<&'a str> {
    match obj.get(name) {
        None => {
            errors.push(field_error(name, format!("`{name}` is required")));
            None
        }
        Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => {
            errors.push(field_error(name, format!("`{name}` must not be empty")));
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            errors.push(field_error(
                name,
                format!("`{name}` must be a string, got {other}"),
            ));
            None
        }
    }
}

/// `POST …/connect`.
fn connect(sh: &Shared, st: &mut State, req: &Req<'_>) -> Result<Answer, Refusal> {
    let sub = bearer(sh, req, "create:me:connected_accounts")?;
    let obj = json_object(req)?;
    let mut errors = Vec::new();
    check_field_names(
        &obj,
        &[
            "connection",
            "redirect_uri",
            "state",
            "code_challenge",
            "code_challenge_method",
            "scopes",
            "authorization_params",
        ],
        &mut errors,
    );
    let connection = string_field(&obj, "connection", &mut errors);
    let known = connection.and_then(|c| {
        let known = sh.connection(c);
        if known.is_none() {
            errors.push(field_error(
                "connection",
                format!("connection {c:?} does not exist or cannot be connected"),
            ));
        }
        known
    });
    let redirect_uri = string_field(&obj, "redirect_uri", &mut errors);
    if let Some(uri) = redirect_uri
        && !sh.redirect_uri_allowed(uri)
    {
        errors.push(field_error(
            "redirect_uri",
            format!(
                "redirect_uri {uri:?} is not an allowed callback URL (exact match against: {})",
                sh.redirect_uris()
            ),
        ));
    }
    let state = string_field(&obj, "state", &mut errors);
    let challenge = string_field(&obj, "code_challenge", &mut errors);
    if let Some(challenge) = challenge
        && let Err(e) = check_challenge(challenge)
    {
        errors.push(field_error("code_challenge", e));
    }
    if let Some(method) = string_field(&obj, "code_challenge_method", &mut errors)
        && method != "S256"
    {
        errors.push(field_error(
            "code_challenge_method",
            format!("code_challenge_method must be \"S256\", got {method:?}"),
        ));
    }
    let scopes = match obj.get("scopes") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut scopes: Vec<String> = Vec::new();
            if items.is_empty() {
                errors.push(field_error(
                    "scopes",
                    "`scopes` must not be empty (omit it to use the connection's scopes)".to_owned(),
                ));
            }
            for item in items {
                match item.as_str() {
                    Some(s) if !s.is_empty() && !scopes.iter().any(|x| x == s) => scopes.push(s.to_owned()),
                    Some(s) if !s.is_empty() => {
                        errors.push(field_error("scopes", format!("scope {s:?} is repeated")));
                    }
                    _ => errors.push(field_error(
                        "scopes",
                        format!("`scopes` must hold non-empty strings, got {item}"),
                    )),
                }
            }
            if let Some(conn) = known {
                for s in &scopes {
                    if !conn.scopes.contains(s) {
                        errors.push(field_error(
                            "scopes",
                            format!(
                                "scope {s:?} is not configured for connection {:?} (allowed: {})",
                                conn.name,
                                conn.scopes.join(" ")
                            ),
                        ));
                    }
                }
            }
            Some(scopes)
        }
        Some(other) => {
            errors.push(field_error(
                "scopes",
                format!("`scopes` must be an array of strings, got {other}"),
            ));
            None
        }
    };
    match obj.get("authorization_params") {
        None | Some(Value::Null) => {}
        Some(Value::Object(params)) => {
            if params.is_empty() {
                errors.push(field_error(
                    "authorization_params",
                    "`authorization_params` must not be empty (omit it)".to_owned(),
                ));
            }
            for (k, v) in params {
                if RESERVED_AUTHORIZATION_PARAMS.contains(&k.as_str()) {
                    errors.push(field_error(
                        "authorization_params",
                        format!("authorization_params must not set `{k}`"),
                    ));
                }
                if v.as_str().is_none_or(str::is_empty) {
                    errors.push(field_error(
                        "authorization_params",
                        format!("authorization_params.{k} must be a non-empty string, got {v}"),
                    ));
                }
            }
        }
        Some(other) => errors.push(field_error(
            "authorization_params",
            format!("`authorization_params` must be an object of strings, got {other}"),
        )),
    }
    if !errors.is_empty() {
        return Err(Refusal::validation(errors));
    }
    let (Some(conn), Some(redirect_uri), Some(state), Some(challenge)) =
        (known, redirect_uri, state, challenge)
    else {
        return Err(Refusal::validation(vec![field_error(
            "body",
            "incomplete request".to_owned(),
        )]));
    };
    let auth_session = random_token(24);
    let ticket = random_token(24);
    st.connect_sessions.insert(
        auth_session.clone(),
        ConnectSession {
            sub,
            connection: conn.name.clone(),
            redirect_uri: redirect_uri.to_owned(),
            state: state.to_owned(),
            code_challenge: challenge.to_owned(),
            scopes: scopes.unwrap_or_else(|| conn.scopes.clone()),
            ticket: ticket.clone(),
            ticket_used: false,
            connect_code: None,
            expires_at: now() + CONNECT_TTL,
        },
    );
    Ok(Answer::json(
        201,
        &json!({
            "auth_session": auth_session,
            "connect_uri": format!("{}connect", sh.issuer),
            "connect_params": { "ticket": ticket },
            "expires_in": CONNECT_TTL,
        }),
    ))
}

/// `GET /connect?ticket=…` — the browser lands here; auto-consent and redirect back with a
/// `connect_code`.
pub(crate) fn connect_redirect(_sh: &Shared, st: &mut State, req: &Req<'_>) -> Result<Answer, Refusal> {
    const WHAT: &str = "/connect";
    let params = req.query_params(WHAT)?;
    params.only(&["ticket"], WHAT)?;
    let ticket = params.require("ticket", WHAT)?;
    let Some(session) = st.connect_sessions.values_mut().find(|s| s.ticket == ticket) else {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: unknown ticket (not issued by POST {PREFIX}/connect)"
        )));
    };
    if session.ticket_used {
        return Err(Refusal::invalid_request(format!("{WHAT}: ticket already used")));
    }
    if now() > session.expires_at {
        return Err(Refusal::invalid_request(format!("{WHAT}: ticket expired")));
    }
    let code = random_token(24);
    session.ticket_used = true;
    session.connect_code = Some(code.clone());
    Ok(Answer::redirect(&with_params(
        &session.redirect_uri,
        &[("connect_code", &code), ("state", &session.state)],
    )))
}

/// `POST …/complete`.
fn complete(sh: &Shared, st: &mut State, req: &Req<'_>) -> Result<Answer, Refusal> {
    let sub = bearer(sh, req, "create:me:connected_accounts")?;
    let obj = json_object(req)?;
    let mut errors = Vec::new();
    let fields = ["auth_session", "connect_code", "redirect_uri", "code_verifier"];
    check_field_names(&obj, &fields, &mut errors);
    let auth_session = string_field(&obj, "auth_session", &mut errors);
    let connect_code = string_field(&obj, "connect_code", &mut errors);
    let redirect_uri = string_field(&obj, "redirect_uri", &mut errors);
    let verifier = string_field(&obj, "code_verifier", &mut errors);
    if let Some(v) = verifier
        && let Err(e) = check_verifier(v)
    {
        errors.push(field_error("code_verifier", e));
    }
    if !errors.is_empty() {
        return Err(Refusal::validation(errors));
    }
    let (Some(auth_session), Some(connect_code), Some(redirect_uri), Some(verifier)) =
        (auth_session, connect_code, redirect_uri, verifier)
    else {
        return Err(Refusal::validation(vec![field_error(
            "body",
            "incomplete request".to_owned(),
        )]));
    };
    let bad = |detail: String| Refusal::problem(400, "Bad Request", detail);
    let Some(session) = st.connect_sessions.get(auth_session) else {
        return Err(bad(
            "unknown auth_session (not issued by POST …/connect, or already completed)".to_owned(),
        ));
    };
    if now() > session.expires_at {
        return Err(bad("auth_session expired".to_owned()));
    }
    if session.sub != sub {
        return Err(bad(format!(
            "auth_session belongs to {:?}, the access token to {sub:?}",
            session.sub
        )));
    }
    match &session.connect_code {
        None => {
            return Err(bad(
                "no connect_code was issued for this auth_session yet (the connect_uri was not visited)"
                    .to_owned(),
            ));
        }
        Some(code) if code != connect_code => {
            return Err(bad("connect_code does not match this auth_session".to_owned()));
        }
        Some(_) => {}
    }
    if session.redirect_uri != redirect_uri {
        return Err(bad(format!(
            "redirect_uri {redirect_uri:?} differs from the one sent to …/connect {:?}",
            session.redirect_uri
        )));
    }
    if s256(verifier) != session.code_challenge {
        return Err(bad(
            "code_verifier does not match the code_challenge (S256) sent to …/connect".to_owned(),
        ));
    }
    let session = st
        .connect_sessions
        .remove(auth_session)
        .expect("session checked above");
    let created = now();
    let id: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(20)
        .map(char::from)
        .collect();
    let account = json!({
        "id": format!("cac_{id}"),
        "connection": session.connection,
        "access_type": "offline",
        "scopes": session.scopes,
        "created_at": rfc3339(created),
        "expires_at": rfc3339(created + ACCOUNT_TTL),
    });
    st.accounts.entry(sub).or_default().push(account.clone());
    Ok(Answer::json(201, &account))
}

/// Page of `items` per `from`/`take`, with the `next` cursor.
fn paginate(
    items: &[Value],
    kind: &str,
    from: Option<&str>,
    take: Option<&str>,
) -> Result<(Vec<Value>, Option<String>), Refusal> {
    let take = match take {
        None => DEFAULT_TAKE,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_TAKE).contains(&n) => n,
            _ => {
                return Err(Refusal::problem(
                    400,
                    "Bad Request",
                    format!("take must be an integer from 1 to {MAX_TAKE}, got {raw:?}"),
                ));
            }
        },
    };
    let offset = match from {
        None => 0,
        Some(cursor) => decode_cursor(cursor, kind)
            .filter(|o| *o <= items.len())
            .ok_or_else(|| {
                Refusal::problem(
                    400,
                    "Bad Request",
                    format!("from {cursor:?} is not a cursor this API returned as `next`"),
                )
            })?,
    };
    let end = (offset + take).min(items.len());
    let next = (end < items.len()).then(|| URL_SAFE_NO_PAD.encode(format!("{kind}:{end}")));
    Ok((items[offset..end].to_vec(), next))
}

fn decode_cursor(cursor: &str, kind: &str) -> Option<usize> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    raw.strip_prefix(kind)?.strip_prefix(':')?.parse().ok()
}

/// `GET …/accounts?connection=&from=&take=`.
fn list_accounts(sh: &Shared, st: &State, req: &Req<'_>) -> Result<Answer, Refusal> {
    let sub = bearer(sh, req, "read:me:connected_accounts")?;
    let params = query(req, &["connection", "from", "take"])?;
    let accounts: Vec<Value> = st
        .accounts
        .get(&sub)
        .map(|all| {
            all.iter()
                .filter(|a| params.get("connection").is_none_or(|c| a["connection"] == c))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let (page, next) = paginate(&accounts, "accounts", params.get("from"), params.get("take"))?;
    let mut body = json!({ "accounts": page });
    if let Some(next) = next {
        body["next"] = json!(next);
    }
    Ok(Answer::json(200, &body))
}

/// `GET …/connections?from=&take=`.
fn list_connections(sh: &Shared, req: &Req<'_>) -> Result<Answer, Refusal> {
    bearer(sh, req, "read:me:connected_accounts")?;
    let params = query(req, &["from", "take"])?;
    let all: Vec<Value> = sh
        .opts
        .connections
        .iter()
        .map(|c| json!({"name": c.name, "strategy": c.strategy, "scopes": c.scopes}))
        .collect();
    let (page, next) = paginate(&all, "connections", params.get("from"), params.get("take"))?;
    let mut body = json!({ "connections": page });
    if let Some(next) = next {
        body["next"] = json!(next);
    }
    Ok(Answer::json(200, &body))
}

/// Strict query parameters as problem+json refusals.
fn query(req: &Req<'_>, allowed: &[&str]) -> Result<super::wire::Params, Refusal> {
    let what = format!("{} {}", req.method, req.path);
    let as_problem = |r: Refusal| Refusal::problem(400, "Bad Request", r.reason());
    let params = req.query_params(&what).map_err(as_problem)?;
    params.only(allowed, &what).map_err(as_problem)?;
    Ok(params)
}

/// `DELETE …/accounts/{id}` (`raw_id` still percent-encoded).
fn delete_account(sh: &Shared, st: &mut State, req: &Req<'_>, raw_id: &str) -> Result<Answer, Refusal> {
    let sub = bearer(sh, req, "delete:me:connected_accounts")?;
    query(req, &[])?;
    if raw_id.is_empty() || raw_id.contains('/') {
        return Err(Refusal::problem(
            404,
            "Not Found",
            format!("{}: expected …/accounts/{{id}} with one path segment", req.path),
        ));
    }
    let Some(id) = percent_decode(raw_id) else {
        return Err(Refusal::problem(
            400,
            "Bad Request",
            format!("account id segment {raw_id:?} is not valid percent-encoding"),
        ));
    };
    let accounts = st.accounts.entry(sub.clone()).or_default();
    let before = accounts.len();
    accounts.retain(|a| a["id"] != id.as_str());
    if accounts.len() == before {
        return Err(Refusal::problem(
            404,
            "Not Found",
            format!("connected account {id:?} not found for {sub}"),
        ));
    }
    Ok(Answer::empty(204))
}
