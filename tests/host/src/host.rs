//! The host itself: [`Host`] loads the manifest, opens the key-value store,
//! compiles the component once per process and runs **one fresh instance per
//! request**, as Spin does for `wasi:http/incoming-handler` components. What
//! a request looks like when it reaches the guest (Spin's headers, routing,
//! the `Host` checks) is the job of `request.rs`, not of this module.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView as _};

use crate::bindings::{self, MemoryPeak, SpinState, State};
use crate::clock::TestClock;
use crate::kv::{DEFAULT_STORE, KvStore};
use crate::manifest::{Manifest, Resolved};
use crate::net::{self, AllowedHosts, OutboundHttp};
use crate::request::{ClientAddr, DEFAULT_CLIENT_ADDR, Prepared, prepare_request};

/// Environment variable naming the manifest to load instead of the default.
pub const MANIFEST_ENV: &str = "LDAP_SYNC_MANIFEST";

/// The `spin.toml` to load: `$LDAP_SYNC_MANIFEST` if set, else the project's.
pub fn default_manifest_path() -> PathBuf {
    std::env::var_os(MANIFEST_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../spin.toml")))
}

/// How to build a [`Host`].
#[derive(Clone, Debug, Default)]
pub struct HostOptions {
    /// The manifest; `None` = [`default_manifest_path`].
    pub manifest: Option<PathBuf>,
    /// Where `sqlite_key_value.db` lives; `None` = an in-memory database.
    pub state_dir: Option<PathBuf>,
    /// Spin's `runtime-config.toml` (`--runtime-config-file`): where the
    /// `default` store lives, e.g. on Redis (`kv::runtime_config`). It wins
    /// over `state_dir` when it configures the store, as in Spin.
    pub runtime_config: Option<PathBuf>,
    /// Application variable overrides (win over `SPIN_VARIABLE_*` and defaults).
    pub variables: BTreeMap<String, String>,
    /// Keep the guest's stdout and stderr in memory ([`Host::output`])
    /// instead of passing them to this process's own, as Spin does. Every
    /// request of the host writes to the same two buffers, in order.
    pub capture_output: bool,
    /// Kept as long as the host lives (a Redis server the store is on, say).
    pub keep_alive: Option<KeepAlive>,
}

/// Anything a [`Host`] must keep alive (see [`HostOptions::keep_alive`]).
#[derive(Clone)]
pub struct KeepAlive(pub Arc<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for KeepAlive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeepAlive")
    }
}

/// What the guest wrote to stdout and stderr, over every request of one
/// [`Host`] built with [`HostOptions::capture_output`].
///
/// Each stream holds at most [`CapturedOutput::CAPACITY`] bytes; a guest
/// write past that traps the request (a test that logs this much has a bug).
#[derive(Clone, Debug)]
pub struct CapturedOutput {
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl CapturedOutput {
    /// Bytes kept per stream.
    pub const CAPACITY: usize = 64 << 20;

    fn new() -> Self {
        Self { stdout: MemoryOutputPipe::new(Self::CAPACITY), stderr: MemoryOutputPipe::new(Self::CAPACITY) }
    }

    /// Everything the guest wrote to stdout so far.
    pub fn stdout(&self) -> Vec<u8> {
        self.stdout.contents().to_vec()
    }

    /// Everything the guest wrote to stderr so far.
    pub fn stderr(&self) -> Vec<u8> {
        self.stderr.contents().to_vec()
    }
}

/// A response from the component (or from the host, for 404s and errors).
#[derive(Clone, Debug)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The response headers.
    pub headers: http::HeaderMap,
    /// The whole body.
    pub body: Vec<u8>,
    /// The guest's trap or error, if the invocation failed (Spin logs it and,
    /// when no response was set yet, answers 500).
    pub error: Option<String>,
    /// The guest's peak linear memory during this request, in bytes (0 for
    /// responses the host gave without running the component).
    pub guest_memory_peak: u64,
}

