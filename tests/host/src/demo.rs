//! A small demo directory for trying ldap-sync by hand (the README quickstart).
//!
//! [`demo_ldif`] is a directory under `dc=example,dc=org`: twelve
//! `inetOrgPerson` users under `ou=people` ([`DEMO_USERS`], all with the
//! password [`DEMO_USER_PASSWORD`], two of them with non-ASCII names), a
//! service account [`DEMO_SVC_DN`] / [`DEMO_SVC_PASSWORD`], and
//! `cn=admins,ou=groups` (a `groupOfNames` of [`DEMO_ADMINS`]).
//! [`demo_variables`] are the Spin variables that point ldap-sync at it, and
//! [`start_demo`] serves it with the [`slapd`](crate::slapd) fixture. The
//! `ldap-sync-demo-directory` binary (`scripts/demo-directory.sh`) runs it.

use crate::slapd::{Slapd, SlapdOptions};

/// The directory's suffix.
pub const DEMO_SUFFIX: &str = "dc=example,dc=org";
/// Where the users are (ldap-sync's `ldap_basedn`).
pub const DEMO_PEOPLE_BASE: &str = "ou=people,dc=example,dc=org";
/// Where the groups are.
pub const DEMO_GROUPS_BASE: &str = "ou=groups,dc=example,dc=org";
/// The `groupOfNames` of [`DEMO_ADMINS`].
pub const DEMO_ADMINS_GROUP_DN: &str = "cn=admins,ou=groups,dc=example,dc=org";
/// The service account ldap-sync binds as.
pub const DEMO_SVC_DN: &str = "cn=svc,dc=example,dc=org";
/// The service account's password.
pub const DEMO_SVC_PASSWORD: &str = "svcpw";
/// Every demo user's password.
pub const DEMO_USER_PASSWORD: &str = "password";
/// The `uid`s of the members of `cn=admins`.
pub const DEMO_ADMINS: [&str; 2] = ["alice", "bob"];
/// The port `ldap-sync-demo-directory` listens on unless told otherwise.
pub const DEMO_DEFAULT_PORT: u16 = 3389;

/// One demo user (`uid=<uid>,ou=people,dc=example,dc=org`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoUser {
    /// `uid`, also the RDN.
    pub uid: &'static str,
    /// `cn`, the display name.
    pub cn: &'static str,
    /// `sn`.
    pub sn: &'static str,
    /// `givenName`.
    pub given_name: &'static str,
    /// `mail`.
    pub mail: &'static str,
}

const fn user(uid: &'static str, given_name: &'static str, sn: &'static str, cn: &'static str, mail: &'static str) -> DemoUser {
    DemoUser { uid, cn, sn, given_name, mail }
}

/// The twelve users, in LDIF order.
pub const DEMO_USERS: [DemoUser; 12] = [
    user("alice", "Alice", "Smith", "Alice Smith", "alice@example.org"),
    user("bob", "Bob", "Jones", "Bob Jones", "bob@example.org"),
    user("carol", "Carol", "King", "Carol King", "carol@example.org"),
    user("dave", "Dave", "Miller", "Dave Miller", "dave@example.org"),
    user("erin", "Erin", "Clark", "Erin Clark", "erin@example.org"),
    user("frank", "Frank", "Wright", "Frank Wright", "frank@example.org"),
    user("grace", "Grace", "Lee", "Grace Lee", "grace@example.org"),
    user("heidi", "Heidi", "Novak", "Heidi Novak", "heidi@example.org"),
    user("ivan", "Ivan", "Petrov", "Ivan Petrov", "ivan@example.org"),
    user("judy", "Judy", "Garcia", "Judy Garcia", "judy@example.org"),
    user("zoe", "Zoë", "Ångström", "Zoë Ångström", "zoe@example.org"),
    user("lilei", "雷", "李", "李雷", "lilei@example.org"),
];

impl DemoUser {
    /// `uid=<uid>,ou=people,dc=example,dc=org`.
    pub fn dn(&self) -> String {
        format!("uid={},{DEMO_PEOPLE_BASE}", self.uid)
    }

    /// Whether the user is a member of `cn=admins`.
    pub fn is_admin(&self) -> bool {
        DEMO_ADMINS.contains(&self.uid)
    }
}

