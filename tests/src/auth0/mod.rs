//! An in-process **Auth0 tenant emulator** for the flows no local OpenID Provider offers:
//! user linking and unlinking, Connected Accounts (My Account API), Token Vault and
//! multi-resource refresh tokens (MRRT).
//!
//! [`Auth0Emulator::start`] serves an Axum app on a random `127.0.0.1` port. It follows
//! `auth0-wire.md` strictly: every request is checked and anything Auth0 would refuse (or that
//! betrays a client defect: repeated or empty parameters, stringified `None`, unknown fields,
//! wrong client authentication, …) is answered `4xx` with a precise reason — an OAuth JSON error
//! (`{"error", "error_description"}`) on OAuth endpoints, `application/problem+json` on the My
//! Account API. Every request is recorded ([`Auth0Emulator::requests`]); refusals are also printed
//! to stderr as `[auth0-emulator] refused …`, so a failing end-to-end test shows why.
//!
//! Users consent automatically: `/authorize` and the Connected Accounts `connect_uri` redirect
//! straight back to the client.
//!
//! ```no_run
//! # async fn demo() {
//! use auth_tests::auth0::{Auth0Emulator, EMU_CLIENT_ID};
//!
//! let emu = Auth0Emulator::start().await;
//! // configure the library with `.domain(emu.domain())`, client EMU_CLIENT_ID / EMU_CLIENT_SECRET
//! println!("issuer {} for {EMU_CLIENT_ID}", emu.issuer());
//! assert!(emu.refused().is_empty(), "{:#?}", emu.refused());
//! # }
//! ```
//!
//! Choices where `auth0-wire.md` is silent are listed in the docs of the items concerned and
//! summed up here:
//! - `invalid_grant` is answered with status **403**, as Auth0 does (other OAuth errors 400,
//!   `invalid_client` 401).
//! - Token endpoint requests may carry only the parameters of their grant (plus `client_id` /
//!   `client_secret`); anything else is refused. `/authorize` accepts extra parameters (Auth0
//!   passes them to Actions) but refuses secrets (`client_secret`, `code_verifier`,
//!   `client_assertion`) and `request` objects.
//! - Any parameter with an empty value or the value `None`/`null`/`undefined`/`nil` is refused,
//!   everywhere (the one exception is the valueless `federated` flag of `/v2/logout`).
//! - Token Vault for a connection the user has no connected account (nor linked identity) for:
//!   `400 {"error":"federated_connection_refresh_token_not_found"}`.
//! - ID tokens carry profile claims only with the `profile` scope and `email`/`email_verified`
//!   only with `email` (like Auth0); custom claims always.
//! - Custom Token Exchange (`token_exchange.rs`): the profile's Action is scripted per
//!   `subject_token_type` ([`Auth0Emulator::token_exchange_profile`]); its refusals are
//!   recorded as injected, an unregistered type is a genuine `400 invalid_request`.
//! - DPoP (`dpop.rs`): proofs are checked whenever a `DPoP` header comes; tokens of the
//!   authorization code, refresh and token exchange grants are then bound (`token_type: DPoP`,
//!   `cnf.jkt`), CIBA and Token Vault answers stay `Bearer`; the `use_dpop_nonce` challenge is
//!   recorded as injected. [`Auth0Emulator::start_api`] serves an API that checks how each
//!   token is presented.
//! - [`EmulatorOptions::tls`] serves HTTPS with a test CA ([`EMU_TLS_CA_PEM`]).

mod advanced;
mod ciba;
mod dpop;
mod keys;
mod my_account;
mod oauth;
mod state;
mod tls;
mod token_exchange;
mod wire;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

pub use self::advanced::{MFA_POLICY, Telemetry, decode_telemetry};
pub use self::ciba::{CIBA_GRANT_TYPE, CibaOutcome, CibaPoll, CibaRecord, CibaScript};
pub use self::dpop::{ApiRequest, EmulatedApi};
use self::keys::Keys;
use self::state::State;
pub use self::tls::EMU_TLS_CA_PEM;
pub(crate) use self::tls::{SERVER_CERT_PEM, SERVER_KEY_PEM};
pub use self::token_exchange::{ExchangeAction, TOKEN_EXCHANGE_GRANT_TYPE};
use self::wire::{Answer, Refusal, Req, parse_pairs};

