//! The application's hook on session writes: `before_session_saved`.
//!
//! A login, a refresh and a link (or unlink) each write the session once, at the end of their
//! flow. When the application configured a hook ([`ServerClientBuilder::before_session_saved`],
//! or [`ServerClient::with_before_session_saved`] for framework integrations), the flow hands
//! it a [`SessionSave`] — the claims and the app data about to be written, which flow it is,
//! and the per-request context of the [`CookieJar`] — just before the write. The hook returns
//! the (possibly edited) save, or a [`HookError`] that aborts the write: the flow then fails
//! with [`Error::Hook`] and the stored session stays as it was. The rolling touch of a read
//! and writes of app data alone do not run the hook.
//!
//! Hooks are plain closures: capture what they need (for app state, an `Arc<AppState>`).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::client::ServerClient;
use crate::config::ServerClientBuilder;
use crate::cookies::CookieJar;
use crate::error::{Error, Result};
use crate::session::{SessionData, UserClaims};

/// Which flow is about to write the session (see [`SessionSave::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaveKind {
    /// An interactive login, or a login by token exchange: a new session.
    Login,
    /// A refresh with the session's refresh token (an access token was needed). The claims
    /// are the refreshed ID token's when the provider sent one, else the stored ones (as a
    /// previous hook left them).
    Refresh,
    /// A completed user link: the session is updated with the new ID token's claims (a new
    /// session when the previous one ended meanwhile, see [`SessionSave::is_new_session`]).
    Link,
    /// A completed user unlink, as [`SaveKind::Link`].
    Unlink,
}

impl SaveKind {
    /// `login`, `refresh`, `link` or `unlink` (for logs and metrics).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Refresh => "refresh",
            Self::Link => "link",
            Self::Unlink => "unlink",
        }
    }
}

/// An opaque per-request value a [`CookieJar`] hands to hooks
/// ([`CookieJar::hook_context`]); hooks read it with [`SessionSave::context`]. `auth-axum`
/// puts the request head there.
pub type HookContext = Arc<dyn Any + Send + Sync>;

/// What a `before_session_saved` hook sees and may edit: the user's claims and the app data
/// about to be written, for one login, refresh or link.
///
/// Tokens, the session id and the lifetimes are not editable. The `sub` claim must stay as
/// it is (the session's identity): a hook that changes or removes it fails the save.
///
/// ```
/// use auth_core::{SaveKind, SessionSave};
///
/// // Keep cookies small: drop claims the app never reads; remember the first login.
/// fn trim(mut save: SessionSave) -> SessionSave {
///     save.user_mut().retain(|name, _| ["sub", "name", "email"].contains(&name.as_str()));
///     if save.kind() == SaveKind::Login {
///         save.app_data_mut().insert("visits".into(), serde_json::json!(1));
///     }
///     save
/// }
/// # let _ = trim;
/// ```
pub struct SessionSave {
    kind: SaveKind,
    new_session: bool,
    user: UserClaims,
    app_data: Map<String, Value>,
    context: Option<HookContext>,
}

