//! Request parsing, strict parameter checks, answers and refusals shared by the
//! emulator's endpoints.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// Name/value pairs in the order they arrived (repeats kept).
pub(crate) type Pairs = Vec<(String, String)>;

/// Values that betray an absent value turned into a string by a client.
const PLACEHOLDERS: [&str; 4] = ["None", "null", "undefined", "nil"];

/// One incoming request, as the endpoint handlers see it.
pub(crate) struct Req<'a> {
    pub(crate) method: &'a str,
    /// The path exactly as sent (still percent-encoded).
    pub(crate) path: &'a str,
    pub(crate) query: &'a Pairs,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

impl Req<'_> {
    /// The `Authorization` header split into (scheme, credentials).
    pub(crate) fn authorization(&self) -> Option<(&str, &str)> {
        let value = self.headers.get(AUTHORIZATION)?.to_str().ok()?;
        Some(value.split_once(' ').unwrap_or((value, "")))
    }

    /// The media type of `Content-Type`, lower-cased, without parameters.
    pub(crate) fn media_type(&self) -> Option<String> {
        let ct = self.headers.get(CONTENT_TYPE)?.to_str().ok()?;
        Some(ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
    }

    /// The query string as strict [`Params`]; a GET/DELETE must also have no body.
    pub(crate) fn query_params(&self, what: &str) -> Result<Params, Refusal> {
        if !self.body.is_empty() {
            return Err(Refusal::invalid_request(format!(
                "{what}: a {} request must not carry a body ({} bytes sent)",
                self.method,
                self.body.len()
            )));
        }
        Params::new(self.query.clone(), what)
    }

    /// The body as a strict form (`application/x-www-form-urlencoded` required, no query).
    pub(crate) fn form_params(&self, what: &str) -> Result<Params, Refusal> {
        match self.media_type().as_deref() {
            Some("application/x-www-form-urlencoded") => {}
            Some(other) => {
                return Err(Refusal::invalid_request(format!(
                    "{what}: Content-Type must be application/x-www-form-urlencoded, got {other}"
                )));
            }
            None => {
                return Err(Refusal::invalid_request(format!(
                    "{what}: Content-Type application/x-www-form-urlencoded is required (none sent)"
                )));
            }
        }
        if !self.query.is_empty() {
            return Err(Refusal::invalid_request(format!(
                "{what}: parameters belong in the form body, not the query string (got {})",
                names(self.query)
            )));
        }
        Params::new(parse_pairs(self.body), what)
    }
}

/// Parses `application/x-www-form-urlencoded` bytes.
pub(crate) fn parse_pairs(bytes: &[u8]) -> Pairs {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

fn names(pairs: &Pairs) -> String {
    pairs
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Strictly checked request parameters: no repeats, no empty values, no
/// stringified placeholders such as `None`.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    pairs: Pairs,
}

impl Params {
    /// Checks `pairs`; `what` names the endpoint in refusal messages.
    pub(crate) fn new(pairs: Pairs, what: &str) -> Result<Params, Refusal> {
        let mut seen = HashSet::new();
        for (name, value) in &pairs {
            if !seen.insert(name.as_str()) {
                return Err(Refusal::invalid_request(format!(
                    "{what}: parameter `{name}` is repeated"
                )));
            }
            if value.is_empty() {
                return Err(Refusal::invalid_request(format!(
                    "{what}: parameter `{name}` is present but empty (omit absent parameters)"
                )));
            }
            if PLACEHOLDERS.contains(&value.as_str()) {
                return Err(Refusal::invalid_request(format!(
                    "{what}: parameter `{name}` has the placeholder value `{value}` (an absent value was \
                     turned into a string; omit the parameter instead)"
                )));
            }
        }
        Ok(Params { pairs })
    }

    /// The value of `name`, if present.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` is present.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The value of a required parameter.
    pub(crate) fn require(&self, name: &str, what: &str) -> Result<&str, Refusal> {
        self.get(name).ok_or_else(|| {
            Refusal::invalid_request(format!("{what}: required parameter `{name}` is missing"))
        })
    }

    /// Refuses any parameter not in `allowed`.
    pub(crate) fn only(&self, allowed: &[&str], what: &str) -> Result<(), Refusal> {
        let unknown: Vec<&str> = self
            .pairs
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !allowed.contains(k))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(Refusal::invalid_request(format!(
                "{what}: unexpected parameter(s) {} (allowed here: {})",
                unknown.join(", "),
                allowed.join(", ")
            )))
        }
    }

    /// All pairs.
    pub(crate) fn pairs(&self) -> &Pairs {
        &self.pairs
    }
}

/// What the emulator answers.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: Option<&'static str>,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
    /// An error code to record (e.g. an error redirect).
    pub(crate) error: Option<String>,
    /// Why (recorded with the request).
    pub(crate) reason: Option<String>,
    /// Answered because of `fail_next_my_account`, not because of a check.
    pub(crate) injected: bool,
}

