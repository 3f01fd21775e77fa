//! Parsing authorization responses (query or `form_post` body).

use url::Url;

use crate::error::{CallbackError, Error, Result};

/// Largest callback we parse; real ones are a few hundred bytes.
const MAX_CALLBACK_LEN: usize = 16 * 1024;

/// The parameters of an authorization response.
///
/// Build it from the callback URL ([`CallbackParams::from_url`]), its query string, or a
/// `response_mode=form_post` body ([`CallbackParams::from_form`]). Repeated parameters are
/// refused (RFC 6749 §3.1).
///
/// `Debug` shows every parameter name but only the values of a few harmless ones (`state`,
/// `error`, …): the authorization `code` and anything else (tokens such as `id_token` or
/// `logout_token`, unknown parameters) print as `[redacted]`, so logging a callback never leaks
/// a credential.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CallbackParams {
    params: Vec<(String, String)>,
}

/// Parameters whose values [`CallbackParams`]'s `Debug` shows; every other value is redacted.
const SHOWN_IN_DEBUG: &[&str] = &[
    "state",
    "error",
    "error_description",
    "error_uri",
    "iss",
    "scope",
    "response_mode",
];

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        /// One value: shown, or `[redacted]`.
        struct Value<'a>(&'a str, bool);
        impl std::fmt::Debug for Value<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                if self.1 {
                    std::fmt::Debug::fmt(self.0, f)
                } else {
                    f.write_str("[redacted]")
                }
            }
        }
        let mut map = f.debug_map();
        for (name, value) in &self.params {
            map.entry(name, &Value(value, SHOWN_IN_DEBUG.contains(&name.as_str())));
        }
        map.finish()
    }
}

impl CallbackParams {
    /// Parses the query of a full callback URL.
    ///
    /// # Errors
    /// [`CallbackError::Malformed`] or [`CallbackError::DuplicateParameter`].
    pub fn from_url(url: &str) -> Result<Self> {
        if url.len() > MAX_CALLBACK_LEN {
            return Err(Error::InvalidCallback(CallbackError::Malformed));
        }
        let parsed = Url::parse(url).map_err(|_| Error::InvalidCallback(CallbackError::Malformed))?;
        Self::from_query(parsed.query().unwrap_or(""))
    }

    /// Parses a query string (without the leading `?`).
    ///
    /// # Errors
    /// As [`CallbackParams::from_url`].
    pub fn from_query(query: &str) -> Result<Self> {
        Self::from_form(query.as_bytes())
    }

    /// Parses an `application/x-www-form-urlencoded` body.
    ///
    /// # Errors
    /// As [`CallbackParams::from_url`].
    pub fn from_form(body: &[u8]) -> Result<Self> {
        if body.len() > MAX_CALLBACK_LEN {
            return Err(Error::InvalidCallback(CallbackError::Malformed));
        }
        let mut params: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(body) {
            if params.iter().any(|(n, _)| *n == k) {
                return Err(Error::InvalidCallback(CallbackError::DuplicateParameter(
                    crate::http::truncate(&k, 32),
                )));
            }
            params.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self { params })
    }

    /// The provider's `error` / `error_description` (RFC 6749 §4.1.2.1), trimmed to sane
    /// sizes, as a typed error; `Ok` when the callback carries none.
    pub(crate) fn provider_error(&self) -> Result<()> {
        match self.get("error") {
            Some(error) => Err(Error::Authorization(crate::error::OAuthError {
                error: crate::http::truncate(error, 128),
                error_description: self
                    .get("error_description")
                    .map(|d| crate::http::truncate(d, 512)),
                status: None,
            })),
            None => Ok(()),
        }
    }

    /// The value of `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_duplicates() {
        let p = CallbackParams::from_url("https://app/cb?code=abc&state=s%20t").unwrap();
        assert_eq!(p.get("code"), Some("abc"));
        assert_eq!(p.get("state"), Some("s t"));
        let e = CallbackParams::from_url("https://app/cb?code=a&code=b&state=s").unwrap_err();
        assert!(matches!(e, Error::InvalidCallback(CallbackError::DuplicateParameter(ref p)) if p == "code"));
        assert!(CallbackParams::from_url("/relative?code=x").is_err());
        assert!(CallbackParams::from_form(&vec![b'a'; MAX_CALLBACK_LEN + 1]).is_err());
        let p = CallbackParams::from_form(b"code=x&state=y").unwrap();
        assert_eq!(p.get("state"), Some("y"));
        // Non-UTF-8 is replaced, never a panic.
        assert!(CallbackParams::from_form(b"code=%FF%FE&state=y").is_ok());
    }

    #[test]
    fn debug_redacts_the_code_and_tokens() {
        let p = CallbackParams::from_form(
            b"code=SECRET-CODE-1&state=st-123&id_token=SECRET.ID.TOKEN&logout_token=SECRET-LT\
              &access_token=SECRET-AT&unknown=SECRET-X&error=access_denied&iss=https%3A%2F%2Fidp%2F",
        )
        .unwrap();
        for debug in [format!("{p:?}"), format!("{p:#?}")] {
            assert!(!debug.contains("SECRET"), "{debug}");
            for name in ["code", "id_token", "logout_token", "access_token", "unknown"] {
                assert!(debug.contains(&format!("\"{name}\"")), "{name} listed: {debug}");
            }
            assert!(debug.contains("[redacted]"), "{debug}");
            assert!(
                debug.contains("st-123") && debug.contains("access_denied"),
                "{debug}"
            );
            assert!(debug.contains("https://idp/"), "{debug}");
        }
        assert_eq!(format!("{:?}", CallbackParams::default()), "{}");
    }
}