impl fmt::Debug for SessionSave {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSave")
            .field("kind", &self.kind)
            .field("new_session", &self.new_session)
            .field("sub", &self.sub())
            .field("claims", &self.user.keys().collect::<Vec<_>>())
            .field("app_data", &self.app_data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl SessionSave {
    /// Which flow is writing the session.
    #[must_use]
    pub fn kind(&self) -> SaveKind {
        self.kind
    }

    /// Whether this write starts a new session (a login, or a link whose session had ended).
    #[must_use]
    pub fn is_new_session(&self) -> bool {
        self.new_session
    }

    /// The user's `sub`.
    #[must_use]
    pub fn sub(&self) -> Option<&str> {
        self.user.get("sub").and_then(Value::as_str)
    }

    /// The user's claims about to be stored (protocol claims such as `aud`, `exp` and
    /// `nonce` are already removed).
    #[must_use]
    pub fn user(&self) -> &UserClaims {
        &self.user
    }

    /// The claims to edit: remove what the app does not need (smaller cookies), add what it
    /// computed. Keep `sub`.
    pub fn user_mut(&mut self) -> &mut UserClaims {
        &mut self.user
    }

    /// The app data stored with the session (key → JSON value): empty on a login, the stored
    /// data on a refresh or link.
    #[must_use]
    pub fn app_data(&self) -> &Map<String, Value> {
        &self.app_data
    }

    /// The app data to edit.
    pub fn app_data_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.app_data
    }

    /// The per-request context of the jar the flow was called with, when it is a `T`
    /// (`auth-axum`: its `RequestHead`). `None` without a context or for another type.
    #[must_use]
    pub fn context<T: Any>(&self) -> Option<&T> {
        self.context.as_deref()?.downcast_ref::<T>()
    }
}

/// Why a hook did not let the library go on: returned by the application's hook, it makes the
/// flow fail with [`Error::Hook`].
///
/// Two kinds, which an HTTP integration answers differently: [`HookError::refuse`] (the app
/// does not accept this login, e.g. the user is not allowed in: `403`, code `hook_refused`)
/// and [`HookError::new`] (the hook could not do its work, e.g. its database is down: `503`,
/// code `hook_failed`; try again later). The reason is for logs; responses show a fixed
/// message.
///
/// ```
/// use auth_core::HookError;
///
/// let refused = HookError::refuse("user is not on the beta list");
/// assert!(refused.is_refusal());
/// let failed = HookError::new("profile database unavailable")
///     .with_source(std::io::Error::other("connection refused"));
/// assert_eq!(failed.to_string(), "profile database unavailable");
/// ```
#[derive(Debug)]
pub struct HookError {
    refusal: bool,
    hook: &'static str,
    reason: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl HookError {
    /// The hook could not do its work (a database or service it needs failed): the flow fails
    /// with code `hook_failed`. `reason` is logged, never shown to the user.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            refusal: false,
            hook: "",
            reason: reason.into(),
            source: None,
        }
    }

    /// The application refuses this login, refresh or link: the flow fails with code
    /// `hook_refused`. `reason` is logged, never shown to the user.
    pub fn refuse(reason: impl Into<String>) -> Self {
        Self {
            refusal: true,
            ..Self::new(reason)
        }
    }

    /// The error that caused this one (its `source()`).
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Whether the application refused (rather than failed).
    #[must_use]
    pub fn is_refusal(&self) -> bool {
        self.refusal
    }

    /// The reason the hook gave.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The hook that returned this error (`before_session_saved`, …); empty until a library
    /// caller names it.
    #[must_use]
    pub fn hook(&self) -> &'static str {
        self.hook
    }

    /// This error, naming the hook that returned it (for integrations that run hooks).
    #[must_use]
    pub fn in_hook(mut self, hook: &'static str) -> Self {
        self.hook = hook;
        self
    }

    /// `hook_refused` or `hook_failed`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        if self.refusal {
            "hook_refused"
        } else {
            "hook_failed"
        }
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for HookError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

type SaveFuture = Pin<Box<dyn Future<Output = std::result::Result<SessionSave, HookError>> + Send>>;

/// A configured `before_session_saved` hook (cheap to clone).
#[derive(Clone)]
pub(crate) struct SaveHook(Arc<dyn Fn(SessionSave) -> SaveFuture + Send + Sync>);

impl fmt::Debug for SaveHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SaveHook(..)")
    }
}

impl SaveHook {
    fn new<F, Fut>(hook: F) -> Self
    where
        F: Fn(SessionSave) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<SessionSave, HookError>> + Send + 'static,
    {
        Self(Arc::new(move |save| Box::pin(hook(save))))
    }

    /// This hook, then `next` on its result.
    fn then(self, next: SaveHook) -> Self {
        Self(Arc::new(move |save| {
            let (first, next) = (self.0.clone(), next.0.clone());
            Box::pin(async move { next(first(save).await?).await })
        }))
    }
}