/// `client_id` of the default confidential client (`client_secret_basic`).
pub const EMU_CLIENT_ID: &str = "emu-client";
/// Secret of [`EMU_CLIENT_ID`].
pub const EMU_CLIENT_SECRET: &str = "emu-client-secret-0123456789abcdef";
/// `client_id` of the default public client (token endpoint auth method `none`).
pub const EMU_PUBLIC_ID: &str = "emu-public";
/// A callback URL always registered. Nothing listens there: use it for raw flows that stop at
/// the redirect.
pub const EMU_REDIRECT_URI: &str = "http://127.0.0.1:1/callback";
/// Callback URLs always registered (in addition to [`EmulatorOptions::redirect_uris`]).
pub const EMU_DEFAULT_REDIRECT_URIS: [&str; 3] = [
    "http://127.0.0.1:3000/auth/callback",
    "http://localhost:3000/auth/callback",
    EMU_REDIRECT_URI,
];
/// Logout return URLs always registered (in addition to
/// [`EmulatorOptions::post_logout_redirect_uris`]).
pub const EMU_DEFAULT_POST_LOGOUT_REDIRECT_URIS: [&str; 2] =
    ["http://127.0.0.1:3000/", "http://localhost:3000/"];
/// `sub` of the default user.
pub const EMU_DEFAULT_SUB: &str = "auth0|alice";
/// The Connected Accounts scopes of the My Account API (audience `{issuer}me/`) that MRRT may
/// grant.
pub const MY_ACCOUNT_SCOPES: [&str; 3] = [
    "create:me:connected_accounts",
    "read:me:connected_accounts",
    "delete:me:connected_accounts",
];
/// `grant_type` of the Token Vault exchange.
pub const TOKEN_VAULT_GRANT_TYPE: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";
/// `subject_token_type` of the Token Vault exchange.
pub const REFRESH_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:refresh_token";
/// `requested_token_type` (and `issued_token_type`) of the Token Vault exchange.
pub const FEDERATED_TOKEN_TYPE: &str = "http://auth0.com/oauth/token-type/federated-connection-access-token";

/// Largest request body the emulator reads.
const MAX_BODY: usize = 1 << 20;

/// An application registered with the emulated tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedClient {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret` (`None` for a public client).
    pub client_secret: Option<String>,
    /// Token endpoint authentication method: `client_secret_basic`, `client_secret_post` or
    /// `none`. A request authenticating any other way gets `401 invalid_client`.
    pub auth_method: &'static str,
}

impl EmulatedClient {
    /// The default confidential client ([`EMU_CLIENT_ID`], `client_secret_basic`).
    pub fn default_confidential() -> EmulatedClient {
        EmulatedClient {
            client_id: EMU_CLIENT_ID.to_owned(),
            client_secret: Some(EMU_CLIENT_SECRET.to_owned()),
            auth_method: "client_secret_basic",
        }
    }

    /// The default public client ([`EMU_PUBLIC_ID`], `none`).
    pub fn default_public() -> EmulatedClient {
        EmulatedClient {
            client_id: EMU_PUBLIC_ID.to_owned(),
            client_secret: None,
            auth_method: "none",
        }
    }
}

/// A connection users can link or connect (Connected Accounts / Token Vault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedConnection {
    /// Connection name, e.g. `google-oauth2`.
    pub name: String,
    /// Strategy, e.g. `google-oauth2`.
    pub strategy: String,
    /// Upstream scopes the connection may request; `scopes` of a connect request must be a
    /// subset, and they are the default when the request has none.
    pub scopes: Vec<String>,
}

