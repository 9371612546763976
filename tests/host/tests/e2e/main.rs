//! End-to-end tests: the real `.wasm` in the Spin-compatible host, real HTTP
//! requests, real SQLite store, and (for the sync) a real slapd. One test
//! binary, so the component is compiled once.

// Test fixtures fail by panicking with the reason.
#![allow(clippy::panic)]

mod avatars;
mod common;
mod concurrency;
mod dirsync;
mod ds389;
mod faults;
mod gate;
mod groups;
mod incremental;
mod ldap_wire;
mod mapping;
mod offboarding;
mod openapi;
mod preview;
mod quickstart;
mod redis;
mod scheduled;
mod secrets;
mod session;
mod status;
mod sync;
mod users;