impl Answer {
    /// A JSON answer.
    pub(crate) fn json(status: u16, body: &Value) -> Answer {
        Answer {
            status,
            content_type: Some("application/json"),
            headers: Vec::new(),
            body: serde_json::to_vec(body).expect("JSON"),
            error: None,
            reason: None,
            injected: false,
        }
    }

    /// A JSON answer of the token endpoint family (`Cache-Control: no-store`).
    pub(crate) fn token_json(status: u16, body: &Value) -> Answer {
        let mut answer = Answer::json(status, body);
        answer.headers.push(("cache-control", "no-store".to_owned()));
        answer.headers.push(("pragma", "no-cache".to_owned()));
        answer
    }

    /// A `302 Found` to `location`.
    pub(crate) fn redirect(location: &str) -> Answer {
        Answer {
            status: 302,
            content_type: None,
            headers: vec![("location", location.to_owned())],
            body: Vec::new(),
            error: None,
            reason: None,
            injected: false,
        }
    }

    /// A `text/html` page.
    pub(crate) fn html(status: u16, html: String) -> Answer {
        Answer {
            status,
            content_type: Some("text/html; charset=utf-8"),
            headers: Vec::new(),
            body: html.into_bytes(),
            error: None,
            reason: None,
            injected: false,
        }
    }

    /// An empty answer (e.g. `204`).
    pub(crate) fn empty(status: u16) -> Answer {
        Answer {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
            error: None,
            reason: None,
            injected: false,
        }
    }
}

/// A refused request: an OAuth JSON error or an RFC 9457 problem.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// `{"error", "error_description"}`.
    OAuth {
        status: u16,
        error: String,
        description: String,
        www_authenticate: Option<String>,
    },
    /// `application/problem+json` `{type, title, detail, status, validation_errors?}`.
    Problem {
        status: u16,
        title: String,
        detail: String,
        validation_errors: Vec<Value>,
        www_authenticate: Option<String>,
    },
}

impl Refusal {
    fn oauth(status: u16, error: &str, description: String) -> Refusal {
        Refusal::OAuth {
            status,
            error: error.to_owned(),
            description,
            www_authenticate: None,
        }
    }

    /// `400 invalid_request`.
    pub(crate) fn invalid_request(description: String) -> Refusal {
        Refusal::oauth(400, "invalid_request", description)
    }

    /// `401 invalid_client` (with `WWW-Authenticate: Basic`).
    pub(crate) fn invalid_client(description: String) -> Refusal {
        Refusal::OAuth {
            status: 401,
            error: "invalid_client".to_owned(),
            description,
            www_authenticate: Some("Basic realm=\"auth0-emulator\"".to_owned()),
        }
    }

    /// `403 invalid_grant` (Auth0 answers 403 for a bad code or refresh token).
    pub(crate) fn invalid_grant(description: String) -> Refusal {
        Refusal::oauth(403, "invalid_grant", description)
    }

    /// `400 invalid_scope`.
    pub(crate) fn invalid_scope(description: String) -> Refusal {
        Refusal::oauth(400, "invalid_scope", description)
    }

    /// `400` with any OAuth error code.
    pub(crate) fn oauth_400(error: &str, description: String) -> Refusal {
        Refusal::oauth(400, error, description)
    }

    /// `404` for a path the emulator does not serve.
    pub(crate) fn not_found(description: String) -> Refusal {
        Refusal::oauth(404, "not_found", description)
    }

    /// `405` for a known path with the wrong method.
    pub(crate) fn method_not_allowed(description: String) -> Refusal {
        Refusal::oauth(405, "method_not_allowed", description)
    }

    /// A problem+json refusal.
    pub(crate) fn problem(status: u16, title: &str, detail: String) -> Refusal {
        Refusal::Problem {
            status,
            title: title.to_owned(),
            detail,
            validation_errors: Vec::new(),
            www_authenticate: None,
        }
    }

    /// `401` problem with `WWW-Authenticate: Bearer`.
    pub(crate) fn problem_unauthorized(detail: String) -> Refusal {
        Refusal::Problem {
            status: 401,
            title: "Unauthorized".to_owned(),
            detail,
            validation_errors: Vec::new(),
            www_authenticate: Some("Bearer realm=\"auth0-emulator\", error=\"invalid_token\"".to_owned()),
        }
    }

    /// `400` problem listing `validation_errors`.
    pub(crate) fn validation(errors: Vec<Value>) -> Refusal {
        let detail = errors
            .iter()
            .filter_map(|e| e["detail"].as_str())
            .collect::<Vec<_>>()
            .join("; ");
        Refusal::Problem {
            status: 400,
            title: "Bad Request".to_owned(),
            detail: format!("Invalid request payload: {detail}"),
            validation_errors: errors,
            www_authenticate: None,
        }
    }

    /// The recorded error code.
    pub(crate) fn code(&self) -> String {
        match self {
            Refusal::OAuth { error, .. } => error.clone(),
            Refusal::Problem { title, .. } => title.clone(),
        }
    }

