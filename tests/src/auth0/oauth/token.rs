//! `POST /oauth/token` and its grants (authorization code, refresh token with MRRT, Token
//! Vault; the advanced grants are dispatched to their modules), and `POST /oauth/revoke`.

use serde_json::json;

use super::client_auth::authenticate_client;
use super::issue::{Issue, OIDC_SCOPES, issue_tokens, new_refresh_token};
use crate::auth0::state::{Mode, RefreshGrant, State};
use crate::auth0::wire::{
    Answer, Params, Refusal, Req, check_verifier, now, parse_scope, random_token, s256,
};
use crate::auth0::{
    FEDERATED_TOKEN_TYPE, MY_ACCOUNT_SCOPES, REFRESH_TOKEN_TYPE, RecordedRequest, Shared,
    TOKEN_VAULT_GRANT_TYPE,
};

/// `POST /oauth/token`.
pub(crate) fn token(
    sh: &Shared,
    st: &mut State,
    req: &Req<'_>,
    rec: &mut RecordedRequest,
) -> Result<Answer, Refusal> {
    const WHAT: &str = "/oauth/token";
    let form = req.form_params(WHAT)?;
    let client_id = authenticate_client(sh, req, &form, WHAT)?;
    rec.client_id = Some(client_id.clone());
    let grant_type = form.require("grant_type", WHAT)?;
    let dpop = match crate::auth0::dpop::check_token_request(sh, st, req)? {
        crate::auth0::dpop::Checked::Challenge(answer) => return Ok(answer),
        checked => checked,
    };
    let answer = match grant_type {
        "authorization_code" => code_grant(sh, st, &form, &client_id),
        "refresh_token" => refresh_grant(sh, st, &form, &client_id),
        TOKEN_VAULT_GRANT_TYPE => token_vault(sh, st, &form, &client_id),
        crate::auth0::token_exchange::TOKEN_EXCHANGE_GRANT_TYPE => {
            crate::auth0::token_exchange::grant(sh, st, &form, &client_id)
        }
        crate::auth0::ciba::CIBA_GRANT_TYPE => crate::auth0::ciba::grant(sh, st, &form, &client_id),
        other => Err(Refusal::oauth_400(
            "unsupported_grant_type",
            format!(
                "{WHAT}: grant_type {other:?} is not supported (authorization_code, refresh_token, \
                 {TOKEN_VAULT_GRANT_TYPE})"
            ),
        )),
    }?;
    Ok(crate::auth0::dpop::finish(sh, st, answer, &dpop, grant_type))
}

fn code_grant(sh: &Shared, st: &mut State, form: &Params, client_id: &str) -> Result<Answer, Refusal> {
    const WHAT: &str = "/oauth/token (authorization_code)";
    form.only(
        &[
            "grant_type",
            "code",
            "redirect_uri",
            "code_verifier",
            "client_id",
            "client_secret",
        ],
        WHAT,
    )?;
    let code = form.require("code", WHAT)?;
    let redirect_uri = form.require("redirect_uri", WHAT)?;
    let verifier = form.get("code_verifier").ok_or_else(|| {
        Refusal::invalid_request(format!(
            "{WHAT}: code_verifier is required (the code was issued for a PKCE code_challenge)"
        ))
    })?;
    check_verifier(verifier).map_err(|e| Refusal::invalid_request(format!("{WHAT}: {e}")))?;
    let Some(grant) = st.codes.get_mut(code) else {
        return Err(Refusal::invalid_grant(format!(
            "{WHAT}: unknown authorization code"
        )));
    };
    if grant.used {
        return Err(Refusal::invalid_grant(format!(
            "{WHAT}: authorization code already used (codes are single-use)"
        )));
    }
    grant.used = true;
    let grant = grant.clone();
    if now() > grant.expires_at {
        return Err(Refusal::invalid_grant(format!(
            "{WHAT}: authorization code expired"
        )));
    }
    if grant.request.client_id != client_id {
        return Err(Refusal::invalid_grant(format!(
            "{WHAT}: the code was issued to client {:?}, not {client_id:?}",
            grant.request.client_id
        )));
    }
    if grant.request.redirect_uri != redirect_uri {
        return Err(Refusal::invalid_grant(format!(
            "{WHAT}: redirect_uri {redirect_uri:?} differs from the one sent at /authorize {:?}",
            grant.request.redirect_uri
        )));
    }
    if s256(verifier) != grant.request.code_challenge {
        return Err(Refusal::invalid_grant(format!(
            "{WHAT}: code_verifier does not match the code_challenge (S256) sent at /authorize"
        )));
    }

    match &grant.request.mode {
        Mode::Link { connection, scope } => {
            let ids = st.linked.entry(grant.sub.clone()).or_default();
            ids.retain(|(c, _)| c != connection);
            ids.push((connection.clone(), scope.clone().unwrap_or_default()));
        }
        Mode::Unlink { connection } => {
            if let Some(ids) = st.linked.get_mut(&grant.sub) {
                ids.retain(|(c, _)| c != connection);
            }
        }
        Mode::Login => {}
    }

    let request = &grant.request;
    let mut body = issue_tokens(
        sh,
        st,
        &Issue {
            client_id,
            sub: &grant.sub,
            sid: &grant.sid,
            scope: &request.scope,
            audience: request.audience.as_deref(),
            organization: request.organization.as_deref(),
            nonce: Some(&request.nonce),
            auth_time: Some(grant.auth_time),
        },
    );
    if request.scope.iter().any(|s| s == "offline_access") {
        let rt = new_refresh_token(
            st,
            RefreshGrant {
                client_id: client_id.to_owned(),
                sub: grant.sub.clone(),
                sid: grant.sid.clone(),
                scope: request.scope.clone(),
                audience: request.audience.clone(),
                organization: request.organization.clone(),
                revoked: None,
            },
        );
        body["refresh_token"] = json!(rt);
    }
    if let Some(details) = &request.authorization_details {
        body["authorization_details"] = details.clone();
    }
    crate::auth0::advanced::after_code_grant(sh, st, &grant, &mut body);
    Ok(Answer::token_json(200, &body))
}

