//! Session lifetimes: rolling inactivity and absolute.
//!
//! A session written by another SDK (no `last_active`) counts its inactivity from
//! `internal.created_at`.

use std::time::Duration;

use crate::session::SessionData;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    /// `None`: not rolling.
    pub(crate) inactivity: Option<Duration>,
    pub(crate) absolute: Duration,
}

impl Lifetimes {
    fn last_active(s: &SessionData) -> u64 {
        s.internal.last_active.unwrap_or(s.internal.created_at)
    }

    /// When `s` ends if nothing else happens.
    pub(crate) fn expires_at(&self, s: &SessionData) -> u64 {
        let absolute = s.internal.created_at.saturating_add(self.absolute.as_secs());
        match self.inactivity {
            Some(i) => absolute.min(Self::last_active(s).saturating_add(i.as_secs())),
            None => absolute,
        }
    }

    pub(crate) fn is_expired(&self, s: &SessionData, now: u64) -> bool {
        now >= self.expires_at(s)
    }

    /// Whether activity at `now` should be written back: when a twentieth of the inactivity
    /// window has passed since the last write, so an active user's cookie is re-issued a few
    /// times a day rather than on every request.
    pub(crate) fn needs_touch(&self, s: &SessionData, now: u64) -> bool {
        let Some(i) = self.inactivity else { return false };
        let step = (i.as_secs() / 20).max(1);
        now.saturating_sub(Self::last_active(s)) >= step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(created: u64, last: Option<u64>) -> SessionData {
        let mut s: SessionData = serde_json::from_value(
            serde_json::json!({"user": {"sub": "u"}, "internal": {"sid": "s", "created_at": created}}),
        )
        .unwrap();
        s.internal.last_active = last;
        s
    }

    #[test]
    fn rolling_and_absolute() {
        let l = Lifetimes {
            inactivity: Some(Duration::from_secs(100)),
            absolute: Duration::from_secs(1000),
        };
        let s = session(0, None);
        assert_eq!(
            l.expires_at(&s),
            100,
            "a Python-SDK session counts from created_at"
        );
        assert!(!l.is_expired(&s, 99));
        assert!(l.is_expired(&s, 100));
        let s = session(0, Some(950));
        assert_eq!(l.expires_at(&s), 1000, "absolute caps the rolling window");
        assert!(!l.needs_touch(&session(0, Some(10)), 14));
        assert!(l.needs_touch(&session(0, Some(10)), 15));
        let fixed = Lifetimes {
            inactivity: None,
            absolute: Duration::from_secs(1000),
        };
        assert_eq!(fixed.expires_at(&session(5, Some(6))), 1005);
        assert!(!fixed.needs_touch(&session(5, Some(6)), 900));
    }
}
