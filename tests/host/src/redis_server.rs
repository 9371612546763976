//! A throwaway `redis-server` for the tests: its own directory, a free port
//! on 127.0.0.1, no persistence (`save ""`, no AOF), stopped (and its
//! directory removed) on drop. Debian's package: `apt-get install
//! redis-server`.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};

use crate::slapd::{free_port, make_temp_dir};

const REDIS_SERVER: &str = "/usr/bin/redis-server";
const INSTALL: &str = "apt-get install redis-server";
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Fails with the install command when `redis-server` is missing.
pub fn require_redis() -> anyhow::Result<()> {
    ensure!(Path::new(REDIS_SERVER).is_file(), "redis-server not found: install it with `{INSTALL}` ({REDIS_SERVER} is missing)");
    Ok(())
}

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl RedisServer {
    /// Starts one and waits (up to 10 s) until it answers `PING`.
    pub fn start() -> anyhow::Result<RedisServer> {
        require_redis()?;
        let dir = make_temp_dir()?;
        let port = free_port()?;
        let log = fs::File::create(dir.join("redis.log")).context("creating redis.log")?;
        let child = Command::new(REDIS_SERVER)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "yes", "--daemonize", "no", "--databases", "1"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("redis.log")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {REDIS_SERVER} (install: `{INSTALL}`)"))?;
        let mut server = RedisServer { child: Some(child), dir, port };
        server.wait_ready()?;
        Ok(server)
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`, as `runtime-config.toml` names it.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Writes a Spin `runtime-config.toml` that puts the `default` store on
    /// this server, in the server's directory, and returns its path.
    pub fn runtime_config(&self) -> anyhow::Result<PathBuf> {
        let path = self.dir.join("runtime-config.toml");
        fs::write(&path, format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n", self.url()))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// `HostOptions` for a host whose store is on this server (the server
    /// lives as long as the host), with `kv_batch_reads=false`, which Spin's
    /// Redis store needs.
    pub fn host_options(self: &std::sync::Arc<Self>, mut opts: crate::HostOptions) -> anyhow::Result<crate::HostOptions> {
        opts.runtime_config = Some(self.runtime_config()?);
        opts.keep_alive = Some(crate::KeepAlive(self.clone()));
        opts.variables.entry("kv_batch_reads".to_owned()).or_insert_with(|| "false".to_owned());
        Ok(opts)
    }

    /// The server's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { bail!("redis-server is not running") };
        let port = self.port;
        let poll = (START_TIMEOUT, Duration::from_millis(25));
        let ready =
            crate::process::wait_until_ready("redis-server", &mut child, &self.url(), poll, || ping(port).is_ok(), || self.log_tail(20));
        self.child = Some(child);
        ready
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        crate::process::stop_child(&mut self.child);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `PING` in RESP, answered `+PONG`.
fn ping(port: u16) -> anyhow::Result<()> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.write_all(b"*1\r\n$4\r\nPING\r\n")?;
    let mut reply = [0u8; 7];
    s.read_exact(&mut reply)?;
    ensure!(&reply == b"+PONG\r\n", "unexpected PING reply");
    Ok(())
}
