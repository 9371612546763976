//! ldap-sync: Rocket.Chat's `POST /api/v1/ldap.syncNow` as a Spin component,
//! with the routes a client needs around it (login, logout, me, TOTP
//! enrolment through `method.call`, users.info/list, the LDAP test routes).
//!
//! Three parts: a thin edge, a pure core, and I/O at the rim.
//!
//! * `api` is the edge: the route table, request parsing, and the only
//!   place errors become Rocket.Chat JSON bodies.
//! * `auth` (login token, rate limiter, second factor, permission,
//!   bootstrap admin, TOTP enrolment) and
//!   `settings` (every Spin variable, parsed once per request into types)
//!   are pure: time, variables and the store come in as arguments.
//! * `ldap` is the client: a sans-IO protocol state machine over
//!   ldap3_proto's codec, and `transport.rs`, the only socket owner (TCP,
//!   optionally rustls).
//! * `sync` streams the directory scan: pages → mapped users → one batched
//!   read and write per page, and a stored report.
//! * `store` owns every key and JSON shape in Spin's key-value store and the
//!   one trait ([`store::KvStore`]) through which everything is read and
//!   written, in batches.
//!
//! Only `spin_entry` (the `#[http_component]` and the variables adapter)
//! and `store::spin` touch `spin_sdk`; natively the crate is plain Rust, so
//! unit tests run without a Wasm host.
//!
//! Each request is a fresh instance (Spin's WASIp2 model): nothing survives
//! between requests except what is in the store.

#![deny(unsafe_code)]

mod api;
mod auth;
mod ldap;
mod log;
mod settings;
mod store;
mod sync;

#[cfg(target_arch = "wasm32")]
mod spin_entry;

// Entry points for the cargo-fuzz targets in fuzz/ (the only user of the `fuzzing` feature).
#[cfg(feature = "fuzzing")]
pub mod fuzz;

// The crate's native surface: what `spin_entry.rs` drives on wasm32, so that
// the plain-Rust build (unit tests, `src/fuzz.rs`) has the same entry point.
pub use api::{Env, Request, Response, route};
pub use settings::VariableSource;
pub use store::KvStore;