/// The demo directory as LDIF for `slapadd` (parents first). Values that are
/// not RFC 2849 safe strings (the non-ASCII names) are base64-encoded.
pub fn demo_ldif() -> String {
    let mut l = String::new();
    let mut entry = |dn: &str, attrs: &[(&str, &str)]| {
        l.push_str(&ldif_line("dn", dn));
        for (name, value) in attrs {
            l.push_str(&ldif_line(name, value));
        }
        l.push('\n');
    };
    entry(DEMO_SUFFIX, &[("objectClass", "dcObject"), ("objectClass", "organization"), ("dc", "example"), ("o", "Example")]);
    entry(
        DEMO_SVC_DN,
        &[
            ("objectClass", "organizationalRole"),
            ("objectClass", "simpleSecurityObject"),
            ("cn", "svc"),
            ("description", "ldap-sync's service account"),
            ("userPassword", DEMO_SVC_PASSWORD),
        ],
    );
    entry(DEMO_PEOPLE_BASE, &[("objectClass", "organizationalUnit"), ("ou", "people")]);
    for u in &DEMO_USERS {
        entry(
            &u.dn(),
            &[
                ("objectClass", "inetOrgPerson"),
                ("uid", u.uid),
                ("cn", u.cn),
                ("sn", u.sn),
                ("givenName", u.given_name),
                ("mail", u.mail),
                ("userPassword", DEMO_USER_PASSWORD),
            ],
        );
    }
    entry(DEMO_GROUPS_BASE, &[("objectClass", "organizationalUnit"), ("ou", "groups")]);
    let members: Vec<String> = DEMO_USERS.iter().filter(|u| u.is_admin()).map(DemoUser::dn).collect();
    let mut attrs = vec![("objectClass", "groupOfNames"), ("cn", "admins")];
    attrs.extend(members.iter().map(|m| ("member", m.as_str())));
    entry(DEMO_ADMINS_GROUP_DN, &attrs);
    l
}

/// The Spin variables (lower-case names, as in `spin.toml`) that point
/// ldap-sync at the demo directory on 127.0.0.1:`port`.
pub fn demo_variables(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("ldap_enable", "true".into()),
        ("ldap_server_type", String::new()),
        ("ldap_ip", "127.0.0.1".into()),
        ("ldap_port", port.to_string()),
        ("ldap_basedn", DEMO_PEOPLE_BASE.into()),
        ("ldap_authentication", "true".into()),
        ("ldap_authentication_userdn", DEMO_SVC_DN.into()),
        ("ldap_authentication_password", DEMO_SVC_PASSWORD.into()),
        ("ldap_unique_identifier_field", "entryUUID,uid".into()),
        ("ldap_user_search_field", "uid".into()),
        ("ldap_username_field", "uid".into()),
        ("ldap_email_field", "mail".into()),
        ("ldap_name_field", "cn".into()),
    ]
}

/// [`demo_variables`] as shell assignments, `SPIN_VARIABLE_<NAME>=value`
/// (upper-case name, the value single-quoted when the shell needs it).
pub fn spin_variable_lines(port: u16) -> Vec<String> {
    demo_variables(port)
        .into_iter()
        .map(|(name, value)| shell_assignment(&format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()), &value))
        .collect()
}

/// `NAME=value`, the value single-quoted when the shell needs it.
fn shell_assignment(name: &str, value: &str) -> String {
    let plain = value.chars().all(|c| c.is_ascii_alphanumeric() || "_.,=:/@%+-".contains(c));
    if plain { format!("{name}={value}") } else { format!("{name}='{}'", value.replace('\'', r"'\''")) }
}

/// The fixture options for the demo directory on `port` (`None` = a free port).
pub fn demo_options(port: Option<u16>) -> SlapdOptions {
    SlapdOptions { suffix: DEMO_SUFFIX.into(), ldif: demo_ldif(), port, ..SlapdOptions::default() }
}

/// Starts slapd serving the demo directory on `port` (`None` = a free port);
/// it stops when the returned [`Slapd`] is dropped.
pub fn start_demo(port: Option<u16>) -> anyhow::Result<Slapd> {
    Slapd::start(demo_options(port))
}

