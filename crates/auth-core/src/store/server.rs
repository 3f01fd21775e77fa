//! [`ServerSideStateStore`]: the session lives in a [`SessionBackend`]; the browser holds
//! only a sealed random session id.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::backend::{LogoutKey, SessionBackend, SessionKeys};
use super::cache::{Fetched, OpenedCache, SESSION_CACHE_CAPACITY, SealedStore};
use super::cookie::until;
use super::{StateStore, WriteOptions};
use crate::cookies::{CookieAttributes, CookieJar, read_chunks, remove_chunked, write_chunked};
use crate::error::{Error, Result, StoreError};
use crate::seal::Sealer;
use crate::session::SessionData;
use crate::time::now;

#[derive(Serialize, Deserialize)]
struct Pointer {
    id: String,
}

/// Server-side sessions: a sealed `{ "id": … }` in the session cookie, the (sealed) session
/// document in the backend under that id, indexed by `sid` and `sub` for back-channel logout.
///
/// Deleting the record ends the session everywhere, even for copies of the cookie, and for
/// good: only a login creates a record; every other write (refresh, rolling touch, token cache,
/// link) updates the record only while it still exists ([`SessionBackend::update`]), so a
/// request that read the session before a logout cannot write it back.
///
/// Each stored document is sealed with a key bound to its session id (the seal salt is
/// `{name}:data:{id}`): a record copied under another id does not open.
#[derive(Debug, Clone)]
pub struct ServerSideStateStore {
    backend: Arc<dyn SessionBackend>,
    sealer: Arc<Sealer>,
    name: String,
    data_salt: String,
    attributes: CookieAttributes,
    /// Ids already opened from id cookies, by the cookie's exact sealed bytes: a browser
    /// sends the same id cookie with every request, and opening it is a JWE decryption.
    ids: Arc<OpenedCache<String>>,
}

impl ServerSideStateStore {
    /// A store keeping sessions in `backend`, sealing the id cookie (named `{name}_0`) and the
    /// stored documents with `secrets` (first seals, all open).
    #[must_use]
    pub fn new(
        backend: Arc<dyn SessionBackend>,
        secrets: &[impl AsRef<str>],
        name: &str,
        attributes: CookieAttributes,
    ) -> Self {
        let sealer = Arc::new(Sealer::with_pinned_salts(secrets, &[name]));
        Self::with_sealer(backend, sealer, name.to_owned(), attributes)
    }

    pub(crate) fn with_sealer(
        backend: Arc<dyn SessionBackend>,
        sealer: Arc<Sealer>,
        name: String,
        attributes: CookieAttributes,
    ) -> Self {
        let data_salt = format!("{name}:data");
        Self {
            backend,
            sealer,
            name,
            data_salt,
            attributes,
            ids: Arc::new(OpenedCache::new(SESSION_CACHE_CAPACITY)),
        }
    }

    fn current_id(&self, jar: &dyn CookieJar) -> Option<String> {
        let chunks = read_chunks(jar, &self.name, 1)?;
        if let Some(id) = self.ids.get(&chunks) {
            return Some(String::clone(&id));
        }
        let sealed = Fetched::pieces(chunks).joined();
        let plain = self.sealer.open(&self.name, &sealed)?;
        let p: Pointer = serde_json::from_slice(&plain).ok()?;
        let id = (p.id.len() == ID_LEN).then_some(p.id)?;
        self.ids.insert(&sealed, &Arc::new(id.clone()));
        Some(id)
    }

    /// The seal salt of the document stored under `id`: binds the record to its id.
    fn record_salt(&self, id: &str) -> String {
        format!("{}:{id}", self.data_salt)
    }
}

/// The largest sealed session document a server-side session stores (64 KiB); a write that
/// would store more is refused with [`crate::Error::SessionTooLarge`] and writes nothing.
/// (Sealing adds about a third to the JSON: about 48 KiB of session JSON fit.)
pub const MAX_SERVER_SESSION_BYTES: usize = 64 * 1024;

/// Length of a session id (32 random bytes, base64url).
const ID_LEN: usize = 43;

#[async_trait]
impl SealedStore for ServerSideStateStore {
    /// The session id and the sealed record stored under it, as `{id}.{record}`: the record is
    /// read from the backend on every request, so what this returns is always current.
    async fn fetch(&self, jar: &mut dyn CookieJar) -> Result<Option<Fetched>> {
        let Some(mut id) = self.current_id(&*jar) else {
            return Ok(None);
        };
        let Some(stored) = self.backend.get(&id).await? else {
            return Ok(None);
        };
        id.push('.');
        let record =
            String::from_utf8(stored).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Ok(Some(Fetched::pieces(vec![id, record])))
    }

    fn session_id(&self, jar: &dyn CookieJar) -> Option<String> {
        self.current_id(jar)
    }

    fn open(&self, fetched: &str) -> Option<SessionData> {
        let (id, record) = fetched.split_at_checked(ID_LEN)?;
        let record = record.strip_prefix('.')?;
        let Some(plain) = self.sealer.open(&self.record_salt(id), record) else {
            tracing::warn!(
                "stored session did not open (secret rotated away, or a record copied under \
                 another id?); treating as logged out"
            );
            return None;
        };
        serde_json::from_slice(&plain).ok()
    }
}

#[async_trait]
impl StateStore for ServerSideStateStore {
    async fn get(&self, jar: &mut dyn CookieJar) -> Result<Option<SessionData>> {
        Ok(self
            .fetch(jar)
            .await?
            .and_then(|fetched| self.open(&fetched.joined())))
    }