fn refresh_grant(sh: &Shared, st: &mut State, form: &Params, client_id: &str) -> Result<Answer, Refusal> {
    const WHAT: &str = "/oauth/token (refresh_token)";
    form.only(
        &[
            "grant_type",
            "refresh_token",
            "audience",
            "scope",
            "client_id",
            "client_secret",
        ],
        WHAT,
    )?;
    let token = form.require("refresh_token", WHAT)?;
    let grant = live_refresh_token(st, token, client_id, WHAT)?;
    let requested_scope = form.get("scope").map(|s| parse_scope(s, WHAT)).transpose()?;
    let original_aud = grant.audience.clone().unwrap_or_else(|| sh.userinfo_audience());
    let audience = form.get("audience").unwrap_or(&original_aud).to_owned();
    let my_account = sh.my_account_audience();

    let scope: Vec<String> = if audience == original_aud {
        let scope = requested_scope.unwrap_or_else(|| grant.scope.clone());
        if let Some(extra) = scope.iter().find(|s| !grant.scope.contains(s)) {
            return Err(Refusal::invalid_scope(format!(
                "{WHAT}: scope `{extra}` was not granted to this refresh token (granted: {})",
                grant.scope.join(" ")
            )));
        }
        scope
    } else if audience == my_account {
        let scope =
            requested_scope.unwrap_or_else(|| MY_ACCOUNT_SCOPES.iter().map(|s| (*s).to_owned()).collect());
        for s in &scope {
            let oidc_granted = OIDC_SCOPES.contains(&s.as_str()) && grant.scope.contains(s);
            if !oidc_granted && !MY_ACCOUNT_SCOPES.contains(&s.as_str()) {
                return Err(Refusal::invalid_scope(format!(
                    "{WHAT}: scope `{s}` is not allowed for the My Account API {my_account} by the MRRT policy \
                     (allowed: {})",
                    MY_ACCOUNT_SCOPES.join(" ")
                )));
            }
        }
        scope
    } else {
        requested_scope.unwrap_or_else(|| grant.scope.clone())
    };
    if let Some(answer) = crate::auth0::advanced::mfa_required(st, token, &grant.sub, &audience) {
        return Ok(answer);
    }

    let mut body = issue_tokens(
        sh,
        st,
        &Issue {
            client_id,
            sub: &grant.sub,
            sid: &grant.sid,
            scope: &scope,
            audience: Some(&audience),
            organization: grant.organization.as_deref(),
            nonce: None,
            auth_time: None,
        },
    );
    if sh.opts.rotate_refresh_tokens {
        if let Some(old) = st.refresh_tokens.get_mut(token) {
            old.revoked = Some("rotated: a newer refresh token replaced it");
        }
        let mut next = grant.clone();
        next.revoked = None;
        let rotated = new_refresh_token(st, next);
        crate::auth0::advanced::on_rotation(st, token, &rotated);
        body["refresh_token"] = json!(rotated);
    }
    Ok(Answer::token_json(200, &body))
}

