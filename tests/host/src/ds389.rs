//! A throwaway 389 Directory Server (Debian's `389-ds-base`), for RFC 4533
//! as 389-ds speaks it (its Content Synchronization plugin): sync UUIDs that
//! are nsUniqueIds, modifications sent with state "add", deletions as a
//! syncIdSet, every user attribute in an incremental refresh.
//!
//! `tests/host/scripts/389ds-instance.sh` creates the instance inside its
//! own directory (config, database, logs, locks: nothing in `/etc` or
//! `/var`), enables the Retro Changelog and Content Synchronization plugins
//! in `dse.ldif`, and runs `ns-slapd` in the foreground on 127.0.0.1 and a
//! free port. Creating takes about 6 s. The process group is killed and the
//! directory removed on drop.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/389ds-instance.sh");
const LDAPSEARCH: &str = "/usr/bin/ldapsearch";
pub const INSTALL: &str = "apt-get install --no-install-recommends 389-ds-base ldap-utils";
const START_TIMEOUT: Duration = Duration::from_secs(90);

pub const SUFFIX: &str = "dc=example,dc=org";
pub const ROOT_DN: &str = "cn=Directory Manager";
pub const ROOT_PASSWORD: &str = "Secret123";
const SYNC_REQUEST_OID: &str = "1.3.6.1.4.1.4203.1.9.1.1";

/// Fails, naming the install command, when 389-ds or the tools are missing.
pub fn require_389ds() -> anyhow::Result<()> {
    for bin in ["/usr/sbin/dscreate", "/usr/sbin/ns-slapd", "/usr/bin/python3", "/usr/bin/ldapmodify", LDAPSEARCH] {
        ensure!(Path::new(bin).is_file(), "{bin} not found: install 389 Directory Server with `{INSTALL}`");
    }
    Ok(())
}

/// A running 389-ds instance.
pub struct Ds389 {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl Ds389 {
    /// Creates the instance (suffix entry included) and waits until it
    /// announces content synchronisation.
    pub fn start() -> anyhow::Result<Ds389> {
        require_389ds()?;
        let mut s = Ds389 { child: None, dir: crate::slapd::make_temp_dir()?, port: crate::slapd::free_port()? };
        // From here on, an early return drops `s`, which removes the dir.
        let log = File::create(s.dir.join("instance.out")).context("creating instance.out")?;
        let child = {
            use std::os::unix::process::CommandExt as _;
            Command::new("/bin/bash")
                .arg(SCRIPT)
                .arg(s.dir.join("ds"))
                .arg(s.port.to_string())
                .env("DS_ROOT_PW", ROOT_PASSWORD)
                .env("DS_SUFFIX", SUFFIX)
                .stdin(Stdio::null())
                .stdout(log.try_clone().context("cloning the log handle")?)
                .stderr(log)
                // Its own process group: dscreate's helpers go with it.
                .process_group(0)
                .spawn()
                .with_context(|| format!("running {SCRIPT}"))?
        };
        s.child = Some(child);
        s.wait_ready()?;
        Ok(s)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Applies `changetype:` LDIF records with `ldapmodify` as the root DN.
    pub fn modify(&self, ldif: &str) -> anyhow::Result<()> {
        crate::slapd::ldapmodify(&self.url(), ROOT_DN, ROOT_PASSWORD, &self.dir.join("modify.ldif"), ldif, INSTALL)
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(self.dir.join("instance.out")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn announces_sync(&self) -> bool {
        Command::new(LDAPSEARCH)
            .env("LDAPNOINIT", "1")
            .args(["-x", "-LLL", "-o", "nettimeout=2", "-H", &self.url(), "-s", "base", "-b", "", "supportedControl"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(SYNC_REQUEST_OID))
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { bail!("389-ds is not running") };
        let poll = (START_TIMEOUT, Duration::from_millis(200));
        // Only the final server announces the plugin (dscreate's own does not).
        let ready =
            crate::process::wait_until_ready("389-ds", &mut child, &self.url(), poll, || self.announces_sync(), || self.log_tail(30));
        self.child = Some(child);
        ready
    }
}

impl Drop for Ds389 {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The whole group: ns-slapd (the script exec'd it), or dscreate and its helpers.
            let _ = Command::new("/bin/kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
