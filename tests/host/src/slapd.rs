//! A throwaway OpenLDAP `slapd` for end-to-end tests.
//!
//! [`Slapd::start`] owns everything it creates: a fresh directory under
//! [`std::env::temp_dir`] (`slapd.conf`, the `mdb` database, TLS material,
//! `slapd.log`), one or two free ports on 127.0.0.1 (or the fixed plain LDAP
//! port of [`SlapdOptions::port`]) and the `slapd` child process.
//! [`Slapd::stop`] (also run on `Drop`, so on a panicking test too) kills the
//! process, waits for it and removes the directory.
//!
//! The server uses Debian's binaries (`/usr/sbin/slapd`, `/usr/sbin/slapadd`,
//! `ldapmodify`) with a `slapd.conf`: schemas core, cosine, nis and
//! inetorgperson; backend `mdb` (a module on Debian, loaded from
//! `/usr/lib/ldap`); ACLs `userPassword` → self write, anonymous auth; every
//! other attribute → readable by anyone. The paged results control is built
//! in. [`SlapdOptions::size_limit`] sets the global `sizelimit` with
//! `size.pr=unlimited size.prtotal=unlimited`, so an unpaged search stops at
//! the limit with sizeLimitExceeded (4) while a paged search returns
//! everything. **The rootdn is exempt from all limits**: a test that wants to
//! hit the size limit must bind as a non-root account added in its LDIF.
//! [`SlapdOptions::paged_total_limit`] caps what one paged search may return
//! in total (`size.prtotal`), so a paged search fails mid-run with
//! sizeLimitExceeded (4), as a server with a lowered `olcSizeLimit` does.
//!
//! [`SlapdOptions::account_state_schema`] adds [`ACCOUNT_STATE_SCHEMA`]: the
//! account-state attributes of other directories (AD's `userAccountControl`,
//! eDirectory's `loginDisabled`, Oracle's `orclIsEnabled`), which OpenLDAP
//! does not have, on an auxiliary class `ldapSyncTestAccount`.
//!
//! Missing binaries are an error ([`require_slapd`]), never a skipped test.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";
const LDAPMODIFY: &str = "/usr/bin/ldapmodify";
const LDAPSEARCH: &str = "/usr/bin/ldapsearch";
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A test-only schema (OIDs under OpenLDAP's experimental arc
/// 1.3.6.1.4.1.4203.666, never for production): the attributes other
/// directories mark a disabled account with, with their usual syntaxes
/// (INTEGER, BOOLEAN, Directory String), on an auxiliary class that any
/// `inetOrgPerson` entry may add.
pub const ACCOUNT_STATE_SCHEMA: &str = "\
attributetype ( 1.3.6.1.4.1.4203.666.11.99.1.1 NAME 'userAccountControl'
  DESC 'Active Directory account flags (0x2 = ACCOUNTDISABLE); test schema'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.4203.666.11.99.1.2 NAME 'loginDisabled'
  DESC 'eDirectory login disabled; test schema'
  EQUALITY booleanMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.4203.666.11.99.1.3 NAME 'orclIsEnabled'
  DESC 'Oracle Internet Directory account state (ENABLED, DISABLED); test schema'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.11.99.2.1 NAME 'ldapSyncTestAccount'
  DESC 'account-state attributes of other directories; test schema'
  AUXILIARY MAY ( userAccountControl $ loginDisabled $ orclIsEnabled ) )
";

/// Fails, naming the fix, when slapd or the OpenLDAP client tools are missing.
pub fn require_slapd() -> anyhow::Result<()> {
    for bin in [SLAPD, SLAPADD, LDAPMODIFY, LDAPSEARCH] {
        ensure!(Path::new(bin).is_file(), "slapd not found: install it with `apt-get install slapd ldap-utils` ({bin} is missing)");
    }
    Ok(())
}

