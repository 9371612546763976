//! The Spin interfaces the component imports, implemented on the store state.
//!
//! The WIT comes from the project's `wit/` directory (world
//! `ldap-sync:host/spin-imports`): `fermyon:spin/key-value@2.0.0`,
//! `fermyon:spin/variables@2.0.0` and `wasi:keyvalue/{store,batch,atomics}@0.2.0-draft2`,
//! as served by Spin 4 for a spin-sdk 5.2 component. Behaviour follows Spin's
//! `crates/factor-key-value/src/host.rs` and `crates/factor-variables`:
//!
//! * opening a store/bucket whose label is not in the component's
//!   `key_value_stores` fails with `access-denied`; a granted label other
//!   than `default` fails with `no-such-store` (only the default store exists
//!   without a runtime config);
//! * `list-keys` returns every key at once with no cursor, and fails on a
//!   cursor, as Spin does;
//! * `get-many` returns only the keys that exist;
//! * `variables::get` checks the name's syntax (`invalid-name`) and then
//!   whether `[component.<id>.variables]` defines it (`undefined`).
//!
//! SQLite failures surface to the guest as `error::other(message)`.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::kv::{DEFAULT_STORE, KvStore};
use crate::manifest::validate_variable_name;
use crate::net::OutboundHttp;

wasmtime::component::bindgen!({
    // Relative to tests/host/Cargo.toml: the project's wit/ directory.
    path: "../../wit",
    world: "spin-imports",
    imports: { default: trappable },
    with: {
        "fermyon:spin/key-value.store": crate::bindings::SpinStore,
        "wasi:keyvalue/store.bucket": crate::bindings::Bucket,
        "wasi:keyvalue/atomics.cas": crate::bindings::Cas,
    },
    anyhow: true,
});

use fermyon::spin::key_value as spin_kv;
use fermyon::spin::variables as spin_vars;
use wasi::keyvalue::{atomics, batch, store as wasi_store};

/// A `fermyon:spin/key-value.store` handle: an opened label.
#[derive(Debug)]
pub struct SpinStore {
    label: String,
}

/// A `wasi:keyvalue/store.bucket` handle: an opened label.
#[derive(Debug)]
pub struct Bucket {
    label: String,
}

/// A `wasi:keyvalue/atomics.cas` handle.
#[derive(Debug)]
pub struct Cas {
    label: String,
    key: String,
    /// The value read by `current` (None if not read or absent), compared by `swap`.
    current: Option<Vec<u8>>,
    /// On Redis: the connection `current` opened and `WATCH`ed the key on.
    redis: Option<crate::kv::CasConnection>,
}

/// Per-instance Spin state: what the component was granted.
pub struct SpinState {
    /// The shared SQLite store.
    pub kv: KvStore,
    /// The component's `key_value_stores`.
    pub kv_labels: Arc<[String]>,
    /// The component's resolved variables.
    pub variables: Arc<BTreeMap<String, String>>,
    /// The component id, for error messages.
    pub component_id: Arc<str>,
}

/// The data of each request's `wasmtime::Store`.
pub struct State {
    pub(crate) table: ResourceTable,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) hooks: OutboundHttp,
    pub(crate) spin: SpinState,
    pub(crate) memory: MemoryPeak,
}

/// Tracks the guest's largest linear memory (every memory's size as it
/// grows; Spin sets no limit by default, and neither does this): the
/// benchmark's "guest peak memory". Allows every growth.
#[derive(Debug, Default, Clone)]
pub struct MemoryPeak(pub(crate) std::sync::Arc<std::sync::atomic::AtomicU64>);

