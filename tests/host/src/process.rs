//! What every server fixture (slapd, Samba, 389-ds, redis-server) does with
//! its child process: wait until it answers, and stop it.

use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Polls `ready` every `poll` until it holds. Fails, with `log_tail`, when
/// the child exits first or `timeout` passes; `address` is where it should
/// have answered.
pub(crate) fn wait_until_ready(
    name: &str,
    child: &mut Child,
    address: &str,
    (timeout, poll): (Duration, Duration),
    mut ready: impl FnMut() -> bool,
    log_tail: impl Fn() -> String,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().with_context(|| format!("waiting for {name}"))? {
            bail!("{name} exited during startup ({status}); log tail:\n{}", log_tail());
        }
        if ready() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{name} did not answer on {address} within {timeout:?}; log tail:\n{}", log_tail());
        }
        std::thread::sleep(poll);
    }
}

/// Kills the child, if any, and reaps it. Idempotent.
pub(crate) fn stop_child(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}