/// What the test server serves.
#[derive(Debug, Clone)]
pub struct SlapdOptions {
    /// Database suffix, e.g. `dc=example,dc=org`.
    pub suffix: String,
    /// The rootdn (needs no entry; exempt from ACLs and limits).
    pub root_dn: String,
    pub root_password: String,
    /// Global `sizelimit` for everyone but the rootdn; paged searches are unlimited.
    pub size_limit: Option<u32>,
    /// Generate a test CA and a server cert (IP 127.0.0.1, DNS localhost,
    /// or see [`SlapdOptions::cn_only_cert`]), serve ldaps on a second port
    /// and allow StartTLS on the first.
    pub tls: bool,
    /// With `tls`: a server cert that names the server only in its subject
    /// CN, this DNS name, with no subjectAltName at all (the shape of Samba
    /// AD's default certificate), instead of IP 127.0.0.1 and DNS localhost.
    pub cn_only_cert: Option<String>,
    /// Initial entries (no `changetype`), loaded with `slapadd` before start;
    /// parents first, starting with the suffix entry itself.
    pub ldif: String,
    /// The plain LDAP port on 127.0.0.1; `None` (or `Some(0)`) = a free port.
    /// A fixed port that is taken fails the start, naming the port. The LDAPS
    /// port (with `tls`) is always a free one.
    pub port: Option<u16>,
    /// Load [`ACCOUNT_STATE_SCHEMA`] too (class `ldapSyncTestAccount`).
    pub account_state_schema: bool,
    /// `size.prtotal`: the most entries one paged search returns in total
    /// (for everyone but the rootdn); past it slapd ends the search with
    /// sizeLimitExceeded. `None` = unlimited. Needs [`SlapdOptions::size_limit`].
    pub paged_total_limit: Option<u32>,
    /// Load the `syncprov` overlay (RFC 4533 content synchronisation, what
    /// `ldap_sync_mode=syncrepl` reads), with a session log of this many
    /// changes (0 = none: a refresh with a cookie then needs a present phase).
    pub syncprov: Option<u32>,
    /// DNs exempt from every size and time limit (`limits dn.exact=... size=unlimited`):
    /// an RFC 4533 refresh is not paged, so its reader needs this.
    pub unlimited: Vec<String>,
}

impl Default for SlapdOptions {
    /// `dc=example,dc=org`, rootdn `cn=admin,dc=example,dc=org` / `secret`,
    /// no size limit, no TLS, empty LDIF, a free port.
    fn default() -> Self {
        Self {
            suffix: "dc=example,dc=org".into(),
            root_dn: "cn=admin,dc=example,dc=org".into(),
            root_password: "secret".into(),
            size_limit: None,
            tls: false,
            cn_only_cert: None,
            ldif: String::new(),
            port: None,
            account_state_schema: false,
            paged_total_limit: None,
            syncprov: None,
            unlimited: Vec::new(),
        }
    }
}

/// A running `slapd`; stopped and cleaned up on drop.
#[derive(Debug)]
pub struct Slapd {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    ldaps_port: Option<u16>,
    root_dn: String,
    root_password: String,
    ca_pem: Option<String>,
    other_ca_pem: Option<String>,
    load_time: Option<Duration>,
}

