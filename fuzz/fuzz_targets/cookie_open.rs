//! The session-cookie read path: an arbitrary `Cookie` header → the in-memory jar → the
//! chunk reader → the JWE opener → the session document, plus the raw opener and the
//! seal/chunk round trips.
//!
//! Invariants: reading never fails, never panics and writes no cookie; whatever is sealed
//! opens to exactly itself and only under its own salt; whatever is chunked reads back
//! exactly, each cookie within the browser's 4096-byte limit, even over a jar full of
//! hostile cookies of the same family; a session document survives the store.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::sync::LazyLock;
use std::task::{Context, Poll, Waker};

use auth_core::cookies::{CookieAttributes, MemoryCookieJar};
use auth_core::internal::{
    CookieStateStore, Sealer, SessionData, StateStore as _, WriteOptions, read_chunked, write_chunked,
};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-cookie-secret-0123456789abcdef";
const OLD_SECRET: &str = "fuzz-rotated-out-secret-0123456789abcdef";
const NAME: &str = "_a0_session";
/// The cookie store's own chunk limit.
const MAX_CHUNKS: usize = 20;
/// Far in the future, so the written cookies carry a `Max-Age`.
const EXPIRES_AT: u64 = 4_000_000_000;

static STORE: LazyLock<CookieStateStore> =
    LazyLock::new(|| CookieStateStore::new(&[SECRET, OLD_SECRET], NAME, CookieAttributes::default()));
static SEALER: LazyLock<Sealer> = LazyLock::new(|| Sealer::new(&[SECRET, OLD_SECRET], &[NAME]));

/// The cookie store never waits on anything: its futures finish on the first poll.
fn now_or_never<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the cookie store waited"),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    // 1. The bytes as a Cookie header.
    let mut jar = MemoryCookieJar::from_cookie_header(&text);
    let read = now_or_never(STORE.get(&mut jar));
    assert!(read.is_ok(), "reading a session cookie never fails");
    assert!(jar.response_cookies().is_empty(), "reading writes no cookie");
    let _ = read_chunked(&jar, NAME, MAX_CHUNKS);

    // 2. The bytes as one sealed value.
    let _ = SEALER.open(NAME, &text);

    // 3. Seal round trip: opens to itself, under its salt only.
    let sealed = SEALER.seal(NAME, data);
    assert_eq!(SEALER.open(NAME, &sealed).as_deref(), Some(data));
    assert_eq!(
        SEALER.open("_a0_tx:other", &sealed),
        None,
        "the salt binds the value"
    );

    // 4. Chunk round trip over whatever cookies the header already had, through a header.
    let mut out = MemoryCookieJar::from_cookie_header(&text);
    write_chunked(&mut out, NAME, &sealed, &CookieAttributes::default());
    for cookie in out.response_cookies() {
        assert!(
            cookie.name.len() + cookie.value.len() <= 4096,
            "{} too big",
            cookie.name
        );
    }
    let next = MemoryCookieJar::from_cookie_header(&out.next_request().to_cookie_header());
    assert_eq!(
        read_chunked(&next, NAME, MAX_CHUNKS).as_deref(),
        Some(sealed.as_str())
    );

    // 5. A session document survives the store, whatever cookies were there before.
    if let Ok(session) = serde_json::from_slice::<SessionData>(data) {
        let mut jar = MemoryCookieJar::from_cookie_header(&text);
        let written = now_or_never(STORE.set(&session, WriteOptions::new(EXPIRES_AT, false), &mut jar));
        assert!(written.is_ok());
        let mut next = MemoryCookieJar::from_cookie_header(&jar.next_request().to_cookie_header());
        let back = now_or_never(STORE.get(&mut next)).expect("read back");
        assert_eq!(back.as_ref(), Some(&session), "the session survives the store");
    }
});