/// `name: value\n`, or `name:: base64\n` when `value` is not an RFC 2849
/// SAFE-STRING (non-ASCII, or an unsafe first or last character).
fn ldif_line(name: &str, value: &str) -> String {
    let safe_init = |c: char| c.is_ascii() && !matches!(c, '\0' | '\n' | '\r' | ' ' | ':' | '<');
    let safe = value.chars().next().is_none_or(safe_init)
        && value.chars().all(|c| c.is_ascii() && !matches!(c, '\0' | '\n' | '\r'))
        && !value.ends_with(' ');
    if safe { format!("{name}: {value}\n") } else { format!("{name}:: {}\n", base64(value.as_bytes())) }
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::process::Command;

    use anyhow::Context as _;
    use base64::Engine as _;

    use super::*;
    use crate::Manifest;

    /// `ldapsearch -LLL` bound as `bind`; fails unless it exits 0.
    fn search(url: &str, bind: (&str, &str), args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("/usr/bin/ldapsearch")
            .env("LDAPNOINIT", "1")
            .args(["-x", "-LLL", "-o", "nettimeout=5", "-o", "ldif-wrap=no", "-H", url])
            .args(["-D", bind.0, "-w", bind.1])
            .args(args)
            .output()
            .context("running ldapsearch")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        anyhow::ensure!(
            out.status.success(),
            "ldapsearch {args:?} failed ({}):\n{}{text}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(text)
    }

    /// The values of `attr` in ldapsearch output, base64 (`attr::`) decoded.
    fn values(out: &str, attr: &str) -> Vec<String> {
        out.lines()
            .filter_map(|l| {
                if let Some(v) = l.strip_prefix(&format!("{attr}:: ")) {
                    let bytes = base64::engine::general_purpose::STANDARD.decode(v).expect("base64");
                    Some(String::from_utf8(bytes).expect("utf-8"))
                } else {
                    l.strip_prefix(&format!("{attr}: ")).map(str::to_owned)
                }
            })
            .collect()
    }

    #[test]
    fn demo_directory_serves_twelve_people_and_the_admins_group() -> anyhow::Result<()> {
        let s = start_demo(None)?;
        let svc = (DEMO_SVC_DN, DEMO_SVC_PASSWORD);
        let out = search(&s.url(), svc, &["-b", DEMO_PEOPLE_BASE, "(objectClass=inetOrgPerson)", "uid", "cn", "mail"])?;
        assert_eq!(values(&out, "dn").len(), 12, "{out}");
        let mut uids = values(&out, "uid");
        uids.sort();
        let mut want: Vec<String> = DEMO_USERS.iter().map(|u| u.uid.to_owned()).collect();
        want.sort();
        assert_eq!(uids, want, "{out}");
        let cns = values(&out, "cn");
        assert!(cns.iter().any(|c| c == "Zoë Ångström") && cns.iter().any(|c| c == "李雷"), "{cns:?}");
        assert_eq!(values(&out, "mail").len(), 12, "{out}");

        let out = search(&s.url(), svc, &["-b", DEMO_GROUPS_BASE, "(cn=admins)", "member"])?;
        assert_eq!(values(&out, "dn"), [DEMO_ADMINS_GROUP_DN], "{out}");
        assert_eq!(values(&out, "member"), ["uid=alice,ou=people,dc=example,dc=org", "uid=bob,ou=people,dc=example,dc=org"], "{out}");

        // Every user binds with the shared password (the non-ASCII ones too).
        for u in [&DEMO_USERS[0], &DEMO_USERS[10], &DEMO_USERS[11]] {
            let dn = u.dn();
            let out = search(&s.url(), (&dn, DEMO_USER_PASSWORD), &["-b", &dn, "-s", "base", "cn"])?;
            assert_eq!(values(&out, "cn"), [u.cn], "{out}");
        }
        Ok(())
    }

    #[test]
    fn demo_fixed_port_is_honoured_and_a_taken_port_is_a_clear_error() -> anyhow::Result<()> {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port();
        let s = start_demo(Some(port))?;
        assert_eq!((s.port(), s.url()), (port, format!("ldap://127.0.0.1:{port}")));
        let out = search(&s.url(), (DEMO_SVC_DN, DEMO_SVC_PASSWORD), &["-b", DEMO_PEOPLE_BASE, "(uid=zoe)", "mail"])?;
        assert_eq!(values(&out, "mail"), ["zoe@example.org"], "{out}");
        let err = start_demo(Some(port)).err().context("the port is taken")?;
        let err = format!("{err:#}");
        assert!(err.contains(&format!("port {port} on 127.0.0.1 is not available")), "{err}");
        Ok(())
    }

    #[test]
    fn demo_variables_are_the_manifests_and_allow_the_port() -> anyhow::Result<()> {
        let manifest = Manifest::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../spin.toml")))?;
        let overrides: BTreeMap<String, String> = demo_variables(3389).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        assert_eq!(overrides.len(), 13);
        let resolved = manifest.resolve_with_env(&overrides, |_| None)?;
        for (name, value) in &overrides {
            assert_eq!(resolved.component_variables.get(name), Some(value), "{name}");
        }
        assert!(resolved.allowed_outbound_hosts.iter().any(|h| h == "tcp://127.0.0.1:3389"), "{:?}", resolved.allowed_outbound_hosts);
        Ok(())
    }

    #[test]
    fn demo_spin_variable_lines_are_shell_safe() {
        let lines = spin_variable_lines(4000);
        assert_eq!(lines.len(), 13);
        assert_eq!(lines[0], "SPIN_VARIABLE_LDAP_ENABLE=true");
        assert_eq!(lines[1], "SPIN_VARIABLE_LDAP_SERVER_TYPE=");
        assert_eq!(lines[3], "SPIN_VARIABLE_LDAP_PORT=4000");
        assert_eq!(lines[4], "SPIN_VARIABLE_LDAP_BASEDN=ou=people,dc=example,dc=org");
        assert_eq!(lines[8], "SPIN_VARIABLE_LDAP_UNIQUE_IDENTIFIER_FIELD=entryUUID,uid");
        assert_eq!(shell_assignment("X", "a b'c"), r"X='a b'\''c'");
    }

    #[test]
    fn demo_ldif_encodes_non_ascii_values() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(ldif_line("cn", "Bob"), "cn: Bob\n");
        assert_eq!(ldif_line("cn", "李雷"), "cn:: 5p2O6Zu3\n");
        assert_eq!(ldif_line("cn", " x"), "cn:: IHg=\n");
        assert_eq!(ldif_line("cn", ""), "cn: \n");
        let ldif = demo_ldif();
        assert!(ldif.is_ascii(), "{ldif}");
        assert_eq!(ldif.matches("\nobjectClass: inetOrgPerson\n").count(), 12);
        assert_eq!(ldif.matches("\nuserPassword: password\n").count(), 12);
    }
}