impl Response {
    pub(crate) fn empty(status: u16) -> Self {
        Self { status, headers: http::HeaderMap::new(), body: Vec::new(), error: None, guest_memory_peak: 0 }
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn try_json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| format!("response body (status {}) is not JSON: {:?}", self.status, self.text()))
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    ///
    /// If the body is not JSON: this is a test helper, and a non-JSON body is
    /// a test failure. Use [`Response::try_json`] to handle it instead.
    #[expect(clippy::panic, reason = "test helper: a non-JSON body fails the test")]
    pub fn json(&self) -> serde_json::Value {
        match self.try_json() {
            Ok(v) => v,
            Err(e) => panic!("{e:#}"),
        }
    }

    /// The first value of a header, as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

// ---------------------------------------------------------------------------
// The host
// ---------------------------------------------------------------------------

/// Runs the component: one fresh instance per request.
pub struct Host {
    manifest: Manifest,
    overrides: BTreeMap<String, String>,
    resolved: Resolved,
    component_variables: Arc<BTreeMap<String, String>>,
    allowed_hosts: Arc<AllowedHosts>,
    kv_labels: Arc<[String]>,
    component_id: Arc<str>,
    environment: Vec<(String, String)>,
    pre: ProxyPre<State>,
    kv: KvStore,
    clock: TestClock,
    output: Option<CapturedOutput>,
    _keep_alive: Option<KeepAlive>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("manifest", &self.manifest.path)
            .field("component", &self.manifest.component.source)
            .field("kv", &self.kv)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Loads the manifest, resolves variables, opens the key-value store and
    /// compiles the component (or reuses this process's compiled copy).
    pub fn new(opts: HostOptions) -> anyhow::Result<Host> {
        let manifest_path = opts.manifest.unwrap_or_else(default_manifest_path);
        let manifest = Manifest::load(&manifest_path)?;
        let resolved = manifest.resolve(&opts.variables)?;
        let store = match &opts.runtime_config {
            Some(path) => crate::kv::runtime_config::load(path)?,
            None => crate::kv::runtime_config::DefaultStore::StateDir,
        };
        let kv: KvStore = store.open(opts.state_dir.as_deref())?;
        let pre = load_component(&manifest.component.source, &manifest.dir)?;
        Ok(Host {
            component_variables: Arc::new(resolved.component_variables.clone()),
            allowed_hosts: Arc::new(resolved.allowed_hosts.clone()),
            kv_labels: manifest.component.key_value_stores.clone().into(),
            component_id: manifest.component.id.as_str().into(),
            environment: manifest.component.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            overrides: opts.variables,
            resolved,
            manifest,
            pre,
            kv,
            clock: TestClock::new(),
            output: opts.capture_output.then(CapturedOutput::new),
            _keep_alive: opts.keep_alive,
        })
    }

    /// Sends a request from [`DEFAULT_CLIENT_ADDR`] (or the request's
    /// [`ClientAddr`] extension).
    pub async fn send(&self, req: http::Request<Vec<u8>>) -> anyhow::Result<Response> {
        let client = req.extensions().get::<ClientAddr>().map_or(DEFAULT_CLIENT_ADDR, |c| c.0);
        self.send_from(client, req).await
    }

    /// Sends a request as coming from `client` (`spin-client-addr`).
    pub async fn send_from(&self, client: SocketAddr, req: http::Request<Vec<u8>>) -> anyhow::Result<Response> {
        let (parts, body) = req.into_parts();
        match prepare_request(&self.manifest, parts, client)? {
            Prepared::Respond(res) => Ok(res),
            Prepared::Invoke(parts) => {
                let req = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
                self.invoke(req).await
            }
        }
    }

