//! The part of Spin's `runtime-config.toml` the host reads: where the
//! `default` key-value store lives (`spin up --runtime-config-file`).
//!
//! ```toml
//! [key_value_store.default]
//! type = "redis"
//! url = "redis://127.0.0.1:6379"
//! ```
//!
//! `type = "spin"` with an optional `path` (relative to the file's
//! directory) is Spin's SQLite store. Other types Spin knows
//! (`azure_cosmos`, `aws_dynamo`) are refused here with their name; labels
//! other than `default` are refused too (the component uses only it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Deserialize;

use super::KvStore;

/// Where `default` lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultStore {
    /// Not configured: Spin's SQLite in the state directory.
    StateDir,
    /// `type = "spin"`: SQLite at this path, or in memory without one.
    Sqlite(Option<PathBuf>),
    /// `type = "redis"`.
    Redis { url: String },
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    key_value_store: BTreeMap<String, Table>,
}

#[derive(Deserialize)]
struct Table {
    #[serde(rename = "type")]
    kind: String,
    url: Option<String>,
    path: Option<PathBuf>,
}

/// Reads `path` (a missing `[key_value_store.default]` is [`DefaultStore::StateDir`]).
pub fn load(path: &Path) -> anyhow::Result<DefaultStore> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading runtime config {}", path.display()))?;
    parse(&text, path.parent().unwrap_or(Path::new("."))).with_context(|| format!("runtime config {}", path.display()))
}

/// Parses the text of a runtime config whose directory is `dir`.
pub fn parse(text: &str, dir: &Path) -> anyhow::Result<DefaultStore> {
    let file: File = toml::from_str(text).context("not valid TOML for a Spin runtime config")?;
    let mut store = DefaultStore::StateDir;
    for (label, table) in file.key_value_store {
        if label != "default" {
            bail!("key_value_store.{label}: the component uses only the `default` store");
        }
        store = match (table.kind.as_str(), table.url, table.path) {
            ("redis", Some(url), _) => DefaultStore::Redis { url },
            ("redis", None, _) => bail!("key_value_store.default: type \"redis\" needs `url`"),
            ("spin", _, path) => DefaultStore::Sqlite(path.map(|p| dir.join(p))),
            (other, _, _) => bail!("key_value_store.default: type {other:?} is not supported by this host (spin, redis)"),
        };
    }
    Ok(store)
}

impl DefaultStore {
    /// Opens it; `state_dir` serves [`DefaultStore::StateDir`] (in memory without one).
    pub fn open(&self, state_dir: Option<&Path>) -> anyhow::Result<KvStore> {
        match self {
            DefaultStore::StateDir => match state_dir {
                Some(dir) => KvStore::open_state_dir(dir),
                None => KvStore::open_in_memory(),
            },
            DefaultStore::Sqlite(Some(path)) => KvStore::open_file(path),
            DefaultStore::Sqlite(None) => KvStore::open_in_memory(),
            DefaultStore::Redis { url } => KvStore::open_redis(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_redis_spin_and_nothing() {
        let dir = Path::new("/etc/app");
        assert_eq!(parse("", dir).expect("empty"), DefaultStore::StateDir);
        assert_eq!(
            parse("[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\n", dir).expect("redis"),
            DefaultStore::Redis { url: "redis://127.0.0.1:6379".into() }
        );
        assert_eq!(
            parse("[key_value_store.default]\ntype = \"spin\"\npath = \"kv.db\"\n", dir).expect("spin"),
            DefaultStore::Sqlite(Some(PathBuf::from("/etc/app/kv.db")))
        );
        let err = parse("[key_value_store.default]\ntype = \"aws_dynamo\"\n", dir).expect_err("dynamo");
        assert!(err.to_string().contains("\"aws_dynamo\" is not supported"), "{err}");
        assert!(parse("[key_value_store.default]\ntype = \"redis\"\n", dir).is_err());
        assert!(parse("[key_value_store.other]\ntype = \"redis\"\nurl = \"redis://x\"\n", dir).is_err());
    }
}
