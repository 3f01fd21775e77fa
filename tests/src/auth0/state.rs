//! The emulator's mutable tenant state.

use std::collections::HashMap;

use serde_json::Value;

use super::RecordedRequest;

/// What kind of authorization request it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A normal login.
    Login,
    /// `scope=openid link_account`: link `connection` (with the upstream `scope`, if any).
    Link {
        connection: String,
        scope: Option<String>,
    },
    /// `scope=openid unlink_account`: unlink `connection`.
    Unlink { connection: String },
}

/// A validated authorization request (from `/authorize` or pushed with PAR).
#[derive(Debug, Clone)]
pub(crate) struct AuthzRequest {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) state: String,
    pub(crate) nonce: String,
    pub(crate) code_challenge: String,
    pub(crate) scope: Vec<String>,
    pub(crate) audience: Option<String>,
    pub(crate) organization: Option<String>,
    pub(crate) response_mode: Option<String>,
    pub(crate) mode: Mode,
    /// Verified claims of `id_token_hint`.
    pub(crate) hint: Option<Value>,
    pub(crate) authorization_details: Option<Value>,
    /// `acr_values` (only the MFA policy is accepted).
    pub(crate) acr_values: Option<String>,
}

/// A pushed authorization request.
#[derive(Debug, Clone)]
pub(crate) struct ParEntry {
    pub(crate) request: AuthzRequest,
    pub(crate) expires_at: u64,
    pub(crate) used: bool,
}

/// An issued authorization code.
#[derive(Debug, Clone)]
pub(crate) struct CodeGrant {
    pub(crate) request: AuthzRequest,
    pub(crate) sub: String,
    pub(crate) sid: String,
    pub(crate) auth_time: u64,
    pub(crate) expires_at: u64,
    pub(crate) used: bool,
}

/// An issued refresh token: the original grant it stands for.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub(crate) client_id: String,
    pub(crate) sub: String,
    pub(crate) sid: String,
    pub(crate) scope: Vec<String>,
    pub(crate) audience: Option<String>,
    pub(crate) organization: Option<String>,
    pub(crate) revoked: Option<&'static str>,
}

/// A started Connected Accounts flow (`POST …/connect`).
#[derive(Debug, Clone)]
pub(crate) struct ConnectSession {
    pub(crate) sub: String,
    pub(crate) connection: String,
    pub(crate) redirect_uri: String,
    pub(crate) state: String,
    pub(crate) code_challenge: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) ticket: String,
    pub(crate) ticket_used: bool,
    pub(crate) connect_code: Option<String>,
    pub(crate) expires_at: u64,
}

/// Everything that changes while the emulator runs.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Who logs in at the next `/authorize`.
    pub(crate) current_sub: String,
    /// Profile claims by `sub`.
    pub(crate) users: HashMap<String, Value>,
    pub(crate) par: HashMap<String, ParEntry>,
    pub(crate) codes: HashMap<String, CodeGrant>,
    pub(crate) refresh_tokens: HashMap<String, RefreshGrant>,
    /// Linked identities by primary `sub`: (connection, upstream scope).
    pub(crate) linked: HashMap<String, Vec<(String, String)>>,
    /// By `auth_session`.
    pub(crate) connect_sessions: HashMap<String, ConnectSession>,
    /// Connected accounts by `sub`, oldest first.
    pub(crate) accounts: HashMap<String, Vec<Value>>,
    pub(crate) fail_next_my_account: Option<(u16, Value)>,
    /// Test knob: link/unlink codes are issued for this `sub` instead of the `id_token_hint`'s
    /// (a misbehaving or hostile provider switching identities).
    pub(crate) account_flow_sub: Option<String>,
    /// Test knob: tokens carry this organization instead of the requested one.
    pub(crate) token_organization: Option<String>,
    /// Test knob: `/oauth/par` refuses every request (a tenant without PAR enabled still
    /// advertising the endpoint).
    pub(crate) par_disabled: bool,
    pub(crate) requests: Vec<RecordedRequest>,
    /// DPoP: seen `jti`s, knobs (`dpop.rs`).
    pub(crate) dpop: super::dpop::DpopState,
    /// Token Exchange Profiles (`token_exchange.rs`).
    pub(crate) token_exchange: super::token_exchange::ExchangeState,
    /// Telemetry expectations, MFA policy, login-option knobs (see `advanced.rs`).
    pub(crate) advanced: super::advanced::AdvancedState,
    /// CIBA requests, scripts and knobs (`ciba.rs`).
    pub(crate) ciba: super::ciba::CibaState,
    /// Counter for unique ids.
    pub(crate) seq: u64,
}

impl State {
    /// A fresh sequence number.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The profile claims of `sub` (an empty object for an unknown user).
    pub(crate) fn user_claims(&self, sub: &str) -> Value {
        self.users
            .get(sub)
            .cloned()
            .unwrap_or_else(|| Value::Object(serde_json::Map::new()))
    }
}