    fn new_store(&self) -> Store<State> {
        let allowed = Arc::clone(&self.allowed_hosts);
        let mut wasi = WasiCtx::builder();
        match &self.output {
            // Clones share the buffers: every request appends to the same two.
            Some(output) => wasi.stdout(output.stdout.clone()).stderr(output.stderr.clone()),
            None => wasi.inherit_stdout().inherit_stderr(),
        };
        wasi.envs(&self.environment)
            .wall_clock(self.clock.clone())
            .allow_tcp(true)
            .allow_udp(false)
            // Spin never enables guest DNS lookups.
            .allow_ip_name_lookup(false)
            .socket_addr_check(move |addr, use_| {
                let ok = net::socket_addr_allowed(&allowed, addr, use_);
                Box::pin(async move { ok })
            });
        let state = State {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHttp::new(Arc::clone(&self.allowed_hosts)),
            spin: SpinState {
                kv: self.kv.clone(),
                kv_labels: Arc::clone(&self.kv_labels),
                variables: Arc::clone(&self.component_variables),
                component_id: Arc::clone(&self.component_id),
            },
            memory: MemoryPeak::default(),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.memory);
        store
    }

    async fn invoke(&self, req: http::Request<Full<Bytes>>) -> anyhow::Result<Response> {
        let mut store = self.new_store();
        let peak = store.data().memory.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let req = wt(store.data_mut().http().new_incoming_request(Scheme::Http, req))?;
        let out = wt(store.data_mut().http().new_response_outparam(tx))?;
        let pre = self.pre.clone();
        let task = tokio::task::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
        });

        let guest_error = |joined: Result<wasmtime::Result<()>, tokio::task::JoinError>| match joined {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{:?}", anyhow::Error::from(e))),
            Err(e) => Some(format!("guest task failed: {e}")),
        };

        match rx.await {
            Ok(Ok(resp)) => {
                let (parts, body) = resp.into_parts();
                let body = body.collect().await;
                // Wait for the handler to return, so that everything it does
                // after sending the response (KV writes...) is done too.
                let error = guest_error(task.await);
                let body = match body {
                    Ok(b) => b.to_bytes().to_vec(),
                    Err(e) => bail!("the response body failed: {e:?}{}", error.map(|e| format!("; guest error: {e}")).unwrap_or_default()),
                };
                if let Some(e) = &error {
                    eprintln!("ldap-sync-host: component error after the response started: {e}");
                }
                Ok(Response { status: parts.status.as_u16(), headers: parts.headers, body, error, guest_memory_peak: peak.bytes() })
            }
            Ok(Err(code)) => {
                let mut error = format!("guest failed to produce a response: {code:?}");
                if let Some(e) = guest_error(task.await) {
                    error.push_str(&format!("; {e}"));
                }
                eprintln!("ldap-sync-host: error processing request: {error}");
                Ok(Response { error: Some(error), guest_memory_peak: peak.bytes(), ..Response::empty(500) })
            }
            Err(_) => {
                let error = guest_error(task.await).map_or_else(
                    || "guest failed to produce a response prior to returning".to_owned(),
                    |e| format!("guest invocation failed: {e}"),
                );
                eprintln!("ldap-sync-host: error processing request: {error}");
                Ok(Response { error: Some(error), guest_memory_peak: peak.bytes(), ..Response::empty(500) })
            }
        }
    }

    /// `get` on the default store.
    pub fn kv_get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.kv.get(DEFAULT_STORE, key)
    }

    /// `set` on the default store.
    pub fn kv_set(&self, key: &str, value: &[u8]) -> anyhow::Result<()> {
        self.kv.set(DEFAULT_STORE, key, value)
    }

    /// `delete` on the default store.
    pub fn kv_delete(&self, key: &str) -> anyhow::Result<()> {
        self.kv.delete(DEFAULT_STORE, key)
    }

    /// All keys of the default store, sorted.
    pub fn kv_keys(&self) -> anyhow::Result<Vec<String>> {
        let mut keys = self.kv.keys(DEFAULT_STORE)?;
        keys.sort();
        Ok(keys)
    }

    /// The guest's captured stdout and stderr, when built with
    /// [`HostOptions::capture_output`]; `None` when they go to this
    /// process's own.
    pub fn output(&self) -> Option<&CapturedOutput> {
        self.output.as_ref()
    }

    /// The underlying store, for batch operations and other labels.
    pub fn kv_store(&self) -> &KvStore {
        &self.kv
    }

    /// Sets an application variable override and re-resolves the component
    /// variables and allowed outbound hosts (for later requests). On error
    /// nothing changes.
    pub fn set_variable(&mut self, name: impl Into<String>, value: impl Into<String>) -> anyhow::Result<()> {
        let mut overrides = self.overrides.clone();
        overrides.insert(name.into(), value.into());
        let resolved = self.manifest.resolve(&overrides)?;
        self.component_variables = Arc::new(resolved.component_variables.clone());
        self.allowed_hosts = Arc::new(resolved.allowed_hosts.clone());
        self.resolved = resolved;
        self.overrides = overrides;
        Ok(())
    }

    /// The component's variables as the guest sees them.
    pub fn variables(&self) -> &BTreeMap<String, String> {
        &self.resolved.component_variables
    }

    /// The resolved `allowed_outbound_hosts`.
    pub fn allowed_outbound_hosts(&self) -> &[String] {
        &self.resolved.allowed_outbound_hosts
    }

    /// The loaded manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The guest's wall clock (shared: changes apply to running requests too).
    pub fn clock(&self) -> &TestClock {
        &self.clock
    }

    /// Freezes the guest's wall clock at `t`.
    pub fn set_time(&self, t: SystemTime) {
        self.clock.set(t);
    }

    /// Moves the guest's wall clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    /// Makes the guest's wall clock follow real time again.
    pub fn use_real_time(&self) {
        self.clock.use_real_time();
    }
}