impl ServerClientBuilder {
    /// Runs `hook` before a login, refresh, link or unlink writes the session: it sees the
    /// claims and the app data about to be stored, may edit them (drop claims to keep cookies
    /// small, add app data), and may abort the write with a [`HookError`] — the flow then
    /// fails with [`Error::Hook`] and the stored session stays as it was (a login leaves the
    /// previous session, if any, in place). A hook that changes or removes `sub` fails the
    /// save the same way.
    ///
    /// The hook runs on every login, on every refresh (when an access token is renewed: once
    /// for each request that stores the renewed tokens, so concurrent requests sharing one
    /// refresh each run it) and on every link or unlink; never on the rolling touch of a read
    /// or on a write of app data alone. A refresh whose save the
    /// hook aborts returns the error; the new tokens are not stored (a refresh token the
    /// provider rotated meanwhile is still handed to calls with the old one for two minutes,
    /// so a retry succeeds once the hook does). Replaces a hook set before.
    ///
    /// Capture application state in the closure (an `Arc<AppState>`):
    ///
    /// ```
    /// use std::sync::Arc;
    /// use auth_core::{HookError, SaveKind, ServerClient};
    ///
    /// struct AppState { admins: Vec<String> }
    ///
    /// # fn build() -> Result<(), auth_core::Error> {
    /// let state = Arc::new(AppState { admins: vec!["auth0|42".into()] });
    /// let client = ServerClient::builder()
    ///     .issuer("https://idp.example.com/")
    ///     .client_id("my-client")
    ///     .client_auth(auth_core::ClientAuth::secret("client-secret"))
    ///     .secret("a-long-random-value-of-at-least-32-characters")
    ///     .app_base_url("https://app.example.com")
    ///     .before_session_saved(move |mut save| {
    ///         let state = state.clone();
    ///         async move {
    ///             // Keep only the claims the app reads.
    ///             save.user_mut().retain(|k, _| ["sub", "name", "email"].contains(&k.as_str()));
    ///             if save.kind() == SaveKind::Login {
    ///                 let admin = save.sub().is_some_and(|s| state.admins.iter().any(|a| a == s));
    ///                 save.app_data_mut().insert("admin".into(), admin.into());
    ///             }
    ///             Ok::<_, HookError>(save)
    ///         }
    ///     })
    ///     .build()?;
    /// # let _ = client; Ok(()) }
    /// ```
    pub fn before_session_saved<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(SessionSave) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<SessionSave, HookError>> + Send + 'static,
    {
        self.save_hook = Some(SaveHook::new(hook));
        self
    }
}

impl ServerClient {
    /// The same client (configuration, provider metadata, stores and caches shared) that also
    /// runs `hook` before a session is saved, after the hook configured with
    /// [`ServerClientBuilder::before_session_saved`], if any. For framework integrations
    /// (`auth-axum`'s `AuthOptions::before_session_saved` is built on it); applications
    /// normally use the builder.
    ///
    /// Only flows called through the returned client run `hook`.
    pub fn with_before_session_saved<F, Fut>(&self, hook: F) -> Self
    where
        F: Fn(SessionSave) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<SessionSave, HookError>> + Send + 'static,
    {
        let hook = SaveHook::new(hook);
        let mut client = self.clone();
        client.save_hook = Some(match client.save_hook.take() {
            Some(first) => first.then(hook),
            None => hook,
        });
        client
    }

