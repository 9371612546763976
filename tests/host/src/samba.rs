//! A throwaway Samba Active Directory domain controller (Debian's `samba`),
//! for what only AD speaks: the DirSync control, objectGUID, tombstones.
//!
//! Provisioned into its own directory (`--configfile=/dev/null`: nothing
//! from `/etc/samba`), with the LDAP service alone, listening on
//! 127.0.0.1 and allowing simple binds without TLS; killed and removed on
//! drop. Samba's LDAP port is fixed at 389 (no `smb.conf` option moves it),
//! so one runs at a time: [`Samba::start`] holds a process-wide lock, and
//! fails clearly when something else holds the port. Provisioning takes
//! about 5 s.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};

const SAMBA: &str = "/usr/sbin/samba";
const SAMBA_TOOL: &str = "/usr/bin/samba-tool";
/// What a fresh Debian 12 machine needs (`samba-vfs-modules`: provisioning
/// sets sysvol ACLs through `acl_xattr`).
pub const INSTALL: &str =
    "apt-get install --no-install-recommends samba samba-dsdb-modules samba-ad-provision samba-vfs-modules ldap-utils";
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The domain every instance provisions.
pub const SUFFIX: &str = "DC=example,DC=org";
pub const ADMIN_DN: &str = "CN=Administrator,CN=Users,DC=example,DC=org";
pub const ADMIN_PASSWORD: &str = "Passw0rd!Lab";
/// Samba's fixed LDAP port.
pub const PORT: u16 = 389;
/// Samba's fixed LDAPS port (with [`Samba::start_with_tls`]).
pub const LDAPS_PORT: u16 = 636;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Fails, naming the install command, when Samba's AD DC parts are missing.
pub fn require_samba() -> anyhow::Result<()> {
    for bin in [SAMBA, SAMBA_TOOL, "/usr/bin/ldapmodify"] {
        ensure!(Path::new(bin).is_file(), "{bin} not found: install Samba's AD DC with `{INSTALL}`");
    }
    ensure!(Path::new("/usr/share/samba/setup").is_dir(), "Samba's provisioning files are missing: install them with `{INSTALL}`");
    Ok(())
}

/// A running Samba AD DC on 127.0.0.1:389.
pub struct Samba {
    child: Option<Child>,
    dir: PathBuf,
    _turn: MutexGuard<'static, ()>,
}

impl Samba {
    /// Provisions `EXAMPLE.ORG` and starts the LDAP service; waits until it answers.
    pub fn start() -> anyhow::Result<Samba> {
        Self::start_tls(false)
    }

    /// [`Samba::start`] with `tls enabled = yes` and nothing else about TLS
    /// configured: Samba makes its own CA and server certificate at first
    /// start (`private/tls/`), as a freshly provisioned DC does, and also
    /// listens for LDAPS on 127.0.0.1:636.
    pub fn start_with_tls() -> anyhow::Result<Samba> {
        Self::start_tls(true)
    }

    /// The CA Samba generated (PEM), once it started with TLS.
    pub fn ca_pem(&self) -> anyhow::Result<String> {
        let path = self.dir.join("dc/private/tls/ca.pem");
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// The server certificate Samba generated (PEM), once it started with TLS.
    pub fn cert_pem(&self) -> anyhow::Result<String> {
        let path = self.dir.join("dc/private/tls/cert.pem");
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    fn start_tls(tls: bool) -> anyhow::Result<Samba> {
        require_samba()?;
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        for port in [PORT, LDAPS_PORT] {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                bail!("127.0.0.1:{port} is already in use; Samba's LDAP ports cannot be moved, so stop whatever listens there");
            }
        }
        let mut s = Samba { child: None, dir: crate::slapd::make_temp_dir()?, _turn: turn };
        // From here on, an early return drops `s`, which removes the dir.
        let dir = s.dir.clone();
        let target = dir.join("dc");
        let out = Command::new(SAMBA_TOOL)
            .args(["domain", "provision", "--configfile=/dev/null"])
            .arg(format!("--targetdir={}", target.display()))
            .args(["--realm=EXAMPLE.ORG", "--domain=EXAMPLE", "--server-role=dc", "--dns-backend=NONE", "--host-name=DC1"])
            .args(["--host-ip=127.0.0.1", &format!("--adminpass={ADMIN_PASSWORD}")])
            .args(["--option=interfaces=127.0.0.1/8", "--option=bind interfaces only=yes", "--option=server services=ldap"])
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {SAMBA_TOOL} (install: `{INSTALL}`)"))?;
        ensure!(
            out.status.success(),
            "samba-tool domain provision failed ({}): {}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stdout), 20) + &tail(&String::from_utf8_lossy(&out.stderr), 20)
        );
        // What provisioning drops or leaves in system directories.
        let conf = target.join("etc/smb.conf");
        let run = target.join("run");
        fs::create_dir_all(&run).context("creating the run directory")?;
        let text = fs::read_to_string(&conf).context("reading smb.conf")?;
        let extra = format!(
            "[global]\n\tldap server require strong auth = no\n\ttls enabled = {tls}\n\tpid directory = {r}\n\tncalrpc dir = {r}/ncalrpc\n\
             \twinbindd socket directory = {r}/winbindd\n\tntp signd socket directory = {r}/ntp_signd\n\tlog file = {d}/log.%m\n\tlog level = 1\n",
            r = run.display(),
            d = dir.display(),
            tls = if tls { "yes" } else { "no" }
        );
        fs::write(&conf, text.replacen("[global]\n", &extra, 1)).context("writing smb.conf")?;
        let log = File::create(dir.join("samba.out")).context("creating samba.out")?;
        let child = Command::new(SAMBA)
            .args(["-F", "-M", "single", "--debug-stdout", "-s"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cloning the log handle")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {SAMBA}"))?;
        s.child = Some(child);
        s.wait_ready()?;
        Ok(s)
    }

    pub fn port(&self) -> u16 {
        PORT
    }

    /// Applies `changetype:` LDIF records with `ldapmodify`, bound as the administrator.
    pub fn modify(&self, ldif: &str) -> anyhow::Result<()> {
        crate::slapd::ldapmodify("ldap://127.0.0.1:389", ADMIN_DN, ADMIN_PASSWORD, &self.dir.join("modify.ldif"), ldif, INSTALL)
    }

    fn log_tail(&self, lines: usize) -> String {
        tail(&fs::read_to_string(self.dir.join("samba.out")).unwrap_or_default(), lines)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { bail!("samba is not running") };
        let poll = (START_TIMEOUT, Duration::from_millis(100));
        let address = format!("127.0.0.1:{PORT}");
        let ready = crate::process::wait_until_ready(
            "samba",
            &mut child,
            &address,
            poll,
            || crate::slapd::ldap_ping(PORT).is_ok(),
            || self.log_tail(30),
        );
        self.child = Some(child);
        ready
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        crate::process::stop_child(&mut self.child);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n") + "\n"
}
