//! `ldap-sync-demo-directory`: a demo OpenLDAP directory for trying ldap-sync.
//!
//! ```text
//! ldap-sync-demo-directory [--port PORT]
//! ```
//!
//! Starts Debian's `slapd` on `ldap://127.0.0.1:PORT` (default 3389; `0` = a
//! free port) serving
//! [`demo_ldif`](ldap_sync_host::demo::demo_ldif): twelve users under
//! `ou=people,dc=example,dc=org`, the service account
//! `cn=svc,dc=example,dc=org` and the group `cn=admins,ou=groups,...`. It
//! prints the users, their password and the `SPIN_VARIABLE_*` lines that point
//! ldap-sync at the directory, then runs until Enter is pressed (or stdin
//! ends), and stops slapd and removes its temp directory.
//!
//! Ctrl-C stops slapd too (it is in the same foreground process group), but
//! leaves its temp directory (`ldap-sync-slapd-*` under `$TMPDIR`) behind.
//! In a script, keep stdin open (`sleep infinity | ldap-sync-demo-directory &`):
//! a background job's stdin is `/dev/null`, which ends at once.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use ldap_sync_host::demo::{
    DEMO_ADMINS_GROUP_DN, DEMO_DEFAULT_PORT, DEMO_PEOPLE_BASE, DEMO_SVC_DN, DEMO_SVC_PASSWORD, DEMO_USER_PASSWORD, DEMO_USERS,
    spin_variable_lines, start_demo,
};

const USAGE: &str = "\
usage: ldap-sync-demo-directory [--port PORT]

  --port PORT  LDAP port on 127.0.0.1 (default 3389; 0 = any free port)

Serves a demo directory with OpenLDAP's slapd until Enter is pressed.
";

/// Parses the command line; `Ok(None)` means `--help` was asked for.
fn parse_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<u16>> {
    let mut port = DEMO_DEFAULT_PORT;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => args.next().context("--port needs a value")?,
            a => match a.strip_prefix("--port=") {
                Some(v) => v.to_owned(),
                None => bail!("unknown argument {a:?}\n\n{USAGE}"),
            },
        };
        port = value.parse().with_context(|| format!("--port {value:?} is not a port number (0-65535)"))?;
    }
    Ok(Some(port))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ldap-sync-demo-directory: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let Some(port) = parse_args(std::env::args().skip(1))? else {
        print!("{USAGE}");
        return Ok(());
    };
    let slapd = start_demo(Some(port)).with_context(|| {
        let mut msg = "cannot start the demo directory".to_owned();
        if port != 0 {
            msg.push_str(" (pick another port with --port PORT, or --port 0 for any free one)");
        }
        msg
    })?;
    let url = slapd.url();

    let mut out = String::new();
    out.push_str(&format!("Demo LDAP directory (OpenLDAP slapd) at {url}\n"));
    out.push_str(&format!("  users:           {DEMO_PEOPLE_BASE}\n"));
    out.push_str(&format!("  group:           {DEMO_ADMINS_GROUP_DN}\n"));
    out.push_str(&format!("  service account: {DEMO_SVC_DN} / {DEMO_SVC_PASSWORD}\n"));
    out.push_str(&format!("  data:            {}\n\n", slapd.dir().display()));
    out.push_str(&format!("Users (password \"{DEMO_USER_PASSWORD}\" for all; * = member of cn=admins):\n"));
    for u in &DEMO_USERS {
        let admin = if u.is_admin() { '*' } else { ' ' };
        out.push_str(&format!("  {admin} {:<6} {:<18} {}\n", u.uid, u.mail, u.cn));
    }
    out.push_str("\nPoint ldap-sync at it (the same variables work for ldap-sync-serve):\n\n");
    let port = slapd.port();
    for line in spin_variable_lines(port) {
        out.push_str(&line);
        out.push_str(" \\\n");
    }
    out.push_str("spin up --build\n\n");
    out.push_str(&format!(
        "Look inside: ldapsearch -x -H {url} -D {DEMO_SVC_DN} -w {DEMO_SVC_PASSWORD} \
         -b {DEMO_PEOPLE_BASE} uid mail cn\n\n"
    ));
    let stdin = std::io::stdin();
    out.push_str(if stdin.is_terminal() { "Press Enter to stop.\n" } else { "Stops at the first line of stdin, or at its end.\n" });
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    drop(stdout);

    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    drop(slapd); // stops slapd and removes its directory
    read.context("reading stdin")?;
    println!("Stopped.");
    Ok(())
}