impl EmulatedConnection {
    /// A connection named `name` with strategy `strategy` and `scopes`.
    pub fn new(name: &str, strategy: &str, scopes: &[&str]) -> EmulatedConnection {
        EmulatedConnection {
            name: name.to_owned(),
            strategy: strategy.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// Startup options of an [`Auth0Emulator`].
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// Registered applications; default [`EmulatedClient::default_confidential`] and
    /// [`EmulatedClient::default_public`].
    pub clients: Vec<EmulatedClient>,
    /// Extra allowed callback URLs (exact match), for every client, in addition to
    /// [`EMU_DEFAULT_REDIRECT_URIS`]. Also the allowed `redirect_uri`s of Connected Accounts.
    pub redirect_uris: Vec<String>,
    /// Extra allowed `returnTo` / `post_logout_redirect_uri` values, in addition to
    /// [`EMU_DEFAULT_POST_LOGOUT_REDIRECT_URIS`].
    pub post_logout_redirect_uris: Vec<String>,
    /// Access token lifetime in seconds (`expires_in`), default 3600. ID tokens live 10 hours.
    pub access_token_ttl: u64,
    /// Connections of the tenant; default `google-oauth2` (scopes `openid email profile
    /// https://www.googleapis.com/auth/calendar.readonly`) and `github` (`read:user user:email`).
    pub connections: Vec<EmulatedConnection>,
    /// Refresh token rotation (default `false`, Auth0's default). When on, every refresh
    /// returns a new refresh token and the old one answers `invalid_grant`.
    pub rotate_refresh_tokens: bool,
    /// Serve HTTPS (default `false`): the issuer becomes `https://127.0.0.1:PORT/`, with a
    /// certificate for `127.0.0.1` and `localhost` signed by the test CA [`EMU_TLS_CA_PEM`]
    /// (clients trust it, e.g. through `SSL_CERT_FILE`) — the `AUTH0_DOMAIN` configuration
    /// style of a real tenant.
    pub tls: bool,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            clients: vec![
                EmulatedClient::default_confidential(),
                EmulatedClient::default_public(),
            ],
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            access_token_ttl: 3600,
            connections: vec![
                EmulatedConnection::new(
                    "google-oauth2",
                    "google-oauth2",
                    &[
                        "openid",
                        "email",
                        "profile",
                        "https://www.googleapis.com/auth/calendar.readonly",
                    ],
                ),
                EmulatedConnection::new("github", "github", &["read:user", "user:email"]),
            ],
            rotate_refresh_tokens: false,
            tls: false,
        }
    }
}

/// One request the emulator received, with its verdict.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path as sent (still percent-encoded), without the query.
    pub path: String,
    /// Query parameters in order (repeats kept).
    pub query: Vec<(String, String)>,
    /// Form body parameters in order (only for `application/x-www-form-urlencoded` bodies).
    pub form: Vec<(String, String)>,
    /// JSON body (only for parseable `application/json` bodies).
    pub json: Option<Value>,
    /// The raw body as text (lossy UTF-8).
    pub body: String,
    /// Every request header (lower-case name, value).
    pub headers: Vec<(String, String)>,
    /// Scheme of the `Authorization` header (`"Basic"`, `"Bearer"`, …), `None` without one.
    pub auth_scheme: Option<String>,
    /// The client the emulator authenticated (token, PAR and revocation endpoints).
    pub client_id: Option<String>,
    /// Status answered.
    pub status: u16,
    /// OAuth `error` code or problem title, when answered with an error.
    pub error: Option<String>,
    /// Why the request was refused (or what else is worth knowing).
    pub reason: Option<String>,
    /// A scripted outcome, not a refusal by a check: answered because of
    /// [`Auth0Emulator::fail_next_my_account`] or a policy a test set (e.g.
    /// [`Auth0Emulator::require_mfa_for`]'s `mfa_required`).
    pub injected: bool,
}

impl RecordedRequest {
    /// A query parameter, else a form parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .chain(self.form.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A request header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Answered `4xx` by a check (not an injected failure).
    pub fn is_refused(&self) -> bool {
        (400..500).contains(&self.status) && !self.injected
    }
}

/// Immutable configuration plus the mutable state, shared with the server task.
pub(crate) struct Shared {
    /// `http://127.0.0.1:PORT/`.
    pub(crate) issuer: String,
    pub(crate) opts: EmulatorOptions,
    pub(crate) keys: Keys,
    pub(crate) state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The registered client `client_id`.
    pub(crate) fn client(&self, client_id: &str) -> Option<&EmulatedClient> {
        self.opts.clients.iter().find(|c| c.client_id == client_id)
    }