impl Slapd {
    /// Writes the config, loads `opts.ldif`, starts slapd on free ports (or
    /// on `opts.port`) and waits (up to 10 s) until it answers an LDAP bind.
    pub fn start(opts: SlapdOptions) -> anyhow::Result<Slapd> {
        require_slapd()?;
        for (what, v) in [("suffix", &opts.suffix), ("root_dn", &opts.root_dn), ("root_password", &opts.root_password)] {
            ensure!(
                !v.is_empty() && !v.contains(['"', '\\', '\n', '\r']),
                "slapd option {what} must be non-empty, without quotes, backslashes or newlines"
            );
        }
        if let Some(cn) = &opts.cn_only_cert {
            ensure!(opts.tls, "slapd option cn_only_cert needs tls");
            ensure!(
                !cn.is_empty() && cn.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
                "slapd option cn_only_cert must be a DNS name (letters, digits, dots and hyphens)"
            );
        }
        let mut s = Slapd {
            child: None,
            dir: make_temp_dir()?,
            port: 0,
            ldaps_port: None,
            root_dn: opts.root_dn.clone(),
            root_password: opts.root_password.clone(),
            ca_pem: None,
            other_ca_pem: None,
            load_time: None,
        };
        // From here on, an early return drops `s`, which removes the dir.
        let dir = s.dir.clone();
        if opts.tls {
            make_tls(&dir, opts.cn_only_cert.as_deref())?;
            s.ca_pem = Some(fs::read_to_string(dir.join("ca.pem")).context("reading ca.pem")?);
            s.other_ca_pem = Some(fs::read_to_string(dir.join("other-ca.pem")).context("reading other-ca.pem")?);
        }
        fs::create_dir(dir.join("db")).context("creating the slapd db directory")?;
        if opts.account_state_schema {
            fs::write(dir.join("account-state.schema"), ACCOUNT_STATE_SCHEMA).context("writing account-state.schema")?;
        }
        let conf = dir.join("slapd.conf");
        fs::write(&conf, config(&dir, &opts)).context("writing slapd.conf")?;
        if !opts.ldif.trim().is_empty() {
            let ldif = dir.join("init.ldif");
            fs::write(&ldif, &opts.ldif).context("writing init.ldif")?;
            let started = Instant::now();
            run(Command::new(SLAPADD).arg("-f").arg(&conf).arg("-l").arg(&ldif), "slapadd (initial LDIF)")?;
            s.load_time = Some(started.elapsed());
        }
        let fixed_port = opts.port.filter(|&p| p != 0);
        for attempt in 1..=3 {
            s.port = match fixed_port {
                Some(p) => {
                    // Otherwise the readiness probe could reach whoever holds it.
                    require_port_free(p)?;
                    p
                }
                None => free_port()?,
            };
            s.ldaps_port = if opts.tls { Some(free_port()?) } else { None };
            let mut listen = format!("ldap://127.0.0.1:{}/", s.port);
            if let Some(p) = s.ldaps_port {
                listen.push_str(&format!(" ldaps://127.0.0.1:{p}/"));
            }
            let log = File::create(dir.join("slapd.log")).context("creating slapd.log")?;
            let child = Command::new(SLAPD)
                .arg("-f")
                .arg(&conf)
                .args(["-h", &listen, "-d", "config,stats"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().context("cloning the slapd.log handle")?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("spawning {SLAPD}"))?;
            s.child = Some(child);
            match s.wait_ready() {
                Ok(()) => return Ok(s),
                Err(e) => {
                    s.kill();
                    // A port grabbed by someone else between probing and binding:
                    // retry (a fixed port is probed again, and fails clearly if taken).
                    if attempt < 3 && s.log_tail(20).contains("Address already in use") {
                        continue;
                    }
                    return Err(e);
                }
            }
        }
        bail!("slapd did not start")
    }

    /// The plain LDAP port (StartTLS is offered there when `tls` is on).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The LDAPS port, when started with `tls`.
    pub fn ldaps_port(&self) -> Option<u16> {
        self.ldaps_port
    }

    /// `ldap://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://127.0.0.1:PORT2`, when started with `tls`.
    pub fn ldaps_url(&self) -> Option<String> {
        self.ldaps_port.map(|p| format!("ldaps://127.0.0.1:{p}"))
    }

    /// PEM of the CA that signed the server certificate (when `tls`).
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// PEM of a second, unrelated CA (when `tls`), for "wrong CA" tests.
    pub fn other_ca_pem(&self) -> Option<String> {
        self.other_ca_pem.clone()
    }

    /// How long `slapadd` took to load [`SlapdOptions::ldif`] (`None` when
    /// the LDIF was empty and nothing was loaded).
    pub fn load_time(&self) -> Option<Duration> {
        self.load_time
    }

    /// The temp directory (config, `db/`, `*.pem`, `slapd.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last `lines` lines of slapd's log (`-d config,stats`: config lines
    /// read, then one line per connection, bind, search and result).
    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read(self.dir.join("slapd.log")).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Applies `changetype:` LDIF records (add/modify/modrdn/delete) with
    /// `ldapmodify` bound as the rootdn over the wire; stops at the first error.
    pub fn modify(&self, ldif: &str) -> anyhow::Result<()> {
        static N: AtomicU32 = AtomicU32::new(0);
        let file = self.dir.join(format!("modify-{}.ldif", N.fetch_add(1, Ordering::Relaxed)));
        fs::write(&file, ldif).context("writing the ldapmodify LDIF")?;
        let url = self.url();
        let mut cmd = Command::new(LDAPMODIFY);
        cmd.env("LDAPNOINIT", "1") // ignore ldap.conf, ~/.ldaprc and LDAP* variables
            .args(["-x", "-o", "nettimeout=10", "-H", &url, "-D", &self.root_dn])
            .args(["-w", &self.root_password, "-f"])
            .arg(&file);
        run(&mut cmd, "ldapmodify")
    }

    /// Kills slapd, waits for it and removes the directory. Idempotent.
    pub fn stop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }

