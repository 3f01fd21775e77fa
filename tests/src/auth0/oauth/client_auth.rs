//! Client authentication at the token, PAR and revocation endpoints, exactly as each client
//! is registered (`client_secret_basic`, `client_secret_post`, `private_key_jwt`, none).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::auth0::Shared;
use crate::auth0::wire::{Params, Refusal, Req, form_decode};

/// Authenticates the client of a token/PAR/revocation request exactly as it is registered.
pub(crate) fn authenticate_client(
    sh: &Shared,
    req: &Req<'_>,
    form: &Params,
    what: &str,
) -> Result<String, Refusal> {
    if form.has("client_assertion") || form.has("client_assertion_type") {
        return Err(Refusal::invalid_client(format!(
            "{what}: private_key_jwt is not configured for any emulated client"
        )));
    }
    let form_id = form.get("client_id");
    let form_secret = form.get("client_secret");
    match req.authorization() {
        Some((scheme, credentials)) if scheme.eq_ignore_ascii_case("basic") => {
            if form_secret.is_some() {
                return Err(Refusal::invalid_request(format!(
                    "{what}: the client authenticated with both HTTP Basic and client_secret in the form \
                     (RFC 6749 §2.3: use exactly one method)"
                )));
            }
            let (id, secret) = decode_basic(credentials).ok_or_else(|| {
                Refusal::invalid_client(format!(
                    "{what}: malformed Basic credentials (expected base64(urlencode(id):urlencode(secret)))"
                ))
            })?;
            if let Some(form_id) = form_id
                && form_id != id
            {
                return Err(Refusal::invalid_request(format!(
                    "{what}: client_id {form_id:?} in the form differs from {id:?} in the Basic credentials"
                )));
            }
            let client = known_client(sh, &id, what)?;
            if client.auth_method != "client_secret_basic" {
                return Err(Refusal::invalid_client(format!(
                    "{what}: client {id:?} is registered for {} but authenticated with client_secret_basic",
                    client.auth_method
                )));
            }
            if client.client_secret.as_deref() != Some(secret.as_str()) {
                return Err(Refusal::invalid_client(format!(
                    "{what}: wrong client secret for {id:?} (Basic credentials are \
                     base64(form-urlencoded id \":\" form-urlencoded secret), RFC 6749 §2.3.1)"
                )));
            }
            Ok(id)
        }
        Some((scheme, _)) => Err(Refusal::invalid_client(format!(
            "{what}: Authorization scheme {scheme:?} is not a client authentication method here"
        ))),
        None => {
            let Some(id) = form_id else {
                return Err(Refusal::invalid_client(format!(
                    "{what}: no client authentication (no Basic header, no client_id in the form)"
                )));
            };
            let client = known_client(sh, id, what)?;
            match (form_secret, client.auth_method) {
                (Some(secret), "client_secret_post") => {
                    if client.client_secret.as_deref() == Some(secret) {
                        Ok(id.to_owned())
                    } else {
                        Err(Refusal::invalid_client(format!(
                            "{what}: wrong client_secret for {id:?}"
                        )))
                    }
                }
                (Some(_), method) => Err(Refusal::invalid_client(format!(
                    "{what}: client {id:?} is registered for {method} but sent client_secret in the form \
                     (client_secret_post)"
                ))),
                (None, "none") => Ok(id.to_owned()),
                (None, method) => Err(Refusal::invalid_client(format!(
                    "{what}: client {id:?} is registered for {method} but sent no credentials"
                ))),
            }
        }
    }
}

fn known_client<'a>(
    sh: &'a Shared,
    id: &str,
    what: &str,
) -> Result<&'a crate::auth0::EmulatedClient, Refusal> {
    sh.client(id)
        .ok_or_else(|| Refusal::invalid_client(format!("{what}: unknown client {id:?}")))
}

/// Decodes `base64(urlencode(id) ":" urlencode(secret))`.
fn decode_basic(credentials: &str) -> Option<(String, String)> {
    let raw = STANDARD.decode(credentials.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

// ---------------------------------------------------------------------------------------------
// Token endpoint