    /// The connection `name`.
    pub(crate) fn connection(&self, name: &str) -> Option<&EmulatedConnection> {
        self.opts.connections.iter().find(|c| c.name == name)
    }

    /// Whether `uri` is an allowed callback URL.
    pub(crate) fn redirect_uri_allowed(&self, uri: &str) -> bool {
        EMU_DEFAULT_REDIRECT_URIS.contains(&uri) || self.opts.redirect_uris.iter().any(|u| u == uri)
    }

    /// All allowed callback URLs (for messages).
    pub(crate) fn redirect_uris(&self) -> String {
        let mut all: Vec<&str> = EMU_DEFAULT_REDIRECT_URIS.to_vec();
        all.extend(self.opts.redirect_uris.iter().map(String::as_str));
        all.join(", ")
    }

    /// Whether `uri` is an allowed logout return URL.
    pub(crate) fn logout_uri_allowed(&self, uri: &str) -> bool {
        EMU_DEFAULT_POST_LOGOUT_REDIRECT_URIS.contains(&uri)
            || self.opts.post_logout_redirect_uris.iter().any(|u| u == uri)
    }

    /// `{issuer}me/`, the My Account API audience.
    pub(crate) fn my_account_audience(&self) -> String {
        format!("{}me/", self.issuer)
    }

    /// `{issuer}userinfo`, the audience of access tokens without an `audience`.
    pub(crate) fn userinfo_audience(&self) -> String {
        format!("{}userinfo", self.issuer)
    }
}

/// A running Auth0 tenant emulator (see the [module docs](self)). The server stops when this is
/// dropped.
pub struct Auth0Emulator {
    base: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Auth0Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth0Emulator")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Drop for Auth0Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Auth0Emulator {
    /// Starts an emulator with default [`EmulatorOptions`].
    pub async fn start() -> Auth0Emulator {
        Auth0Emulator::start_with(EmulatorOptions::default()).await
    }

    /// Starts an emulator on a random loopback port. Panics on an invalid client
    /// `auth_method` or when it cannot listen.
    pub async fn start_with(opts: EmulatorOptions) -> Auth0Emulator {
        for client in &opts.clients {
            let ok = match client.auth_method {
                "client_secret_basic" | "client_secret_post" => client.client_secret.is_some(),
                "none" => client.client_secret.is_none(),
                _ => false,
            };
            assert!(
                ok,
                "auth0 emulator: client {:?} has auth_method {:?} and secret {:?}: use client_secret_basic or \
                 client_secret_post with a secret, or none without one",
                client.client_id, client.auth_method, client.client_secret
            );
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("auth0 emulator: bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("auth0 emulator: local addr");
        let tls = opts.tls;
        let base = format!("{}://{addr}", if tls { "https" } else { "http" });
        let state = State {
            current_sub: EMU_DEFAULT_SUB.to_owned(),
            users: [(
                EMU_DEFAULT_SUB.to_owned(),
                json!({"name": "Alice", "email": "alice@example.test", "email_verified": true}),
            )]
            .into_iter()
            .collect(),
            ..State::default()
        };
        let shared = Arc::new(Shared {
            issuer: format!("{base}/"),
            opts,
            keys: Keys::load(),
            state: Mutex::new(state),
        });
        let app = axum::Router::new()
            .fallback(serve_request)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if tls {
                let _ = axum::serve(tls::TlsListener::new(listener), app).await;
            } else {
                let _ = axum::serve(listener, app).await;
            }
        });
        Auth0Emulator { base, shared, server }
    }

    /// `http://127.0.0.1:PORT` (`https://` with [`EmulatorOptions::tls`]) — what the library is
    /// configured with as the Auth0 domain.
    pub fn domain(&self) -> String {
        self.base.clone()
    }