    /// Writes the session. A login (`new_session`, or no session id yet) creates a record
    /// under a fresh id; any other write updates the existing record only if it still exists.
    ///
    /// # Errors
    /// [`Error::SessionExpired`] when the record to update is gone (logged out, ended by a
    /// back-channel logout, or expired): nothing is written and the session cookie is removed.
    async fn set(&self, session: &SessionData, options: WriteOptions, jar: &mut dyn CookieJar) -> Result<()> {
        self.write(session, options, None, jar).await.map(|_| ())
    }

    /// An update of the existing record ([`SessionBackend::update_fenced`]), only while the
    /// refresh lease is held with `token`; `Ok(false)` when the lease was lost (the record,
    /// written meanwhile by the lease's new holder, is left alone).
    ///
    /// # Errors
    /// As [`set`](Self::set): [`Error::SessionExpired`] when the record is gone.
    async fn set_fenced(
        &self,
        session: &SessionData,
        options: WriteOptions,
        lease_key: &str,
        token: u64,
        jar: &mut dyn CookieJar,
    ) -> Result<bool> {
        self.write(session, options, Some((lease_key, token)), jar).await
    }

    async fn delete(&self, jar: &mut dyn CookieJar) -> Result<()> {
        let id = self.current_id(&*jar);
        remove_chunked(jar, &self.name, &self.attributes);
        if let Some(id) = id {
            self.backend.delete(&id).await?;
        }
        Ok(())
    }

    async fn delete_by_logout(&self, key: &LogoutKey) -> Result<Option<usize>> {
        Ok(Some(self.backend.delete_by(key).await?))
    }
}

impl ServerSideStateStore {
    /// [`StateStore::set`], fenced by a refresh lease when `fence` is given (an update only):
    /// `Ok(false)` when the lease was lost.
    async fn write(
        &self,
        session: &SessionData,
        options: WriteOptions,
        fence: Option<(&str, u64)>,
        jar: &mut dyn CookieJar,
    ) -> Result<bool> {
        let json =
            serde_json::to_vec(session).map_err(|e| StoreError::with_source("serializing the session", e))?;
        // Refused before anything (an old record included) is touched.
        super::cookie::ensure_fits(json.len(), MAX_SERVER_SESSION_BYTES)?;
        let existing = self.current_id(&*jar);
        let (id, create) = match existing {
            Some(id) if !options.new_session => (id, false),
            old => {
                if let Some(old) = old {
                    self.backend.delete(&old).await?;
                }
                (oauth2::CsrfToken::new_random_len(32).secret().clone(), true)
            }
        };
        let sealed = self.sealer.seal(&self.record_salt(&id), &json);
        let keys = SessionKeys {
            sid: session.internal.sid.clone(),
            sub: session
                .user
                .get("sub")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        };
        let ttl = Duration::from_secs(options.expires_at.saturating_sub(now()).max(1));
        // Backend first: if it fails, the browser keeps its previous cookie and nothing points
        // at a missing record.
        if create {
            self.backend.set(&id, sealed.as_bytes(), &keys, ttl).await?;
        } else {
            let written = match fence {
                Some((lease_key, token)) => {
                    self.backend
                        .update_fenced(&id, sealed.as_bytes(), &keys, ttl, lease_key, token)
                        .await?
                }
                None => self.backend.update(&id, sealed.as_bytes(), &keys, ttl).await?,
            };
            if !written {
                if fence.is_some() && self.backend.get(&id).await?.is_some() {
                    // The lease expired and was taken over: the record is the new holder's.
                    tracing::warn!("refresh lease lost before the write; keeping the stored token set");
                    return Ok(false);
                }
                // Deleted since this request read it: never write it back.
                tracing::debug!("session record gone before an update; not recreating it");
                remove_chunked(jar, &self.name, &self.attributes);
                return Err(Error::SessionExpired);
            }
        }
        let pointer = serde_json::to_vec(&Pointer { id })
            .map_err(|e| StoreError::with_source("serializing the session id", e))?;
        write_chunked(
            jar,
            &self.name,
            &self.sealer.seal(&self.name, &pointer),
            &until(&self.attributes, options.expires_at),
        );
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cookies::MemoryCookieJar;
    use crate::store::MemoryBackend;
    use crate::store::cookie::tests::session;

    /// The id cookie of one browser is opened once; later reads find its id by the exact
    /// sealed bytes, and a changed cookie never hits (nor opens).
    #[tokio::test]
    async fn the_id_cookie_is_opened_once_and_only_its_exact_bytes_hit() {
        let backend: Arc<dyn SessionBackend> = Arc::new(MemoryBackend::new());
        let secrets = ["0123456789abcdef0123456789abcdef"];
        let store = ServerSideStateStore::new(backend, &secrets, "_a0_session", CookieAttributes::default());
        let mut jar = MemoryCookieJar::default();
        store
            .set(&session(100), WriteOptions::new(now() + 3600, true), &mut jar)
            .await
            .unwrap();
        let jar = jar.next_request();
        let cookies: Vec<(String, String)> = jar
            .names()
            .into_iter()
            .map(|n| {
                let v = jar.get(&n).unwrap();
                (n, v)
            })
            .collect();
        let read = |cookies: Vec<(String, String)>| {
            let store = store.clone();
            async move {
                let mut jar = MemoryCookieJar::from_request_cookies(cookies);
                store.get(&mut jar).await.unwrap()
            }
        };
        for _ in 0..3 {
            assert_eq!(read(cookies.clone()).await, Some(session(100)));
        }
        assert_eq!(store.ids.stats(), (2, 1, 1), "opened once, then hits");
        let mut tampered = cookies.clone();
        let value = &mut tampered[0].1;
        let last = value.pop().unwrap();
        value.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(read(tampered).await, None);
        assert_eq!(
            store.ids.stats(),
            (2, 2, 1),
            "a changed cookie misses and is not cached"
        );
    }
}
