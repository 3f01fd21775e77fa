//! [`CookieAttributes`]: how the library's cookies are written.

use std::time::Duration;

use cookie::{Cookie, SameSite};

/// Attributes for a cookie written by the library.
///
/// The [`Default`] is the safe baseline for session and transaction cookies: `HttpOnly`,
/// `SameSite=Lax`, `Path=/`, host-only (no `Domain`), a browser-session cookie (no `Max-Age`),
/// and **not** `Secure` — enable [`secure`](Self::secure) whenever the app is served over https.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieAttributes {
    /// `HttpOnly`: keeps the cookie away from page scripts.
    pub http_only: bool,
    /// `Secure`: the browser only sends the cookie over https.
    pub secure: bool,
    /// `SameSite` policy. `Lax` is required for the login callback, which arrives as a
    /// top-level cross-site navigation from the identity provider.
    pub same_site: SameSite,
    /// `Path` the cookie is scoped to.
    pub path: String,
    /// `Domain` to share the cookie with subdomains; `None` keeps it host-only.
    pub domain: Option<String>,
    /// `Max-Age`; `None` makes a browser-session cookie. Sub-second parts are truncated.
    pub max_age: Option<Duration>,
}

impl Default for CookieAttributes {
    fn default() -> Self {
        Self {
            http_only: true,
            secure: false,
            same_site: SameSite::Lax,
            path: "/".to_owned(),
            domain: None,
            max_age: None,
        }
    }
}

impl CookieAttributes {
    /// Builds the `Set-Cookie` cookie for `name=value` with these attributes.
    ///
    /// Values written by the library (sealed tokens) are plain ASCII and need no encoding; the
    /// value is used verbatim. A `max_age` too large for the cookie crate saturates.
    pub fn to_cookie(&self, name: &str, value: &str) -> Cookie<'static> {
        let mut cookie = Cookie::build((name.to_owned(), value.to_owned()))
            .http_only(self.http_only)
            .secure(self.secure)
            .same_site(self.same_site)
            .path(self.path.clone())
            .build();
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        if let Some(max_age) = self.max_age {
            let max_age = cookie::time::Duration::try_from(max_age).unwrap_or(cookie::time::Duration::MAX);
            cookie.set_max_age(max_age);
        }
        cookie
    }

    /// Builds the `Set-Cookie` cookie that makes a browser delete `name`: empty value,
    /// `Max-Age=0` and an `Expires` in the past, with the same path and domain as these
    /// attributes (a browser only deletes a cookie whose path and domain match).
    pub fn to_removal_cookie(&self, name: &str) -> Cookie<'static> {
        let mut cookie = self.to_cookie(name, "");
        cookie.make_removal();
        cookie
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_attributes() {
        let a = CookieAttributes::default();
        assert!(a.http_only);
        assert!(!a.secure);
        assert_eq!(a.same_site, SameSite::Lax);
        assert_eq!(a.path, "/");
        assert_eq!(a.domain, None);
        assert_eq!(a.max_age, None);
    }

    #[test]
    fn attributes_to_cookie() {
        let a = CookieAttributes {
            secure: true,
            domain: Some("example.com".into()),
            max_age: Some(Duration::from_secs(300)),
            ..CookieAttributes::default()
        };
        let c = a.to_cookie("n", "v");
        assert_eq!(c.name(), "n");
        assert_eq!(c.value(), "v");
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.secure(), Some(true));
        assert_eq!(c.same_site(), Some(SameSite::Lax));
        assert_eq!(c.path(), Some("/"));
        assert_eq!(c.domain(), Some("example.com"));
        assert_eq!(c.max_age(), Some(cookie::time::Duration::seconds(300)));
        let s = c.to_string();
        assert!(s.contains("HttpOnly") && s.contains("SameSite=Lax") && s.contains("Secure"));

        let session = CookieAttributes::default().to_cookie("n", "v");
        assert_eq!(session.max_age(), None);
        assert_eq!(session.secure(), Some(false));
        assert!(!session.to_string().contains("Secure"));

        let removal = a.to_removal_cookie("n");
        assert_eq!(removal.value(), "");
        assert_eq!(removal.max_age(), Some(cookie::time::Duration::ZERO));
        assert_eq!(removal.domain(), Some("example.com"));
        assert_eq!(removal.path(), Some("/"));

        let huge = CookieAttributes {
            max_age: Some(Duration::MAX),
            ..CookieAttributes::default()
        };
        assert!(huge.to_cookie("n", "v").max_age().is_some());
    }
}
