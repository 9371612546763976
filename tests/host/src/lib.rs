//! A Spin-compatible wasmtime host for the `ldap-sync` component.
//!
//! [`Host`] runs the real component (`target/wasm32-wasip2/release/ldap_sync.wasm`)
//! the way Spin 4 runs a spin-sdk 5.2 (WASIp2) HTTP component:
//!
//! * the application is described by the project's `spin.toml`
//!   ([`manifest`]): variables, the HTTP route, the component's key-value
//!   labels, allowed outbound hosts and variables;
//! * the component is compiled **once per process** (a `static` cache keyed by
//!   the `.wasm` path), pre-linked with WASI p2, `wasi:http` and the Spin
//!   interfaces of `wit/` ([`bindings`] is private; see its docs);
//! * every request gets a **fresh instance** in a fresh `Store`, as Spin does
//!   for `wasi:http/incoming-handler@0.2.x` components;
//! * the request reaches the guest with Spin's extra headers
//!   (`spin-full-url`, `spin-path-info`, `spin-matched-route`,
//!   `spin-raw-component-route`, `spin-component-route`, `spin-base-path`,
//!   `spin-client-addr`), appended after the client's own headers exactly as
//!   Spin's `prepare_request_headers` does; paths outside the route get an
//!   empty 404 from the host, and `/.well-known/spin/health` answers `OK`;
//! * key-value data lives in SQLite in Spin's own format ([`kv`]), in memory
//!   or in `<state_dir>/sqlite_key_value.db`;
//! * outbound TCP is allowed only to the resolved `allowed_outbound_hosts`
//!   ([`net`]); DNS lookups and UDP are off;
//! * the guest's wall clock is a [`TestClock`] the tests can set.
//!
//! A trap or an error before the guest sets a response gives a 500 with an
//! empty body, as in Spin; the error text is printed to stderr and kept in
//! [`Response::error`]. So does a request header value that is not UTF-8
//! (Spin refuses those in its executor). A request whose `Host` header and
//! URI authority disagree makes [`Host::send`] fail: Spin drops such a
//! request without any response.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use ldap_sync_host::{Host, HostOptions};
//! let mut opts = HostOptions::default();
//! opts.variables.insert("ldap_enable".into(), "true".into());
//! let host = Host::new(opts)?;
//! let req = http::Request::post("/api/v1/ldap.syncNow").body(Vec::new())?;
//! let res = host.send(req).await?;
//! println!("{} {}", res.status, res.text());
//! # Ok(())
//! # }
//! ```

mod bindings;
pub mod clock;
pub mod demo;
pub mod kv;
pub mod manifest;
pub mod net;
pub mod slapd;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, anyhow, bail, ensure};
use bytes::Bytes;
use http::header::{HOST, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme as UriScheme};
use http_body_util::{BodyExt as _, Full};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView as _};

use crate::bindings::{SpinState, State};
pub use crate::clock::TestClock;
use crate::kv::DEFAULT_STORE;
pub use crate::kv::KvStore;
pub use crate::manifest::Manifest;
use crate::manifest::{Resolved, RouteMatch};
use crate::net::{AllowedHosts, OutboundHttp};

/// Environment variable naming the manifest to load instead of the default.
pub const MANIFEST_ENV: &str = "LDAP_SYNC_MANIFEST";

/// The client address given to the guest (`spin-client-addr`) when the
/// request names none (see [`ClientAddr`] and [`Host::send_from`]).
pub const DEFAULT_CLIENT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 49152);