fn live_refresh_token(st: &State, token: &str, client_id: &str, what: &str) -> Result<RefreshGrant, Refusal> {
    let Some(grant) = st.refresh_tokens.get(token) else {
        return Err(Refusal::invalid_grant(format!(
            "{what}: Unknown or invalid refresh token."
        )));
    };
    if let Some(why) = grant.revoked {
        return Err(Refusal::invalid_grant(format!(
            "{what}: Unknown or invalid refresh token ({why})."
        )));
    }
    if grant.client_id != client_id {
        return Err(Refusal::invalid_grant(format!(
            "{what}: the refresh token was issued to client {:?}, not {client_id:?}",
            grant.client_id
        )));
    }
    Ok(grant.clone())
}

fn token_vault(sh: &Shared, st: &mut State, form: &Params, client_id: &str) -> Result<Answer, Refusal> {
    const WHAT: &str = "/oauth/token (Token Vault)";
    for name in ["scope", "audience"] {
        if form.has(name) {
            return Err(Refusal::invalid_request(format!(
                "{WHAT}: `{name}` must not be sent with the federated connection access token exchange"
            )));
        }
    }
    form.only(
        &[
            "grant_type",
            "subject_token_type",
            "subject_token",
            "requested_token_type",
            "connection",
            "login_hint",
            "client_id",
            "client_secret",
        ],
        WHAT,
    )?;
    let subject_token_type = form.require("subject_token_type", WHAT)?;
    if subject_token_type != REFRESH_TOKEN_TYPE {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: subject_token_type must be {REFRESH_TOKEN_TYPE}, got {subject_token_type:?}"
        )));
    }
    let requested_token_type = form.require("requested_token_type", WHAT)?;
    if requested_token_type != FEDERATED_TOKEN_TYPE {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: requested_token_type must be {FEDERATED_TOKEN_TYPE}, got {requested_token_type:?}"
        )));
    }
    let subject_token = form.require("subject_token", WHAT)?;
    let connection = form.require("connection", WHAT)?;
    let grant = live_refresh_token(st, subject_token, client_id, WHAT)?;
    if sh.connection(connection).is_none() {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: connection {connection:?} is not a connection of this tenant"
        )));
    }
    let account_scopes: Option<Vec<String>> = st
        .accounts
        .get(&grant.sub)
        .and_then(|accounts| accounts.iter().rev().find(|a| a["connection"] == connection))
        .map(|a| {
            a["scopes"]
                .as_array()
                .map(|s| s.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        })
        .or_else(|| {
            st.linked.get(&grant.sub).and_then(|ids| {
                ids.iter().find(|(c, _)| c == connection).map(|(_, scope)| {
                    scope
                        .split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
            })
        });
    let Some(scopes) = account_scopes else {
        return Err(Refusal::oauth_400(
            "federated_connection_refresh_token_not_found",
            format!(
                "{WHAT}: Federated connection Refresh Token not found: {} has no connected account (nor linked \
                 identity) for {connection:?}",
                grant.sub
            ),
        ));
    };
    let n = st.next_seq();
    Ok(Answer::token_json(
        200,
        &json!({
            "access_token": format!("emu-federated-{connection}-{n}-{}", random_token(16)),
            "expires_in": sh.opts.access_token_ttl,
            "scope": scopes.join(" "),
            "issued_token_type": FEDERATED_TOKEN_TYPE,
            "token_type": "Bearer",
        }),
    ))
}

/// `POST /oauth/revoke` (RFC 7009): revokes a refresh token; unknown tokens are fine.
pub(crate) fn revoke(
    sh: &Shared,
    st: &mut State,
    req: &Req<'_>,
    rec: &mut RecordedRequest,
) -> Result<Answer, Refusal> {
    const WHAT: &str = "/oauth/revoke";
    let form = req.form_params(WHAT)?;
    let client_id = authenticate_client(sh, req, &form, WHAT)?;
    rec.client_id = Some(client_id.clone());
    form.only(&["token", "token_type_hint", "client_id", "client_secret"], WHAT)?;
    let token = form.require("token", WHAT)?;
    if let Some(grant) = st.refresh_tokens.get_mut(token)
        && grant.client_id == client_id
    {
        grant.revoked = Some("revoked at /oauth/revoke");
    }
    Ok(Answer::empty(200))
}