    fn kill(&mut self) {
        crate::process::stop_child(&mut self.child);
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { bail!("slapd is not running") };
        let port = self.port;
        let poll = (START_TIMEOUT, Duration::from_millis(50));
        let ready =
            crate::process::wait_until_ready("slapd", &mut child, &self.url(), poll, || ldap_ping(port).is_ok(), || self.log_tail(30));
        self.child = Some(child);
        ready
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config(dir: &Path, o: &SlapdOptions) -> String {
    let d = dir.display();
    let mut c = String::new();
    for schema in ["core", "cosine", "nis", "inetorgperson"] {
        c.push_str(&format!("include /etc/ldap/schema/{schema}.schema\n"));
    }
    if o.account_state_schema {
        c.push_str(&format!("include \"{d}/account-state.schema\"\n"));
    }
    c.push_str(&format!("pidfile \"{d}/slapd.pid\"\nargsfile \"{d}/slapd.args\"\n"));
    c.push_str("modulepath /usr/lib/ldap\nmoduleload back_mdb\n");
    if o.syncprov.is_some() {
        c.push_str("moduleload syncprov\n");
    }
    if let Some(n) = o.size_limit {
        let total = o.paged_total_limit.map_or_else(|| "unlimited".to_owned(), |t| t.to_string());
        c.push_str(&format!("sizelimit size.soft={n} size.hard={n} size.pr=unlimited size.prtotal={total}\n"));
    }
    if o.tls {
        c.push_str(&format!(
            "TLSCACertificateFile \"{d}/ca.pem\"\nTLSCertificateFile \"{d}/server.pem\"\n\
             TLSCertificateKeyFile \"{d}/server.key\"\n"
        ));
    }
    c.push_str(&format!(
        "database mdb\nmaxsize 8589934592\nsuffix \"{}\"\nrootdn \"{}\"\nrootpw \"{}\"\ndirectory \"{d}/db\"\n\
         index objectClass eq\n\
         access to attrs=userPassword by self write by anonymous auth by * none\n\
         access to * by * read\n",
        o.suffix, o.root_dn, o.root_password
    ));
    for dn in &o.unlimited {
        c.push_str(&format!("limits dn.exact=\"{dn}\" size=unlimited time=unlimited\n"));
    }
    if let Some(log) = o.syncprov {
        c.push_str("index entryUUID,entryCSN eq\noverlay syncprov\nsyncprov-checkpoint 1000 10\n");
        if log > 0 {
            c.push_str(&format!("syncprov-sessionlog {log}\n"));
        }
    }
    c
}

/// EC P-256 keys (PKCS#8: GnuTLS reads them); v3 certs valid for ten years.
/// The server cert names IP 127.0.0.1 and DNS localhost in its
/// subjectAltName, or, with `cn_only`, that name in its CN alone.
fn make_tls(dir: &Path, cn_only: Option<&str>) -> anyhow::Result<()> {
    let openssl = |args: &str| {
        let args: Vec<&str> = args.split_whitespace().collect();
        run(Command::new("openssl").args(&args).current_dir(dir), &format!("openssl {}", args[0]))
    };
    let key = "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out";
    let ca_ext = "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign";
    for (name, cn) in [("ca", "ldap-sync-test-ca"), ("other-ca", "ldap-sync-unrelated-ca")] {
        openssl(&format!("{key} {name}.key"))?;
        openssl(&format!("req -x509 -new -key {name}.key -subj /CN={cn} -days 3650 -out {name}.pem {ca_ext}"))?;
    }
    // `x509 -req` copies no extension from the request: server.ext is all
    // the cert carries, so without a subjectAltName line it has none.
    let (cn, san) = match cn_only {
        Some(cn) => (cn, ""),
        None => ("localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"),
    };
    openssl(&format!("{key} server.key"))?;
    openssl(&format!("req -new -key server.key -subj /CN={cn} -out server.csr"))?;
    fs::write(
        dir.join("server.ext"),
        format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n{san}subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
        ),
    )
    .context("writing server.ext")?;
    openssl(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
         -extfile server.ext -out server.pem",
    )
}

/// Runs a command to completion; on failure the error carries its output.
fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| {
        let hint =
            if e.kind() == std::io::ErrorKind::NotFound { " (not installed? `apt-get install slapd ldap-utils openssl`)" } else { "" };
        anyhow::Error::new(e).context(format!("running {what}{hint}"))
    })?;
    ensure!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(())
}

