//! The `Session` extractor, `Option<Session>`, and their rejection.
//!
//! The session is decoded at most once per request: the first extractor or `RequireAuth` to
//! need it stores the result in the request extensions, later ones reuse it.

use auth_core::{AccessToken, AccessTokenOptions, ConnectionTokenOptions, UserClaims};
use axum::extract::{FromRequestParts, OptionalFromRequestParts, OriginalUri};
use http::request::Parts;
use http::{Extensions, Uri};

use crate::cookies::AxumCookieJar;
use crate::error::AuthError;
use crate::rejection::SessionRejection;
use crate::request::RequestAuth;
use crate::state::{AuthState, Unauthenticated};

/// The logged-in user's session. Extracting it fails with [`SessionRejection`] when there is
/// none; use `Option<Session>` for pages that work either way.
///
/// ```
/// use auth_axum::Session;
///
/// async fn profile(session: Session) -> String {
///     format!("hello {}", session.sub().unwrap_or("?"))
/// }
/// ```
#[derive(Clone)]
pub struct Session {
    session: auth_core::Session,
    state: AuthState,
    jar: AxumCookieJar,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.session.fmt(f)
    }
}

impl Session {
    /// The user's claims.
    #[must_use]
    pub fn user(&self) -> &UserClaims {
        self.session.user()
    }

    /// The user's `sub`.
    #[must_use]
    pub fn sub(&self) -> Option<&str> {
        self.session.sub()
    }

    /// The session as the core library sees it (ID token, token sets, sid).
    #[must_use]
    pub fn inner(&self) -> &auth_core::Session {
        &self.session
    }

    /// An access token, refreshed if needed; a refreshed session is written back to the
    /// response's cookies.
    ///
    /// # Errors
    /// [`AuthError`] wrapping the core error (`missing_refresh_token`, `session_expired`, …).
    pub async fn access_token(&self, options: AccessTokenOptions) -> Result<AccessToken, AuthError> {
        let mut jar = self.jar.clone();
        self.state
            .client()
            .get_access_token(options, &mut jar)
            .await
            .map_err(AuthError::new)
    }
}

impl Session {
    /// A Token Vault access token for a third-party connection (e.g. `google-oauth2`), cached
    /// in the session until it expires.
    ///
    /// # Errors
    /// [`AuthError`] wrapping the core error (`missing_refresh_token`, …).
    pub async fn access_token_for_connection(
        &self,
        options: ConnectionTokenOptions,
    ) -> Result<AccessToken, AuthError> {
        let mut jar = self.jar.clone();
        self.state
            .client()
            .get_access_token_for_connection(options, &mut jar)
            .await
            .map_err(AuthError::new)
    }

    /// The login client, for the flows the extractor does not wrap (connected accounts, …),
    /// with this request's cookie jar.
    #[must_use]
    pub fn client_and_jar(&self) -> (&auth_core::ServerClient, AxumCookieJar) {
        (self.state.client(), self.jar.clone())
    }
}

/// The login URL that brings the user back to `uri`.
pub(crate) fn login_location(state: &AuthState, uri: &Uri) -> String {
    let back = uri.path_and_query().map_or("/", http::uri::PathAndQuery::as_str);
    let back = crate::return_to::sanitize(back).unwrap_or_else(|| "/".into());
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("returnTo", &back)
        .finish();
    format!("{}?{q}", state.path("login"))
}

/// Loads the session once per request, through the request's cookie jar.
pub(crate) async fn load(
    extensions: &mut Extensions,
) -> Result<(AuthState, AxumCookieJar, Option<auth_core::Session>), SessionRejection> {
    let Some(auth) = extensions.get::<RequestAuth>() else {
        return Err(SessionRejection::MissingAuthLayer);
    };
    let state = auth.state.clone();
    let cached = auth.session.clone();
    let Some(cookies) = extensions.get::<tower_cookies::Cookies>() else {
        return Err(SessionRejection::MissingAuthLayer);
    };
    let mut jar = AxumCookieJar::new(cookies.clone());
    if let Some(s) = cached {
        return Ok((state, jar, s));
    }
    let session = state
        .client()
        .get_session(&mut jar)
        .await
        .map_err(|e| SessionRejection::Store(AuthError::new(e)))?;
    if let Some(auth) = extensions.get_mut::<RequestAuth>() {
        auth.session = Some(session.clone());
    }
    Ok((state, jar, session))
}

fn original_uri(parts: &Parts) -> Uri {
    parts
        .extensions
        .get::<OriginalUri>()
        .map_or_else(|| parts.uri.clone(), |o| o.0.clone())
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let (state, jar, session) = load(&mut parts.extensions).await?;
        match session {
            Some(session) => Ok(Self { session, state, jar }),
            None => match state.options().unauthenticated {
                Unauthenticated::RedirectToLogin => Err(SessionRejection::LoginRequired {
                    location: login_location(&state, &original_uri(parts)),
                }),
                _ => Err(SessionRejection::Unauthenticated),
            },
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        let (state, jar, session) = load(&mut parts.extensions).await?;
        Ok(session.map(|session| Self { session, state, jar }))
    }
}
