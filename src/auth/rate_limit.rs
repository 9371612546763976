//! The REST rate limiter (spec §1.2 row 3): a fixed window per client IP and
//! route, kept in the store because every request is a fresh instance.

use crate::settings::RateLimit;
use crate::store::schema::{Date, RateWindow};

/// What the limiter decided for this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// The window to store.
    pub window: RateWindow,
    /// `X-RateLimit-Limit`.
    pub limit: u32,
    /// `X-RateLimit-Remaining`.
    pub remaining: u32,
    /// Seconds to wait, when the call is refused.
    pub refused_for: Option<u64>,
}

impl RateDecision {
    /// The headers upstream sets whenever the limiter is evaluated.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("X-RateLimit-Limit", self.limit.to_string()),
            ("X-RateLimit-Remaining", self.remaining.to_string()),
            ("X-RateLimit-Reset", self.window.reset_at.millis.to_string()),
        ]
    }
}

/// Counts this call in `stored` (or a new window) at time `now`.
pub fn count_call(stored: Option<RateWindow>, settings: &RateLimit, now: Date) -> RateDecision {
    let window = match stored {
        Some(w) if w.reset_at > now => RateWindow { count: w.count.saturating_add(1), reset_at: w.reset_at },
        _ => RateWindow { count: 1, reset_at: Date { millis: now.millis + i64::from(settings.window_ms) } },
    };
    let refused_for =
        (window.count > settings.calls).then(|| u64::try_from(window.reset_at.millis - now.millis).unwrap_or(0).div_ceil(1000));
    RateDecision { window, limit: settings.calls, remaining: settings.calls.saturating_sub(window.count), refused_for }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: RateLimit = RateLimit { enabled: true, calls: 2, window_ms: 60_000 };

    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
        let t0 = Date { millis: 1_000_000 };
        let first = count_call(None, &SETTINGS, t0);
        assert_eq!((first.remaining, first.refused_for), (1, None));
        let second = count_call(Some(first.window), &SETTINGS, Date { millis: 1_010_000 });
        assert_eq!((second.remaining, second.refused_for), (0, None));
        let third = count_call(Some(second.window), &SETTINGS, Date { millis: 1_010_500 });
        assert_eq!(third.refused_for, Some(50));
        let later = count_call(Some(third.window), &SETTINGS, Date { millis: 1_060_000 });
        assert_eq!((later.window.count, later.refused_for), (1, None));
    }
}