    /// Runs the `before_session_saved` hook, if any, on `session` about to be written by a
    /// `kind` flow, and applies its edits. Nothing is written here; on an error the caller
    /// writes nothing either.
    ///
    /// # Errors
    /// [`Error::Hook`] when the hook fails or changes `sub`.
    pub(crate) async fn before_session_saved(
        &self,
        session: &mut SessionData,
        kind: SaveKind,
        new_session: bool,
        jar: &mut dyn CookieJar,
    ) -> Result<()> {
        let Some(hook) = &self.save_hook else {
            return Ok(());
        };
        let save = SessionSave {
            kind,
            new_session,
            user: session.user.clone(),
            app_data: session.app_data.clone(),
            context: jar.hook_context(),
        };
        let saved = (hook.0)(save).await.map_err(|e| {
            let e = e.in_hook("before_session_saved");
            tracing::warn!(
                kind = kind.as_str(),
                code = e.code(),
                reason = %e,
                "before_session_saved aborted the save; the stored session is unchanged"
            );
            Error::Hook(e)
        })?;
        if saved.user.get("sub") != session.user.get("sub") {
            tracing::warn!(
                kind = kind.as_str(),
                "before_session_saved changed `sub`; save aborted"
            );
            return Err(Error::Hook(
                HookError::new("before_session_saved changed or removed the `sub` claim; keep it")
                    .in_hook("before_session_saved"),
            ));
        }
        session.user = saved.user;
        session.app_data = saved.app_data;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cookies::{CookieAttributes, MemoryCookieJar};

    /// A jar with a context, over a memory jar.
    struct ContextJar(MemoryCookieJar, HookContext);

    impl CookieJar for ContextJar {
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name)
        }
        fn names(&self) -> Vec<String> {
            self.0.names()
        }
        fn set(&mut self, name: &str, value: &str, attributes: &CookieAttributes) {
            self.0.set(name, value, attributes);
        }
        fn remove(&mut self, name: &str, attributes: &CookieAttributes) {
            self.0.remove(name, attributes);
        }
        fn hook_context(&self) -> Option<HookContext> {
            Some(self.1.clone())
        }
    }

    fn builder() -> ServerClientBuilder {
        ServerClient::builder()
            .issuer("https://idp.example.com/")
            .client_id("c")
            .client_auth(crate::ClientAuth::none())
            .secret("0123456789abcdef0123456789abcdef")
            .app_base_url("https://app.example.com")
    }

    fn session() -> SessionData {
        serde_json::from_value(serde_json::json!({
            "user": {"sub": "u1", "name": "N", "big": "x"},
            "internal": {"sid": "s", "created_at": 1}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn no_hook_leaves_the_session_alone() {
        let client = builder().build().unwrap();
        let mut s = session();
        client
            .before_session_saved(&mut s, SaveKind::Login, true, &mut MemoryCookieJar::new())
            .await
            .unwrap();
        assert_eq!(s, session());
    }

    #[tokio::test]
    async fn hooks_edit_claims_and_app_data_in_order_and_see_the_context() {
        let client = builder()
            .before_session_saved(|mut save| async move {
                assert_eq!(save.context::<&str>(), Some(&"request head"));
                assert_eq!(save.context::<u8>(), None);
                save.user_mut().remove("big");
                save.app_data_mut().insert("order".into(), "builder".into());
                Ok(save)
            })
            .build()
            .unwrap()
            .with_before_session_saved(|mut save| async move {
                let first = save.app_data()["order"].as_str().unwrap().to_owned();
                save.app_data_mut()
                    .insert("order".into(), format!("{first},integration").into());
                assert_eq!((save.kind(), save.is_new_session()), (SaveKind::Refresh, false));
                Ok(save)
            });
        let mut jar = ContextJar(MemoryCookieJar::new(), Arc::new("request head"));
        let mut s = session();
        client
            .before_session_saved(&mut s, SaveKind::Refresh, false, &mut jar)
            .await
            .unwrap();
        assert!(!s.user.contains_key("big"));
        assert_eq!(s.user["name"], "N");
        assert_eq!(s.app_data["order"], "builder,integration");
    }

    #[tokio::test]
    async fn a_failing_hook_or_a_changed_sub_aborts_with_a_typed_error() {
        let refusing = builder()
            .before_session_saved(|_| async { Err(HookError::refuse("not on the list")) })
            .build()
            .unwrap();
        let mut s = session();
        let e = refusing
            .before_session_saved(&mut s, SaveKind::Login, true, &mut MemoryCookieJar::new())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "hook_refused");
        assert_eq!(s, session(), "nothing applied");
        let Error::Hook(h) = &e else { panic!("{e:?}") };
        assert_eq!(h.hook(), "before_session_saved");

        let sub_changer = builder()
            .before_session_saved(|mut save| async move {
                save.user_mut().insert("sub".into(), "someone-else".into());
                Ok(save)
            })
            .build()
            .unwrap();
        let e = sub_changer
            .before_session_saved(&mut s, SaveKind::Link, false, &mut MemoryCookieJar::new())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "hook_failed");
        assert_eq!(s, session());
    }
}