/// The `spin.toml` to load: `$LDAP_SYNC_MANIFEST` if set, else the project's.
pub fn default_manifest_path() -> PathBuf {
    std::env::var_os(MANIFEST_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../spin.toml")))
}

/// A request extension carrying the client address for `spin-client-addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// How to build a [`Host`].
#[derive(Clone, Debug, Default)]
pub struct HostOptions {
    /// The manifest; `None` = [`default_manifest_path`].
    pub manifest: Option<PathBuf>,
    /// Where `sqlite_key_value.db` lives; `None` = an in-memory database.
    pub state_dir: Option<PathBuf>,
    /// Application variable overrides (win over `SPIN_VARIABLE_*` and defaults).
    pub variables: BTreeMap<String, String>,
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
}

impl Response {
    fn empty(status: u16) -> Self {
        Self {
            status,
            headers: http::HeaderMap::new(),
            body: Vec::new(),
            error: None,
        }
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn try_json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "response body (status {}) is not JSON: {:?}",
                self.status,
                self.text()
            )
        })
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
        let mut map = CACHE
            .get_or_init(Default::default)
            .lock()
            .map_err(|_| anyhow!("component cache mutex poisoned"))?;
        map.entry(wasm.to_path_buf()).or_default().clone()
    };
    // Holding the slot's lock while compiling makes concurrent Host::new
    // calls for the same component wait for one compilation.
    let mut slot = slot
        .lock()
        .map_err(|_| anyhow!("component cache slot mutex poisoned"))?;
    if let Some(pre) = &*slot {
        return Ok(pre.clone());
    }
    let component = wt(Component::from_file(engine(), wasm))
        .with_context(|| format!("compiling {}", wasm.display()))?;
    let mut linker = Linker::<State>::new(engine());
    wt(wasmtime_wasi::p2::add_to_linker_async(&mut linker))?;
    wt(wasmtime_wasi_http::p2::add_only_http_to_linker_async(
        &mut linker,
    ))?;
    bindings::add_to_linker(&mut linker)?;
    let pre = wt(linker.instantiate_pre(&component))
        .and_then(|pre| wt(ProxyPre::new(pre)))
        .with_context(|| format!("linking {}", wasm.display()))?;
    *slot = Some(pre.clone());
    Ok(pre)
}

// ---------------------------------------------------------------------------
// Request preparation (Spin's server.rs / headers.rs / wasi.rs)
// ---------------------------------------------------------------------------

/// What the host does with a request before any guest code runs.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// Answered by the host itself (404, well-known paths).
    Respond(Response),
    /// To be handled by the component, with Spin's headers added.
    Invoke(http::request::Parts),
}

/// Whether a `Host` header names Spin's service-chaining domain
/// (`<component>.spin.internal`), which Spin strips from inbound requests.
fn is_service_chaining_host(host: &str) -> bool {
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    host.split_once('.')
        .is_some_and(|(_, rest)| rest == "spin.internal")
}

/// Routes a request and adds Spin's headers, as `spin up` would.
pub(crate) fn prepare_request(
    manifest: &Manifest,
    mut parts: http::request::Parts,
    client: SocketAddr,
) -> anyhow::Result<Prepared> {
    // A real HTTP/1.1 client always sends `Host`; requests built in tests
    // often do not, so supply what a client would have sent.
    if !parts.headers.contains_key(HOST) {
        let host = parts
            .uri
            .authority()
            .map_or_else(|| "localhost".to_owned(), |a| a.as_str().to_owned());
        parts.headers.insert(HOST, HeaderValue::from_str(&host)?);
    }
    // Spin's strip_forbidden_headers.
    if parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(is_service_chaining_host)
    {
        parts.headers.remove(HOST);
    }

    let path = parts.uri.path().to_owned();
    if let Some(well_known) = path.strip_prefix("/.well-known/spin/") {
        let mut res = Response::empty(200);
        match well_known {
            "health" => res.body = b"OK".to_vec(),
            "info" => {
                res.headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                res.body = serde_json::to_vec_pretty(&serde_json::json!({
                    "name": manifest.app_name,
                    "version": manifest.app_version,
                    "bindle_version": null,
                    "oci_image_digest": null,
                }))?;
            }
            _ => res = Response::empty(404),
        }
        return Ok(Prepared::Respond(res));
    }
    let Some(route) = manifest.route(&path) else {
        return Ok(Prepared::Respond(Response::empty(404)));
    };

    // Spin fails these before routing to the component: the connection gets
    // no response at all, so this is an error of `send`.
    set_req_uri(&mut parts)?;
    // Spin fails these inside the executor, which it turns into an empty 500.
    let extra = match spin_headers(&parts, &route, client) {
        Ok(extra) => extra,
        Err(e) => {
            let error = format!("{e:#}");
            eprintln!("ldap-sync-host: error processing request: {error}");
            return Ok(Prepared::Respond(Response {
                error: Some(error),
                ..Response::empty(500)
            }));
        }
    };
    // Spin rebuilds the header map from the client's headers followed by its
    // own (HeaderMap::extend appends): a client-sent `spin-*` header comes
    // first and is NOT removed.
    parts.headers.extend(extra);
    Ok(Prepared::Invoke(parts))
}