/// `ldapmodify` of the `changetype:` records in `ldif` (written to `file`),
/// bound as `dn` over `url`; the tools' install command in the error.
pub(crate) fn ldapmodify(url: &str, dn: &str, password: &str, file: &Path, ldif: &str, install: &str) -> anyhow::Result<()> {
    fs::write(file, ldif).context("writing the LDIF")?;
    let out = Command::new(LDAPMODIFY)
        .env("LDAPNOINIT", "1") // ignore ldap.conf, ~/.ldaprc and LDAP* variables
        .args(["-x", "-o", "nettimeout=10", "-H", url, "-D", dn, "-w", password, "-f"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {LDAPMODIFY} (install: `{install}`)"))?;
    ensure!(out.status.success(), "ldapmodify failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    Ok(())
}

pub(crate) fn make_temp_dir() -> anyhow::Result<PathBuf> {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    loop {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ldap-sync-slapd-{}-{n}-{nanos}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
}

/// A port the kernel just handed out on 127.0.0.1, never one this process
/// already gave to another instance.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    static USED: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
    let used = used.get_or_insert_with(HashSet::new);
    let mut held = Vec::new(); // keep rejected listeners open so the kernel moves on
    for _ in 0..100 {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
        let port = l.local_addr().context("reading the probe port")?.port();
        if used.insert(port) {
            return Ok(port);
        }
        held.push(l);
    }
    bail!("no free port on 127.0.0.1")
}

/// Fails, naming the port, when 127.0.0.1:`port` cannot be listened on.
fn require_port_free(port: u16) -> anyhow::Result<()> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map(drop).with_context(|| format!("port {port} on 127.0.0.1 is not available for slapd"))
}

/// An anonymous LDAPv3 simple bind (message 1), answered with success.
pub(crate) fn ldap_ping(port: u16) -> anyhow::Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(&[0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00])?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf)?;
    let resp = &buf[..n];
    // SEQUENCE { id, [APPLICATION 1] BindResponse { ENUMERATED resultCode = 0, ... } }
    let ok = resp.first() == Some(&0x30)
        && resp.iter().position(|&b| b == 0x61).is_some_and(|i| resp[i..].windows(3).any(|w| w == [0x0a, 0x01, 0x00]));
    ensure!(ok, "unexpected bind response {resp:02x?}");
    let _ = s.write_all(&[0x30, 0x05, 0x02, 0x01, 0x02, 0x42, 0x00]); // unbind
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVC: (&str, &str) = ("cn=svc,dc=example,dc=org", "svcpw");

    fn fixture(users: usize) -> String {
        let mut l = String::from(
            "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
             dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: cn=svc,dc=example,dc=org\nobjectClass: person\nobjectClass: simpleSecurityObject\n\
             cn: svc\nsn: svc\nuserPassword: svcpw\n",
        );
        for i in 0..users {
            l.push_str(&format!(
                "\ndn: uid=u{i},ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: u{i}\ncn: User {i}\n\
                 sn: U\nuserPassword: pw{i}\n"
            ));
        }
        l
    }

    /// ldapsearch; returns (exit code, output).
    fn search(url: &str, bind: Option<(&str, &str)>, args: &[&str], cacert: Option<&Path>) -> (i32, String) {
        let mut cmd = Command::new(LDAPSEARCH);
        cmd.args(["-x", "-LLL", "-o", "nettimeout=5", "-H", url]);
        if let Some((dn, pw)) = bind {
            cmd.args(["-D", dn, "-w", pw]);
        }
        cmd.args(args);
        if let Some(ca) = cacert {
            cmd.env("LDAPTLS_CACERT", ca);
        }
        let out = cmd.output().expect("ldapsearch runs");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), text)
    }

    fn dns(out: &str) -> usize {
        out.lines().filter(|l| l.starts_with("dn: ")).count()
    }

    const PEOPLE: [&str; 4] = ["-b", "ou=people,dc=example,dc=org", "(objectClass=inetOrgPerson)", "dn"];

    #[test]
    fn require_slapd_finds_debian_binaries() -> anyhow::Result<()> {
        require_slapd()
    }

    #[test]
    fn size_limit_applies_unpaged_but_not_paged() -> anyhow::Result<()> {
        let s = Slapd::start(SlapdOptions { size_limit: Some(5), ldif: fixture(12), ..Default::default() })?;
        let (rc, out) = search(&s.url(), Some(SVC), &PEOPLE, None);
        assert_eq!((rc, dns(&out)), (4, 5), "unpaged non-root search: sizeLimitExceeded after 5\n{out}");
        for page in ["pr=2/noprompt", "pr=5/noprompt", "pr=100/noprompt"] {
            let args = [&["-E", page][..], &PEOPLE[..]].concat();
            let (rc, out) = search(&s.url(), Some(SVC), &args, None);
            assert_eq!((rc, dns(&out)), (0, 12), "paged search {page} returns everything\n{out}");
        }
        let (rc, out) = search(&s.url(), None, &PEOPLE, None);
        assert_eq!((rc, dns(&out)), (4, 5), "anonymous is limited too\n{out}");
        let (rc, out) = search(&s.url(), Some(("cn=admin,dc=example,dc=org", "secret")), &PEOPLE, None);
        assert_eq!((rc, dns(&out)), (0, 12), "the rootdn is exempt\n{out}");
        let (rc, out) = search(&s.url(), None, &["-b", "", "-s", "base", "supportedControl"], None);
        assert!(rc == 0 && out.contains("1.2.840.113556.1.4.319"), "paged results control advertised\n{out}");
        Ok(())
    }

    #[test]
    fn binds_and_acls() -> anyhow::Result<()> {
        let s = Slapd::start(SlapdOptions { ldif: fixture(1), ..Default::default() })?;
        let user = "uid=u0,ou=people,dc=example,dc=org";
        let base = ["-b", user, "-s", "base", "*"];
        let (rc, out) = search(&s.url(), Some((user, "pw0")), &base, None);
        assert!(rc == 0 && out.contains("userPassword"), "a user reads its own password\n{out}");
        let (rc, out) = search(&s.url(), Some(SVC), &base, None);
        assert!(rc == 0 && out.contains("cn: User 0") && !out.contains("userPassword"), "{out}");
        let (rc, out) = search(&s.url(), None, &base, None);
        assert!(rc == 0 && out.contains("cn: User 0") && !out.contains("userPassword"), "{out}");
        assert_eq!(search(&s.url(), Some((user, "wrong")), &base, None).0, 49, "invalidCredentials");
        let missing = "uid=nobody,ou=people,dc=example,dc=org";
        assert_eq!(search(&s.url(), Some((missing, "x")), &base, None).0, 49, "unknown DN: invalidCredentials");
        assert_eq!(search(&s.url(), Some((user, "")), &base, None).0, 53, "unauthenticated bind: unwillingToPerform");
        Ok(())
    }

    #[test]
    fn tls_ldaps_and_starttls_with_right_and_wrong_ca() -> anyhow::Result<()> {
        let s = Slapd::start(SlapdOptions { tls: true, ldif: fixture(0), ..Default::default() })?;
        let (ca, other) = (s.dir().join("t-ca.pem"), s.dir().join("t-other.pem"));
        fs::write(&ca, s.ca_pem().context("ca_pem")?)?;
        fs::write(&other, s.other_ca_pem().context("other_ca_pem")?)?;
        assert_ne!(s.ca_pem(), s.other_ca_pem());
        let ldaps = s.ldaps_url().context("ldaps_url")?;
        assert_eq!(ldaps, format!("ldaps://127.0.0.1:{}", s.ldaps_port().context("ldaps_port")?));
        let root_dse = ["-b", "", "-s", "base", "namingContexts"];
        let starttls = ["-ZZ", "-b", "", "-s", "base", "namingContexts"];
        for (url, args) in [(&ldaps, &root_dse[..]), (&s.url(), &starttls[..])] {
            let (rc, out) = search(url, None, args, Some(&ca));
            assert!(rc == 0 && out.contains("dc=example,dc=org"), "{url} {args:?} with the right CA\n{out}");
            let (rc, out) = search(url, None, args, Some(&other));
            assert_ne!(rc, 0, "{url} {args:?} must fail with the wrong CA\n{out}");
        }
        // A real handshake with slapd (GnuTLS) checking both names in the certificate.
        let port = s.ldaps_port().context("ldaps_port")?.to_string();
        for (cafile, ok) in [(&ca, true), (&other, false)] {
            let out = Command::new("openssl")
                .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername"])
                .args(["localhost", "-verify_hostname", "localhost", "-verify_ip", "127.0.0.1"])
                .args(["-verify_return_error", "-CAfile"])
                .arg(cafile)
                .stdin(Stdio::null())
                .output()?;
            assert_eq!(out.status.success(), ok, "{}", String::from_utf8_lossy(&out.stderr));
        }
        let plain = Slapd::start(SlapdOptions::default())?;
        assert_eq!((plain.ldaps_port(), plain.ca_pem(), plain.other_ca_pem()), (None, None, None));
        Ok(())
    }

    #[test]
    fn cn_only_certificate_has_no_subject_alt_name() -> anyhow::Result<()> {
        let s = Slapd::start(SlapdOptions { tls: true, cn_only_cert: Some("ldap.example.test".into()), ..Default::default() })?;
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-subject", "-ext", "subjectAltName,extendedKeyUsage", "-in"])
            .arg(s.dir().join("server.pem"))
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("CN = ldap.example.test") && text.contains("TLS Web Server Authentication"), "{text}");
        assert!(!text.contains("Subject Alternative Name"), "{text}");
        let err = Slapd::start(SlapdOptions { cn_only_cert: Some("ldap.example.test".into()), ..Default::default() })
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains("cn_only_cert needs tls"), "{err}");
        Ok(())
    }

    #[test]
    fn modify_over_the_wire() -> anyhow::Result<()> {
        let s = Slapd::start(SlapdOptions { ldif: fixture(2), ..Default::default() })?;
        s.modify(
            "dn: uid=new,ou=people,dc=example,dc=org\nchangetype: add\nobjectClass: inetOrgPerson\nuid: new\ncn: New\nsn: N\n\n\
             dn: uid=u0,ou=people,dc=example,dc=org\nchangetype: modify\nreplace: cn\ncn: Renamed Zero\n-\nadd: mail\nmail: u0@example.org\n\n\
             dn: uid=u1,ou=people,dc=example,dc=org\nchangetype: modrdn\nnewrdn: uid=u1b\ndeleteoldrdn: 1\n\n\
             dn: uid=new,ou=people,dc=example,dc=org\nchangetype: delete\n",
        )?;
        let (rc, out) =
            search(&s.url(), Some(SVC), &["-b", "ou=people,dc=example,dc=org", "(objectClass=inetOrgPerson)", "cn", "mail"], None);
        assert_eq!(rc, 0, "{out}");
        assert!(out.contains("cn: Renamed Zero") && out.contains("mail: u0@example.org"), "{out}");
        assert!(out.contains("dn: uid=u1b,") && !out.contains("uid=u1,") && !out.contains("uid=new"), "{out}");
        let err = s.modify("dn: uid=ghost,ou=people,dc=example,dc=org\nchangetype: delete\n").err().context("must fail")?;
        assert!(format!("{err:#}").contains("No such object"), "{err:#}");
        Ok(())
    }

    #[test]
    fn stop_and_drop_clean_up_even_on_panic() -> anyhow::Result<()> {
        let mut s = Slapd::start(SlapdOptions::default())?;
        let (port, dir) = (s.port(), s.dir().to_owned());
        s.stop();
        s.stop();
        assert!(!dir.exists() && ldap_ping(port).is_err());
        let seen = Mutex::new(None);
        let r = std::panic::catch_unwind(|| {
            if let Ok(s) = Slapd::start(SlapdOptions::default()) {
                *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some((s.port(), s.dir().to_owned()));
                std::panic::resume_unwind(Box::new("test body panics"));
            }
        });
        assert!(r.is_err());
        let (port, dir) = seen.into_inner().unwrap_or_else(|e| e.into_inner()).context("slapd started")?;
        assert!(!dir.exists() && ldap_ping(port).is_err());
        Ok(())
    }

    #[test]
    fn startup_errors_carry_details() {
        let bad_ldif = SlapdOptions {
            ldif: "dn: uid=orphan,ou=nowhere,dc=example,dc=org\nobjectClass: account\nuid: orphan\n".into(),
            ..Default::default()
        };
        let err = Slapd::start(bad_ldif).err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(err.contains("slapadd (initial LDIF) failed"), "{err}");
        let bad_conf = SlapdOptions { suffix: "not a dn".into(), ..Default::default() };
        let err = Slapd::start(bad_conf).err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(err.contains("exited during startup") && err.contains("<suffix> invalid DN"), "{err}");
    }
}
