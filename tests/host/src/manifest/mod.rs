//! Reading `spin.toml` (manifest version 2) and resolving variables.
//!
//! Only what a single-component HTTP application needs is read: the
//! application `[variables]`, the `[[trigger.http]]` routes, and the served
//! component's `source`, `key_value_stores`, `allowed_outbound_hosts`,
//! `environment` and `[component.<id>.variables]`. Other keys (`build`,
//! `description`, ...) are ignored.
//!
//! One job per file: `parse.rs` reads the TOML into a [`Manifest`],
//! `template.rs` holds Spin's templates and variable-name rules, `route.rs`
//! matches request paths to routes, and `resolve.rs` gives variables their
//! values.
//!
//! # Variable resolution
//!
//! An application variable's value is taken from, in order:
//!
//! 1. the explicit overrides given by the caller ([`crate::HostOptions::variables`],
//!    [`crate::Host::set_variable`], `ldap-sync-serve --variable k=v`);
//! 2. the environment variable `SPIN_VARIABLE_<NAME IN UPPER CASE>`;
//! 3. the manifest's `default`.
//!
//! A `required = true` variable with none of these is an error. Spin's own
//! order differs slightly: its environment provider always comes first, ahead
//! of `spin up --variable`. Here explicit overrides win so that a test's
//! settings do not depend on the developer's environment. Spin also reads a
//! `.env` file from the working directory; this host does not.
//!
//! Component variables (`[component.<id>.variables]`) and
//! `allowed_outbound_hosts` entries are templates (`"{{ name }}"`, possibly
//! mixed with literal text) over the application variables, resolved once at
//! load (and again on [`crate::Host::set_variable`]), as Spin does.

mod parse;
mod resolve;
mod route;
mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;

// The submodules are private; their types are part of `Manifest`'s public API,
// and the host, the request preparation and `bindings` name them `manifest::X`.
pub use crate::manifest::resolve::Resolved;
pub use crate::manifest::route::{Route, RouteMatch, route};
pub use crate::manifest::template::{Template, validate_variable_name};

/// An application variable declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariableDecl {
    /// `default = "..."`.
    pub default: Option<String>,
    /// `required = true`.
    pub required: bool,
    /// `secret = true` (informational only, as in Spin).
    pub secret: bool,
}

/// The served component's section.
#[derive(Clone, Debug)]
pub struct ComponentDecl {
    /// The component id (`[component.<id>]`).
    pub id: String,
    /// The `.wasm` file, resolved against the manifest's directory.
    pub source: PathBuf,
    /// `key_value_stores`: the labels the component may open.
    pub key_value_stores: Vec<String>,
    /// `allowed_outbound_hosts`, unresolved.
    pub allowed_outbound_hosts: Vec<Template>,
    /// `[component.<id>.variables]`, unresolved.
    pub variables: BTreeMap<String, Template>,
    /// `environment`: the guest's environment variables.
    pub environment: BTreeMap<String, String>,
}

/// A parsed `spin.toml` for a single-component HTTP application.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The manifest file.
    pub path: PathBuf,
    /// Its directory (the application directory).
    pub dir: PathBuf,
    /// `[application] name`.
    pub app_name: String,
    /// `[application] version`.
    pub app_version: Option<String>,
    /// `[variables]`.
    pub variables: BTreeMap<String, VariableDecl>,
    /// The HTTP routes, all served by [`Manifest::component`].
    pub routes: Vec<Route>,
    /// The one component the HTTP trigger serves.
    pub component: ComponentDecl,
}

/// The project's own `spin.toml`, for unit tests (not
/// [`crate::default_manifest_path`], which `$LDAP_SYNC_MANIFEST` may redirect).
#[cfg(test)]
pub(crate) fn project_manifest() -> Manifest {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../spin.toml"));
    Manifest::load(path).expect("the project's spin.toml loads")
}

/// Parses manifest text as if it were `/app/spin.toml`, for unit tests.
#[cfg(test)]
pub(crate) fn parse_at_app(text: &str) -> anyhow::Result<Manifest> {
    Manifest::parse(text, PathBuf::from("/app/spin.toml"), PathBuf::from("/app"))
}