    /// The recorded reason.
    pub(crate) fn reason(&self) -> String {
        match self {
            Refusal::OAuth { description, .. } => description.clone(),
            Refusal::Problem {
                detail,
                validation_errors,
                ..
            } if !validation_errors.is_empty() => {
                format!("{detail} {}", Value::Array(validation_errors.clone()))
            }
            Refusal::Problem { detail, .. } => detail.clone(),
        }
    }

    /// The HTTP answer.
    pub(crate) fn into_answer(self) -> Answer {
        let code = self.code();
        let reason = self.reason();
        let mut answer = match self {
            Refusal::OAuth {
                status,
                error,
                description,
                www_authenticate,
            } => {
                let mut a =
                    Answer::token_json(status, &json!({"error": error, "error_description": description}));
                if let Some(w) = www_authenticate {
                    a.headers.push(("www-authenticate", w));
                }
                a
            }
            Refusal::Problem {
                status,
                title,
                detail,
                validation_errors,
                www_authenticate,
            } => {
                let mut body = json!({
                    "type": format!("https://auth0-emulator.invalid/problems/{}", slug(&title)),
                    "title": title,
                    "detail": detail,
                    "status": status,
                });
                if !validation_errors.is_empty() {
                    body["validation_errors"] = Value::Array(validation_errors);
                }
                let mut a = Answer::json(status, &body);
                a.content_type = Some("application/problem+json");
                if let Some(w) = www_authenticate {
                    a.headers.push(("www-authenticate", w));
                }
                a
            }
        };
        answer.error = Some(code);
        answer.reason = Some(reason);
        answer
    }
}

fn slug(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// One `validation_errors` entry for a JSON body field.
pub(crate) fn field_error(field: &str, detail: String) -> Value {
    json!({
        "detail": detail,
        "field": field,
        "pointer": format!("/{field}"),
        "source": "body",
    })
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `bytes` random bytes, base64url without padding.
pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// base64url(SHA-256(verifier)), the S256 PKCE challenge.
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Checks an S256 `code_challenge`: exactly 43 base64url characters.
pub(crate) fn check_challenge(challenge: &str) -> Result<(), String> {
    let ok_chars = challenge
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if challenge.len() == 43 && ok_chars {
        Ok(())
    } else {
        Err(format!(
            "code_challenge must be 43 base64url characters (base64url of a SHA-256 digest, no padding), \
             got {} characters: {challenge:?}",
            challenge.len()
        ))
    }
}

/// Checks a PKCE `code_verifier` (RFC 7636 §4.1: 43–128 unreserved characters).
pub(crate) fn check_verifier(verifier: &str) -> Result<(), String> {
    let ok_chars = verifier
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if (43..=128).contains(&verifier.len()) && ok_chars {
        Ok(())
    } else {
        Err(format!(
            "code_verifier must be 43-128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1), got {} characters",
            verifier.len()
        ))
    }
}

/// Splits a scope string, refusing sloppy syntax (RFC 6749 §3.3: tokens separated by one space)
/// and repeated tokens.
pub(crate) fn parse_scope(scope: &str, what: &str) -> Result<Vec<String>, Refusal> {
    let tokens: Vec<&str> = scope.split(' ').collect();
    if tokens.iter().any(|t| t.is_empty()) {
        return Err(Refusal::invalid_request(format!(
            "{what}: scope {scope:?} is malformed (scope tokens are separated by single spaces, no leading or \
             trailing space)"
        )));
    }
    let mut seen = HashSet::new();
    for t in &tokens {
        if !seen.insert(*t) {
            return Err(Refusal::invalid_request(format!(
                "{what}: scope {scope:?} repeats `{t}`"
            )));
        }
    }
    Ok(tokens.into_iter().map(str::to_owned).collect())
}

/// Percent-decodes a path segment once (`+` stays `+`). `None` on a malformed escape or
/// non-UTF-8 result.
pub(crate) fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `application/x-www-form-urlencoded` decoding of one component (`+` is a space).
pub(crate) fn form_decode(component: &str) -> Option<String> {
    percent_decode(&component.replace('+', " "))
}

/// `uri` with `params` appended to its query.
pub(crate) fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.into()
        }
        Err(_) => uri.to_owned(),
    }
}

/// RFC 3339 UTC timestamp (`2025-01-02T03:04:05.000Z`) of Unix seconds.
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_735_787_045), "2025-01-02T03:04:05.000Z");
    }

    #[test]
    fn percent_decode_decodes_once() {
        assert_eq!(percent_decode("cac_a%2Fb").as_deref(), Some("cac_a/b"));
        assert_eq!(percent_decode("%2541").as_deref(), Some("%41"));
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
        assert_eq!(percent_decode("%zz"), None);
    }

    #[test]
    fn scope_syntax_is_strict() {
        assert!(parse_scope("openid profile", "t").is_ok());
        assert!(parse_scope("openid  profile", "t").is_err());
        assert!(parse_scope(" openid", "t").is_err());
        assert!(parse_scope("openid openid", "t").is_err());
    }
}
