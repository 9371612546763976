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
//! * the guest's wall clock is a [`TestClock`] the tests can set;
//! * the guest's stdout and stderr are this process's, as under `spin up`,
//!   or kept in memory for the whole host ([`HostOptions::capture_output`],
//!   [`Host::output`]), so a test can read every line the component logged.
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
//!
//! One job per module: [`Host`] (`host.rs`) runs the component, `request.rs`
//! prepares each request as Spin does, [`manifest`] reads `spin.toml`,
//! [`fixture`] holds what the end-to-end tests and `ldap-sync-bench` both
//! seed and send, [`serve`] is `ldap-sync-serve`'s HTTP server (requests in
//! parallel, as Spin serves them), and [`consistency`] checks that the
//! user documents and their index keys agree (the concurrency tests run it),
//! and [`fake_ldap`] serves scripted, misbehaving LDAP sessions over real TCP.

mod bindings;
pub mod clock;
pub mod consistency;
pub mod demo;
pub mod ds389;
pub mod fake_ldap;
pub mod fixture;
mod host;
pub mod kv;
pub mod manifest;
pub mod net;
mod process;
pub mod redis_server;
mod request;
pub mod samba;
pub mod serve;
pub mod slapd;

// The public interface: the e2e tests, the bins and the example above name
// these at the crate root.
pub use crate::clock::TestClock;
pub use crate::host::{CapturedOutput, Host, HostOptions, KeepAlive, MANIFEST_ENV, Response, default_manifest_path};
pub use crate::kv::KvStore;
pub use crate::manifest::Manifest;
pub use crate::request::{ClientAddr, DEFAULT_CLIENT_ADDR};