    /// `http://127.0.0.1:PORT/` (`https://` with [`EmulatorOptions::tls`]) — the issuer, with
    /// the trailing slash, exactly as Auth0.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// `domain()` + `path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `{issuer}me/`, the My Account API audience.
    pub fn my_account_audience(&self) -> String {
        self.shared.my_account_audience()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The requests answered `4xx` by a strict check (injected failures excluded).
    pub fn refused(&self) -> Vec<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.is_refused())
            .cloned()
            .collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// How many requests were made to `path` (whatever the answer), only those with form
    /// parameter `grant_type` equal to `grant_type` when given.
    pub fn count(&self, path: &str, grant_type: Option<&str>) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.path == path)
            .filter(|r| grant_type.is_none_or(|g| r.param("grant_type") == Some(g)))
            .count()
    }

    /// Makes `sub` the user who logs in at the next `/authorize` (and remembers its profile
    /// `claims`, a JSON object, for all its future ID tokens). The default user is
    /// [`EMU_DEFAULT_SUB`] (`name` Alice, `email` alice@example.test, `email_verified` true).
    pub fn set_user(&self, sub: &str, claims: Value) {
        assert!(claims.is_object(), "set_user: claims must be a JSON object");
        let mut st = self.shared.lock();
        st.current_sub = sub.to_owned();
        st.users.insert(sub.to_owned(), claims);
    }

    /// The connected accounts of `sub`, as the My Account API lists them.
    pub fn connected_accounts(&self, sub: &str) -> Vec<Value> {
        self.shared.lock().accounts.get(sub).cloned().unwrap_or_default()
    }

    /// The identities linked to `sub`: (connection, `requested_connection_scope` or `""`).
    pub fn linked_identities(&self, sub: &str) -> Vec<(String, String)> {
        self.shared.lock().linked.get(sub).cloned().unwrap_or_default()
    }

    /// Makes the next My Account API call (whatever it is) answer `status` with `problem` as
    /// `application/problem+json`. That request is recorded with `injected: true`.
    pub fn fail_next_my_account(&self, status: u16, problem: Value) {
        self.shared.lock().fail_next_my_account = Some((status, problem));
    }

    /// Test knob (a misbehaving provider): from now on, link and unlink authorizations issue
    /// their code for `sub` instead of the user named by `id_token_hint`; `None` restores the
    /// normal behaviour.
    pub fn answer_account_flows_as(&self, sub: Option<&str>) {
        self.shared.lock().account_flow_sub = sub.map(str::to_owned);
    }

    /// Test knob (a misbehaving provider): from now on, access and ID tokens (code exchange
    /// and refresh) carry the claims of `organization` instead of the requested one; `None`
    /// restores the normal behaviour.
    pub fn issue_organization(&self, organization: Option<&str>) {
        self.shared.lock().token_organization = organization.map(str::to_owned);
    }

    /// Test knob: with `true`, `/oauth/par` refuses every request with `400 invalid_request`
    /// while discovery keeps advertising it, like an Auth0 tenant where PAR is not enabled.
    pub fn disable_par(&self, disabled: bool) {
        self.shared.lock().par_disabled = disabled;
    }

    /// Revokes every refresh token of `sub` (they answer `invalid_grant` from now on).
    pub fn revoke_refresh_tokens(&self, sub: &str) {
        for grant in self.shared.lock().refresh_tokens.values_mut() {
            if grant.sub == sub {
                grant.revoked = Some("revoked by the test (revoke_refresh_tokens)");
            }
        }
    }

    /// An access token JWT signed by the emulator for `sub`, `audience` and `scope`, issued to
    /// [`EMU_CLIENT_ID`], expiring in `ttl_secs` (may be negative for an expired token).
    pub fn mint_access_token(&self, sub: &str, audience: &str, scope: &str, ttl_secs: i64) -> String {
        let now = wire::now();
        let exp = now.saturating_add_signed(ttl_secs);
        self.shared.keys.sign(&json!({
            "iss": self.shared.issuer,
            "sub": sub,
            "aud": audience,
            "azp": EMU_CLIENT_ID,
            "scope": scope,
            "iat": now.min(exp),
            "exp": exp,
            "jti": wire::random_token(12),
        }))
    }

    /// The public JWKS the emulator serves at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Value {
        self.shared.keys.jwks().clone()
    }
}

