//! A wall clock the tests control.
//!
//! This is a test-only seam: nothing in `spin.toml` (or in Spin) exposes it.
//! The guest's `wasi:clocks/wall-clock` reads a [`TestClock`]; by default it
//! follows the real clock. The monotonic clock is always the real one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime_wasi::HostWallClock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The host's clock.
    Real,
    /// The host's clock plus an offset (after [`TestClock::advance`] from real time).
    Ahead(Duration),
    /// A frozen instant (after [`TestClock::set`]); only `advance` moves it.
    Fixed(SystemTime),
}

/// A shared, settable wall clock. Clones share the same setting.
#[derive(Clone, Debug)]
pub struct TestClock {
    mode: Arc<Mutex<Mode>>,
}

impl Default for TestClock {
    fn default() -> Self {
        Self { mode: Arc::new(Mutex::new(Mode::Real)) }
    }
}

impl TestClock {
    /// A clock following real time.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_mode<R>(&self, f: impl FnOnce(&mut Mode) -> R) -> R {
        // A poisoned lock only means a panic elsewhere while holding it; the
        // `Mode` inside is still a valid value.
        let mut guard = self.mode.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// Freezes the clock at `t`.
    pub fn set(&self, t: SystemTime) {
        self.with_mode(|m| *m = Mode::Fixed(t));
    }

    /// Moves the clock forward by `d`: a frozen clock stays frozen at the
    /// later instant; a running clock keeps running, `d` ahead of real time.
    pub fn advance(&self, d: Duration) {
        self.with_mode(|m| {
            *m = match *m {
                Mode::Real => Mode::Ahead(d),
                Mode::Ahead(o) => Mode::Ahead(o.saturating_add(d)),
                Mode::Fixed(t) => Mode::Fixed(t.checked_add(d).unwrap_or(t)),
            }
        });
    }

    /// Goes back to following the real clock.
    pub fn use_real_time(&self) {
        self.with_mode(|m| *m = Mode::Real);
    }

    /// The current time as the guest sees it.
    pub fn now(&self) -> SystemTime {
        match self.with_mode(|m| *m) {
            Mode::Real => SystemTime::now(),
            Mode::Ahead(o) => {
                let now = SystemTime::now();
                now.checked_add(o).unwrap_or(now)
            }
            Mode::Fixed(t) => t,
        }
    }
}

impl HostWallClock for TestClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        // Times before the epoch cannot be expressed by wasi:clocks; clamp.
        TestClock::now(self).duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_advance_and_real() {
        let c = TestClock::new();
        let shared = c.clone();
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        c.set(t);
        assert_eq!(shared.now(), t);
        assert_eq!(HostWallClock::now(&shared), Duration::from_secs(1_700_000_000));
        c.advance(Duration::from_secs(30));
        assert_eq!(shared.now(), t + Duration::from_secs(30));

        c.use_real_time();
        let real = SystemTime::now();
        let seen = shared.now();
        assert!(seen >= real && seen < real + Duration::from_secs(60));

        c.advance(Duration::from_secs(3600));
        let seen = shared.now();
        assert!(seen >= real + Duration::from_secs(3600));
        assert!(seen < real + Duration::from_secs(3660));
    }
}