fn wt<T>(r: wasmtime::Result<T>) -> anyhow::Result<T> {
    r.map_err(anyhow::Error::from)
}

// ---------------------------------------------------------------------------
// Compile once per process
// ---------------------------------------------------------------------------

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    // wasmtime 48 always supports async; the default config is what we want.
    ENGINE.get_or_init(Engine::default)
}

type Slot = Arc<Mutex<Option<ProxyPre<State>>>>;

/// Compiles (once per process and `.wasm` path) and pre-links the component.
fn load_component(wasm: &Path, app_dir: &Path) -> anyhow::Result<ProxyPre<State>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Slot>>> = OnceLock::new();
    if !wasm.is_file() {
        bail!(
            "component not built: run `cargo build --target wasm32-wasip2 --release` in {} \
             (looked for {})",
            app_dir.display(),
            wasm.display()
        );
    }
    let slot: Slot = {
        let mut map = CACHE.get_or_init(Default::default).lock().map_err(|_| anyhow!("component cache mutex poisoned"))?;
        map.entry(wasm.to_path_buf()).or_default().clone()
    };
    // Holding the slot's lock while compiling makes concurrent Host::new
    // calls for the same component wait for one compilation.
    let mut slot = slot.lock().map_err(|_| anyhow!("component cache slot mutex poisoned"))?;
    if let Some(pre) = &*slot {
        return Ok(pre.clone());
    }
    let component = wt(Component::from_file(engine(), wasm)).with_context(|| format!("compiling {}", wasm.display()))?;
    let mut linker = Linker::<State>::new(engine());
    wt(wasmtime_wasi::p2::add_to_linker_async(&mut linker))?;
    wt(wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))?;
    bindings::add_to_linker(&mut linker)?;
    let pre = wt(linker.instantiate_pre(&component))
        .and_then(|pre| wt(ProxyPre::new(pre)))
        .with_context(|| format!("linking {}", wasm.display()))?;
    *slot = Some(pre.clone());
    Ok(pre)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_component_message() {
        let dir = std::env::temp_dir();
        let Err(err) = load_component(&dir.join("definitely-missing.wasm"), &dir) else {
            unreachable!("a missing file cannot load");
        };
        assert!(err.to_string().starts_with("component not built: run `cargo build --target wasm32-wasip2 --release` in"), "{err}");
    }

    #[test]
    fn response_helpers() {
        let mut r = Response::empty(200);
        r.body = br#"{"success":true}"#.to_vec();
        assert_eq!(r.json()["success"], true);
        assert_eq!(r.text(), r#"{"success":true}"#);
        r.body = b"nope".to_vec();
        assert!(r.try_json().is_err());
    }
}