/// Spin's `set_req_uri`: an absolute URI from the `Host` header (or the URI's
/// own authority; they must agree), scheme `http`.
fn set_req_uri(parts: &mut http::request::Parts) -> anyhow::Result<()> {
    let header_authority = parts
        .headers
        .get(HOST)
        .map(|h| -> anyhow::Result<Authority> {
            let s = h.to_str().context("'Host' header is not valid UTF-8")?;
            s.parse()
                .context("'Host' header contains an invalid authority")
        })
        .transpose()?;
    let mut uri_parts = parts.uri.clone().into_parts();
    let authority = match (header_authority, uri_parts.authority.take()) {
        (None, None) => bail!("no 'Host' header present in request"),
        (Some(a), None) | (None, Some(a)) => a,
        (Some(a1), Some(a2)) => {
            ensure!(
                a1 == a2,
                "authority in 'Host' header does not match authority in URI"
            );
            a1
        }
    };
    uri_parts.scheme = Some(UriScheme::HTTP);
    uri_parts.authority = Some(authority);
    if uri_parts.path_and_query.is_none() {
        uri_parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    parts.uri = http::Uri::from_parts(uri_parts).context("rebuilding the request URI")?;
    Ok(())
}

/// Spin's `compute_default_headers` for a route match.
fn spin_headers(
    parts: &http::request::Parts,
    route: &RouteMatch,
    client: SocketAddr,
) -> anyhow::Result<Vec<(HeaderName, HeaderValue)>> {
    // Spin requires every client header value to be UTF-8.
    for (name, value) in &parts.headers {
        value
            .to_str()
            .with_context(|| format!("header {name} is not valid UTF-8"))?;
    }
    let host = match parts.headers.get(HOST) {
        Some(h) => h.to_str()?.to_owned(),
        None => "localhost".to_owned(),
    };
    let abs_path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let scheme = parts.uri.scheme_str().unwrap_or("http");
    let pairs = [
        ("spin-path-info", route.path_info.clone()),
        ("spin-full-url", format!("{scheme}://{host}{abs_path}")),
        ("spin-matched-route", route.based_route.clone()),
        ("spin-base-path", "/".to_owned()),
        ("spin-raw-component-route", route.raw_route.clone()),
        ("spin-component-route", route.component_route.clone()),
        ("spin-client-addr", client.to_string()),
    ];
    pairs
        .into_iter()
        .map(|(name, value)| {
            Ok((
                HeaderName::from_static(name),
                HeaderValue::from_str(&value)
                    .with_context(|| format!("{name} value {value:?} is not a header value"))?,
            ))
        })
        .collect()
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
        let kv = match &opts.state_dir {
            Some(dir) => KvStore::open_state_dir(dir)?,
            None => KvStore::open_in_memory()?,
        };
        let pre = load_component(&manifest.component.source, &manifest.dir)?;
        Ok(Host {
            component_variables: Arc::new(resolved.component_variables.clone()),
            allowed_hosts: Arc::new(resolved.allowed_hosts.clone()),
            kv_labels: manifest.component.key_value_stores.clone().into(),
            component_id: manifest.component.id.as_str().into(),
            environment: manifest
                .component
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            overrides: opts.variables,
            resolved,
            manifest,
            pre,
            kv,
            clock: TestClock::new(),
        })
    }

    /// Sends a request from [`DEFAULT_CLIENT_ADDR`] (or the request's
    /// [`ClientAddr`] extension).
    pub async fn send(&self, req: http::Request<Vec<u8>>) -> anyhow::Result<Response> {
        let client = req
            .extensions()
            .get::<ClientAddr>()
            .map_or(DEFAULT_CLIENT_ADDR, |c| c.0);
        self.send_from(client, req).await
    }

    /// Sends a request as coming from `client` (`spin-client-addr`).
    pub async fn send_from(
        &self,
        client: SocketAddr,
        req: http::Request<Vec<u8>>,
    ) -> anyhow::Result<Response> {
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
        wasi.inherit_stdout()
            .inherit_stderr()
            .envs(&self.environment)
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
        };
        Store::new(self.pre.engine(), state)
    }

    async fn invoke(&self, req: http::Request<Full<Bytes>>) -> anyhow::Result<Response> {
        let mut store = self.new_store();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let req = wt(store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req))?;
        let out = wt(store.data_mut().http().new_response_outparam(tx))?;
        let pre = self.pre.clone();
        let task = tokio::task::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
        });

        let guest_error =
            |joined: Result<wasmtime::Result<()>, tokio::task::JoinError>| match joined {
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
                    Err(e) => bail!(
                        "the response body failed: {e:?}{}",
                        error
                            .map(|e| format!("; guest error: {e}"))
                            .unwrap_or_default()
                    ),
                };
                if let Some(e) = &error {
                    eprintln!("ldap-sync-host: component error after the response started: {e}");
                }
                Ok(Response {
                    status: parts.status.as_u16(),
                    headers: parts.headers,
                    body,
                    error,
                })
            }
            Ok(Err(code)) => {
                let mut error = format!("guest failed to produce a response: {code:?}");
                if let Some(e) = guest_error(task.await) {
                    error.push_str(&format!("; {e}"));
                }
                eprintln!("ldap-sync-host: error processing request: {error}");
                Ok(Response {
                    error: Some(error),
                    ..Response::empty(500)
                })
            }
            Err(_) => {
                let error = guest_error(task.await).map_or_else(
                    || "guest failed to produce a response prior to returning".to_owned(),
                    |e| format!("guest invocation failed: {e}"),
                );
                eprintln!("ldap-sync-host: error processing request: {error}");
                Ok(Response {
                    error: Some(error),
                    ..Response::empty(500)
                })
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

    /// The underlying store, for batch operations and other labels.
    pub fn kv_store(&self) -> &KvStore {
        &self.kv
    }

    /// Sets an application variable override and re-resolves the component
    /// variables and allowed outbound hosts (for later requests). On error
    /// nothing changes.
    pub fn set_variable(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../spin.toml"
        )))
        .expect("manifest loads")
    }

    fn prepare(req: http::Request<()>, client: &str) -> Prepared {
        let (parts, ()) = req.into_parts();
        prepare_request(&manifest(), parts, client.parse().expect("addr")).expect("prepares")
    }

    fn invoked(p: Prepared) -> http::request::Parts {
        match p {
            Prepared::Invoke(parts) => parts,
            Prepared::Respond(r) => unreachable!("expected an invocation, got {r:?}"),
        }
    }

    fn h<'a>(parts: &'a http::request::Parts, name: &str) -> Vec<&'a str> {
        parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("utf-8"))
            .collect()
    }

    #[test]
    fn spin_headers_for_a_routed_request() {
        let req = http::Request::post("/api/v1/ldap.syncNow?x=1")
            .header("host", "127.0.0.1:3000")
            .header("x-user-id", "abc")
            .body(())
            .expect("request");
        let parts = invoked(prepare(req, "127.0.0.1:8777"));
        assert_eq!(
            parts.uri.to_string(),
            "http://127.0.0.1:3000/api/v1/ldap.syncNow?x=1"
        );
        assert_eq!(
            h(&parts, "spin-full-url"),
            ["http://127.0.0.1:3000/api/v1/ldap.syncNow?x=1"]
        );
        assert_eq!(h(&parts, "spin-path-info"), ["/ldap.syncNow"]);
        assert_eq!(h(&parts, "spin-matched-route"), ["/api/v1/..."]);
        assert_eq!(h(&parts, "spin-raw-component-route"), ["/api/v1/..."]);
        assert_eq!(h(&parts, "spin-component-route"), ["/api/v1"]);
        assert_eq!(h(&parts, "spin-base-path"), ["/"]);
        assert_eq!(h(&parts, "spin-client-addr"), ["127.0.0.1:8777"]);
        assert_eq!(h(&parts, "x-user-id"), ["abc"]);
        assert_eq!(h(&parts, "host"), ["127.0.0.1:3000"]);
    }

    #[test]
    fn host_header_is_filled_in_like_a_client() {
        let req = http::Request::get("/api/v1/me").body(()).expect("request");
        let parts = invoked(prepare(req, "10.0.0.5:40000"));
        assert_eq!(h(&parts, "host"), ["localhost"]);
        assert_eq!(h(&parts, "spin-full-url"), ["http://localhost/api/v1/me"]);

        let req = http::Request::get("http://example.test:8080/api/v1/me")
            .body(())
            .expect("request");
        let parts = invoked(prepare(req, "10.0.0.5:40000"));
        assert_eq!(
            h(&parts, "spin-full-url"),
            ["http://example.test:8080/api/v1/me"]
        );
        assert_eq!(h(&parts, "spin-client-addr"), ["10.0.0.5:40000"]);

        let req = http::Request::get("http://a.test/api/v1/me")
            .header("host", "b.test")
            .body(())
            .expect("request");
        let (parts, ()) = req.into_parts();
        assert!(prepare_request(&manifest(), parts, DEFAULT_CLIENT_ADDR).is_err());
    }

    #[test]
    fn client_spin_headers_are_kept_first_as_in_spin() {
        let req = http::Request::get("/api/v1/x")
            .header("spin-client-addr", "6.6.6.6:1")
            .body(())
            .expect("request");
        let parts = invoked(prepare(req, "127.0.0.1:5"));
        assert_eq!(h(&parts, "spin-client-addr"), ["6.6.6.6:1", "127.0.0.1:5"]);
    }

    #[test]
    fn unrouted_and_well_known_paths() {
        for path in ["/", "/api/v2/x", "/api/v1x", "/.well-known/spin/nope"] {
            let req = http::Request::get(path).body(()).expect("request");
            match prepare(req, "127.0.0.1:1") {
                Prepared::Respond(r) => {
                    assert_eq!(r.status, 404, "{path}");
                    assert!(r.body.is_empty());
                }
                Prepared::Invoke(_) => unreachable!("{path} should not reach the component"),
            }
        }
        let req = http::Request::get("/.well-known/spin/health")
            .body(())
            .expect("request");
        match prepare(req, "127.0.0.1:1") {
            Prepared::Respond(r) => assert_eq!((r.status, r.text().as_str()), (200, "OK")),
            Prepared::Invoke(_) => unreachable!("health is answered by the host"),
        }
    }

    #[test]
    fn non_utf8_header_is_an_empty_500_as_in_spin() {
        let req = http::Request::get("/api/v1/x")
            .header(
                "x-auth-token",
                HeaderValue::from_bytes(b"\xff\xfe").expect("value"),
            )
            .body(())
            .expect("request");
        match prepare(req, "127.0.0.1:1") {
            Prepared::Respond(r) => {
                assert_eq!(r.status, 500);
                assert!(r.body.is_empty());
                assert!(r.error.is_some());
            }
            Prepared::Invoke(_) => unreachable!("Spin refuses non-UTF-8 header values"),
        }
    }

    #[test]
    fn service_chaining_host_is_stripped() {
        assert!(is_service_chaining_host("ldap-sync.spin.internal"));
        assert!(is_service_chaining_host("ldap-sync.spin.internal:80"));
        assert!(!is_service_chaining_host("example.com"));
        let req = http::Request::get("/api/v1/x")
            .header("host", "c.spin.internal")
            .body(())
            .expect("request");
        let (parts, ()) = req.into_parts();
        // Spin then fails the request for lack of a Host.
        assert!(prepare_request(&manifest(), parts, DEFAULT_CLIENT_ADDR).is_err());
    }

    #[test]
    fn missing_component_message() {
        let dir = std::env::temp_dir();
        let Err(err) = load_component(&dir.join("definitely-missing.wasm"), &dir) else {
            unreachable!("a missing file cannot load");
        };
        assert!(
            err.to_string().starts_with(
                "component not built: run `cargo build --target wasm32-wasip2 --release` in"
            ),
            "{err}"
        );
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
