//! The flows, one file each: `start_*` builds a transaction and a URL, `complete_*` takes the
//! callback, finds the transaction by `state`, talks to the provider and writes the session.

pub(crate) mod access_token;
pub(crate) mod backchannel;
pub(crate) mod ciba;
pub(crate) mod connect;
pub(crate) mod connection_token;
pub(crate) mod dispatch;
pub(crate) mod link;
pub(crate) mod login;
pub(crate) mod logout;
pub(crate) mod mfa;
pub(crate) mod refresh;
pub(crate) mod token_exchange;