impl MemoryPeak {
    /// The largest size seen so far, in bytes.
    pub fn bytes(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl wasmtime::ResourceLimiter for MemoryPeak {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.0.fetch_max(desired as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// Adds the Spin interfaces of the `spin-imports` world to a linker.
pub fn add_to_linker(linker: &mut Linker<State>) -> anyhow::Result<()> {
    SpinImports::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    Ok(())
}

/// Spin's label rule shared by both key-value APIs.
enum OpenError {
    AccessDenied,
    NoSuchStore,
}

impl State {
    fn check_label(&self, label: &str) -> Result<(), OpenError> {
        if !self.spin.kv_labels.iter().any(|l| l == label) {
            Err(OpenError::AccessDenied)
        } else if label != DEFAULT_STORE {
            Err(OpenError::NoSuchStore)
        } else {
            Ok(())
        }
    }
}

fn other<E: std::fmt::Display>(e: E) -> String {
    format!("{e:#}")
}

// ---------------------------------------------------------------------------
// fermyon:spin/key-value@2.0.0
// ---------------------------------------------------------------------------

fn spin_err(e: anyhow::Error) -> spin_kv::Error {
    spin_kv::Error::Other(other(e))
}

impl spin_kv::Host for State {}

impl spin_kv::HostStore for State {
    fn open(&mut self, label: String) -> anyhow::Result<Result<Resource<SpinStore>, spin_kv::Error>> {
        match self.check_label(&label) {
            Ok(()) => Ok(Ok(self.table.push(SpinStore { label })?)),
            Err(OpenError::AccessDenied) => Ok(Err(spin_kv::Error::AccessDenied)),
            Err(OpenError::NoSuchStore) => Ok(Err(spin_kv::Error::NoSuchStore)),
        }
    }

    fn get(&mut self, store: Resource<SpinStore>, key: String) -> anyhow::Result<Result<Option<Vec<u8>>, spin_kv::Error>> {
        let label = &self.table.get(&store)?.label;
        Ok(self.spin.kv.get(label, &key).map_err(spin_err))
    }

    fn set(&mut self, store: Resource<SpinStore>, key: String, value: Vec<u8>) -> anyhow::Result<Result<(), spin_kv::Error>> {
        let label = &self.table.get(&store)?.label;
        Ok(self.spin.kv.set(label, &key, &value).map_err(spin_err))
    }

    fn delete(&mut self, store: Resource<SpinStore>, key: String) -> anyhow::Result<Result<(), spin_kv::Error>> {
        let label = &self.table.get(&store)?.label;
        Ok(self.spin.kv.delete(label, &key).map_err(spin_err))
    }

    fn exists(&mut self, store: Resource<SpinStore>, key: String) -> anyhow::Result<Result<bool, spin_kv::Error>> {
        let label = &self.table.get(&store)?.label;
        Ok(self.spin.kv.exists(label, &key).map_err(spin_err))
    }

    fn get_keys(&mut self, store: Resource<SpinStore>) -> anyhow::Result<Result<Vec<String>, spin_kv::Error>> {
        let label = &self.table.get(&store)?.label;
        Ok(self.spin.kv.keys(label).map_err(spin_err))
    }

    fn drop(&mut self, store: Resource<SpinStore>) -> anyhow::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// fermyon:spin/variables@2.0.0
// ---------------------------------------------------------------------------

impl spin_vars::Host for State {
    fn get(&mut self, name: String) -> anyhow::Result<Result<String, spin_vars::Error>> {
        if let Err(reason) = validate_variable_name(&name) {
            return Ok(Err(spin_vars::Error::InvalidName(reason)));
        }
        Ok(match self.spin.variables.get(&name) {
            Some(value) => Ok(value.clone()),
            None => Err(spin_vars::Error::Undefined(format!("no variable for {:?}.{name:?}", &*self.spin.component_id))),
        })
    }
}

// ---------------------------------------------------------------------------
// wasi:keyvalue@0.2.0-draft2
// ---------------------------------------------------------------------------

fn wasi_err(e: anyhow::Error) -> wasi_store::Error {
    wasi_store::Error::Other(other(e))
}

impl State {
    fn bucket_label(&self, bucket: &Resource<Bucket>) -> anyhow::Result<String> {
        Ok(self.table.get(bucket)?.label.clone())
    }
}

impl wasi_store::Host for State {
    fn open(&mut self, identifier: String) -> anyhow::Result<Result<Resource<Bucket>, wasi_store::Error>> {
        match self.check_label(&identifier) {
            Ok(()) => Ok(Ok(self.table.push(Bucket { label: identifier })?)),
            Err(OpenError::AccessDenied) => Ok(Err(wasi_store::Error::AccessDenied)),
            Err(OpenError::NoSuchStore) => Ok(Err(wasi_store::Error::NoSuchStore)),
        }
    }
}

impl wasi_store::HostBucket for State {
    fn get(&mut self, bucket: Resource<Bucket>, key: String) -> anyhow::Result<Result<Option<Vec<u8>>, wasi_store::Error>> {
        let label = self.bucket_label(&bucket)?;
        Ok(self.spin.kv.get(&label, &key).map_err(wasi_err))
    }

    fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> anyhow::Result<Result<(), wasi_store::Error>> {
        let label = self.bucket_label(&bucket)?;
        Ok(self.spin.kv.set(&label, &key, &value).map_err(wasi_err))
    }

    fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> anyhow::Result<Result<(), wasi_store::Error>> {
        let label = self.bucket_label(&bucket)?;
        Ok(self.spin.kv.delete(&label, &key).map_err(wasi_err))
    }

    fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> anyhow::Result<Result<bool, wasi_store::Error>> {
        let label = self.bucket_label(&bucket)?;
        Ok(self.spin.kv.exists(&label, &key).map_err(wasi_err))
    }

    fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> anyhow::Result<Result<wasi_store::KeyResponse, wasi_store::Error>> {
        if cursor.is_some() {
            return Ok(Err(wasi_store::Error::Other("list_keys: cursor not supported".to_owned())));
        }
        let label = self.bucket_label(&bucket)?;
        Ok(self.spin.kv.keys(&label).map(|keys| wasi_store::KeyResponse { keys, cursor: None }).map_err(wasi_err))
    }

    fn drop(&mut self, bucket: Resource<Bucket>) -> anyhow::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl batch::Host for State {
    fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> anyhow::Result<Result<Vec<(String, Option<Vec<u8>>)>, wasi_store::Error>> {
        let label = self.bucket_label(&bucket)?;
        if keys.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        if self.spin.kv.redis().is_some() {
            // Spin's Redis provider panics here: the request traps.
            return Err(crate::kv::RedisKv::guest_get_many_panic(keys.len()).into());
        }
        Ok(self.spin.kv.get_many(&label, keys).map_err(wasi_err))
    }

    fn set_many(&mut self, bucket: Resource<Bucket>, key_values: Vec<(String, Vec<u8>)>) -> anyhow::Result<Result<(), wasi_store::Error>> {
        let label = self.bucket_label(&bucket)?;
        if key_values.is_empty() {
            return Ok(Ok(()));
        }
        Ok(self.spin.kv.set_many(&label, key_values).map_err(wasi_err))
    }

    fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> anyhow::Result<Result<(), wasi_store::Error>> {
        let label = self.bucket_label(&bucket)?;
        if keys.is_empty() {
            return Ok(Ok(()));
        }
        Ok(self.spin.kv.delete_many(&label, keys).map_err(wasi_err))
    }
}

impl atomics::HostCas for State {
    fn new(&mut self, bucket: Resource<Bucket>, key: String) -> anyhow::Result<Result<Resource<Cas>, wasi_store::Error>> {
        let label = self.bucket_label(&bucket)?;
        Ok(Ok(self.table.push(Cas { label, key, current: None, redis: None })?))
    }

    fn current(&mut self, cas: Resource<Cas>) -> anyhow::Result<Result<Option<Vec<u8>>, wasi_store::Error>> {
        let (label, key) = {
            let c = self.table.get(&cas)?;
            (c.label.clone(), c.key.clone())
        };
        if let Some(redis) = self.spin.kv.redis() {
            return match redis.cas_current(&key) {
                Ok((value, conn)) => {
                    let c = self.table.get_mut(&cas)?;
                    c.current.clone_from(&value);
                    c.redis = Some(conn);
                    Ok(Ok(value))
                }
                Err(e) => Ok(Err(wasi_err(e))),
            };
        }
        match self.spin.kv.get(&label, &key) {
            Ok(value) => {
                self.table.get_mut(&cas)?.current.clone_from(&value);
                Ok(Ok(value))
            }
            Err(e) => Ok(Err(wasi_err(e))),
        }
    }

    fn drop(&mut self, cas: Resource<Cas>) -> anyhow::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl atomics::Host for State {
    fn increment(&mut self, bucket: Resource<Bucket>, key: String, delta: i64) -> anyhow::Result<Result<i64, wasi_store::Error>> {
        let label = self.bucket_label(&bucket)?;
        Ok(self.spin.kv.increment(&label, &key, delta).map_err(wasi_err))
    }

    fn swap(&mut self, cas: Resource<Cas>, value: Vec<u8>) -> anyhow::Result<Result<(), atomics::CasError>> {
        // `swap` takes ownership of the handle.
        let cas = self.table.delete(cas)?;
        if let Some(redis) = self.spin.kv.redis() {
            // Spin cannot tell an aborted EXEC from a swap (kv::redis).
            return Ok(redis.cas_swap(cas.redis, &cas.key, &value).map_err(|e| atomics::CasError::StoreError(wasi_err(e))));
        }
        match self.spin.kv.cas_swap(&cas.label, &cas.key, cas.current.as_deref(), &value) {
            Ok(true) => Ok(Ok(())),
            Ok(false) => {
                // As Spin: hand back a fresh handle that has already read the
                // latest value, so the guest can retry.
                let latest = match self.spin.kv.get(&cas.label, &cas.key) {
                    Ok(v) => v,
                    Err(e) => return Ok(Err(atomics::CasError::StoreError(wasi_err(e)))),
                };
                let retry = self.table.push(Cas { label: cas.label, key: cas.key, current: latest, redis: None })?;
                Ok(Err(atomics::CasError::CasFailed(retry)))
            }
            Err(e) => Ok(Err(atomics::CasError::StoreError(wasi_err(e)))),
        }
    }
}