/// The single Axum handler: reads the request, dispatches, records, answers.
async fn serve_request(AxumState(shared): AxumState<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let query = parse_pairs(parts.uri.query().unwrap_or("").as_bytes());
    let req = Req {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: &query,
        headers: &parts.headers,
        body: &bytes,
    };
    let media = req.media_type();
    let mut rec = RecordedRequest {
        method: req.method.to_owned(),
        path: req.path.to_owned(),
        query: query.clone(),
        form: if media.as_deref() == Some("application/x-www-form-urlencoded") {
            parse_pairs(&bytes)
        } else {
            Vec::new()
        },
        json: if media.as_deref() == Some("application/json") {
            serde_json::from_slice(&bytes).ok()
        } else {
            None
        },
        body: String::from_utf8_lossy(&bytes).into_owned(),
        headers: header_pairs(&parts.headers),
        auth_scheme: req.authorization().map(|(scheme, _)| scheme.to_owned()),
        ..RecordedRequest::default()
    };

    let mut st = shared.lock();
    let answer = match advanced::check_telemetry(&mut st, &req)
        .and_then(|()| route(&shared, &mut st, &req, &mut rec))
    {
        Ok(answer) => answer,
        Err(refusal) => refusal.into_answer(),
    };
    rec.status = answer.status;
    rec.error.clone_from(&answer.error);
    rec.reason.clone_from(&answer.reason);
    rec.injected = answer.injected;
    if rec.is_refused() {
        eprintln!(
            "[auth0-emulator] refused {} {}: {} {}: {}",
            rec.method,
            rec.path,
            rec.status,
            rec.error.as_deref().unwrap_or("-"),
            rec.reason.as_deref().unwrap_or("-")
        );
    }
    st.requests.push(rec);
    drop(st);
    into_response(answer)
}

fn route(sh: &Shared, st: &mut State, req: &Req<'_>, rec: &mut RecordedRequest) -> Result<Answer, Refusal> {
    let endpoints: [(&str, &str); 10] = [
        ("GET", "/.well-known/openid-configuration"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/authorize"),
        ("POST", "/oauth/par"),
        ("POST", "/oauth/token"),
        ("POST", "/oauth/revoke"),
        ("GET", "/userinfo"),
        ("GET", "/v2/logout"),
        ("GET", "/oidc/logout"),
        ("GET", "/connect"),
    ];
    match (req.method, req.path) {
        ("GET", "/.well-known/openid-configuration") => {
            oauth::discovery(sh, req).map(|a| ciba::advertise(sh, st, advanced::adjust_discovery(st, a)))
        }
        ("GET", "/.well-known/jwks.json") => oauth::jwks(sh, req),
        ("GET", "/authorize") => oauth::authorize(sh, st, req),
        ("POST", "/oauth/par") => oauth::par(sh, st, req, rec),
        ("POST", "/bc-authorize") => ciba::bc_authorize(sh, st, req, rec),
        ("POST", "/oauth/token") => oauth::token(sh, st, req, rec),
        ("POST", "/oauth/revoke") => oauth::revoke(sh, st, req, rec),
        ("GET", "/userinfo") => oauth::userinfo(sh, st, req),
        ("GET", "/v2/logout") => oauth::v2_logout(sh, req),
        ("GET", "/oidc/logout") => oauth::oidc_logout(sh, req),
        ("GET", "/connect") => my_account::connect_redirect(sh, st, req),
        (_, path) if path.starts_with("/me/") => my_account::handle(sh, st, req),
        (method, path) => match endpoints.iter().find(|(_, p)| *p == path) {
            Some((allowed, _)) => Err(Refusal::method_not_allowed(format!(
                "{method} {path}: only {allowed} is served here"
            ))),
            None => Err(Refusal::not_found(format!(
                "{method} {path}: the emulated Auth0 tenant serves no such endpoint"
            ))),
        },
    }
}

fn into_response(answer: Answer) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if let Some(ct) = answer.content_type {
        headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    for (name, value) in answer.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
    response
}

/// Request headers as recorded: lower-case names, values as (lossy) text.
pub(crate) fn header_pairs(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}
