//! `ldap-sync-serve`: serves the component over HTTP/1.1, like `spin up`.
//!
//! ```text
//! ldap-sync-serve [--listen 127.0.0.1:3000] [--any-address] [--state-dir DIR] [--runtime-config-file FILE]
//!                 [--manifest PATH] [--variable NAME=VALUE]...
//! ```
//!
//! * `--listen`: the address to bind (default `127.0.0.1:3000`, as `spin up`).
//!   Only loopback addresses are accepted unless `--any-address` is given.
//! * `--state-dir`: where `sqlite_key_value.db` is kept (default `.spin` next
//!   to the manifest, as `spin up`); the file is interchangeable with Spin's.
//! * `--manifest`: the `spin.toml` (default `$LDAP_SYNC_MANIFEST`, else the
//!   project's).
//! * `--variable NAME=VALUE` (repeatable): application variable overrides;
//!   they win over `SPIN_VARIABLE_*` and the manifest defaults.
//!
//! Requests are served in parallel, as Spin serves them: one fresh instance
//! per request, on the worker threads of a multi-threaded runtime
//! ([`ldap_sync_host::serve`]). Each request goes through `Host::send_from`
//! with the peer's address, so the component sees it in `spin-client-addr`.
//! Request bodies are read whole before the component runs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail, ensure};
use ldap_sync_host::{Host, HostOptions, default_manifest_path};
use tokio::net::TcpListener;

const USAGE: &str = "\
usage: ldap-sync-serve [--listen ADDR] [--any-address] [--state-dir DIR] [--runtime-config-file FILE]
                       [--manifest PATH] [--variable NAME=VALUE]...

  --listen ADDR          address to serve on (default 127.0.0.1:3000)
  --any-address          allow a non-loopback --listen address
  --state-dir DIR        key-value state directory (default: .spin next to the manifest)
  --runtime-config-file FILE
                         Spin's runtime-config.toml: [key_value_store.default] on Redis
                         (type = \"redis\", url) or SQLite (type = \"spin\", path)
  --manifest PATH        spin.toml to run (default: $LDAP_SYNC_MANIFEST or the project's)
  --variable NAME=VALUE  set an application variable (repeatable)
";

#[derive(Debug, PartialEq, Eq)]
struct Args {
    listen: SocketAddr,
    any_address: bool,
    state_dir: Option<PathBuf>,
    runtime_config: Option<PathBuf>,
    manifest: Option<PathBuf>,
    variables: BTreeMap<String, String>,
}

/// Parses the command line; `Ok(None)` means `--help` was asked for.
fn parse_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Args>> {
    let mut out = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
        any_address: false,
        state_dir: None,
        runtime_config: None,
        manifest: None,
        variables: BTreeMap::new(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> anyhow::Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args.next().with_context(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => {
                let v = value("--listen")?;
                out.listen = v.parse().with_context(|| format!("--listen {v:?} is not an IP:port address"))?;
            }
            "--any-address" => out.any_address = true,
            "--state-dir" => out.state_dir = Some(PathBuf::from(value("--state-dir")?)),
            "--runtime-config-file" => out.runtime_config = Some(PathBuf::from(value("--runtime-config-file")?)),
            "--manifest" => out.manifest = Some(PathBuf::from(value("--manifest")?)),
            "--variable" => {
                let v = value("--variable")?;
                let Some((name, val)) = v.split_once('=') else {
                    bail!("--variable {v:?}: expected NAME=VALUE");
                };
                out.variables.insert(name.to_owned(), val.to_owned());
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    ensure!(
        out.any_address || out.listen.ip().is_loopback(),
        "refusing to listen on non-loopback address {} without --any-address",
        out.listen
    );
    Ok(Some(out))
}

// Several worker threads (one per core): requests run in parallel, as in Spin.
#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let Some(args) = parse_args(std::env::args().skip(1))? else {
        print!("{USAGE}");
        return Ok(());
    };
    let manifest = args.manifest.unwrap_or_else(default_manifest_path);
    let state_dir = match args.state_dir {
        Some(dir) => dir,
        None => std::fs::canonicalize(&manifest)
            .with_context(|| format!("reading manifest {}", manifest.display()))?
            .parent()
            .context("the manifest has no parent directory")?
            .join(".spin"),
    };
    let host = Arc::new(Host::new(HostOptions {
        manifest: Some(manifest),
        state_dir: Some(state_dir.clone()),
        runtime_config: args.runtime_config.clone(),
        variables: args.variables,
        ..HostOptions::default()
    })?);

    let listener = TcpListener::bind(args.listen).await.with_context(|| format!("unable to listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("Serving http://{addr}");
    println!("Available Routes:");
    let component = &host.manifest().component.id;
    for route in &host.manifest().routes {
        println!("  {component}: http://{addr}{}", route.raw());
    }
    match host.kv_store().redis() {
        Some(redis) => println!("Key-value store: Redis at {}", redis.url()),
        None => println!(
            "Key-value store: {}",
            host.kv_store().path().unwrap_or(&state_dir.join(ldap_sync_host::kv::DEFAULT_DB_FILE)).display()
        ),
    }

    ldap_sync_host::serve::serve(listener, host).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Option<Args>> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn arguments() -> anyhow::Result<()> {
        let a = parse(&[])?.context("args")?;
        assert_eq!(a.listen, "127.0.0.1:3000".parse()?);
        assert_eq!(a.state_dir, None);
        let a = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--state-dir=/tmp/s",
            "--variable",
            "ldap_ip=10.0.0.1",
            "--variable=ldap_port=636",
            "--manifest",
            "x/spin.toml",
        ])?
        .context("args")?;
        assert_eq!(a.listen, "127.0.0.1:0".parse()?);
        assert_eq!(a.state_dir, Some(PathBuf::from("/tmp/s")));
        assert_eq!(a.manifest, Some(PathBuf::from("x/spin.toml")));
        assert_eq!(a.variables["ldap_ip"], "10.0.0.1");
        assert_eq!(a.variables["ldap_port"], "636");
        assert!(parse(&["--listen", "[::1]:3000"])?.is_some());
        assert!(parse(&["--listen", "0.0.0.0:3000"]).is_err());
        assert!(parse(&["--listen", "0.0.0.0:3000", "--any-address"])?.is_some());
        assert!(parse(&["--variable", "novalue"]).is_err());
        assert!(parse(&["--listen"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--help"])?.is_none());
        Ok(())
    }
}
