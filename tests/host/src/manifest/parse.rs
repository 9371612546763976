//! Reading `spin.toml` into a [`Manifest`]: the raw TOML shapes, the checks
//! this host makes (manifest version 2, one component, declared variables in
//! every template), and source paths resolved against the manifest's
//! directory. Nothing here looks at variable values; that is [`super::resolve`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use serde::Deserialize;

use crate::manifest::{ComponentDecl, Manifest, Route, Template, VariableDecl, validate_variable_name};

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    #[serde(default)]
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Default, Deserialize)]
struct RawApplication {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
    #[serde(default)]
    #[expect(dead_code, reason = "accepted for manifest compatibility, not used")]
    description: Option<String>,
}

#[derive(Default, Deserialize)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: RawRoute,
    #[serde(default)]
    component: Option<toml::Value>,
    #[serde(default)]
    executor: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private {
        #[expect(dead_code, reason = "private routes are skipped whatever the flag")]
        private: bool,
    },
}

#[derive(Deserialize)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
}

impl Manifest {
    /// Reads and validates a manifest file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading manifest {}", path.display()))?;
        let path = std::fs::canonicalize(path).with_context(|| format!("resolving manifest path {}", path.display()))?;
        let dir = path.parent().map(Path::to_path_buf).context("manifest path has no parent directory")?;
        Self::parse(&text, path, dir)
    }

    /// Parses manifest text; `dir` is where relative `source` paths start.
    pub fn parse(text: &str, path: PathBuf, dir: PathBuf) -> anyhow::Result<Self> {
        let raw: RawManifest = toml::from_str(text).with_context(|| format!("parsing manifest {}", path.display()))?;
        ensure!(
            raw.spin_manifest_version.as_integer() == Some(2) || raw.spin_manifest_version.as_str() == Some("2"),
            "{}: only spin_manifest_version = 2 is supported",
            path.display()
        );

        let mut variables = BTreeMap::new();
        for (name, v) in raw.variables {
            validate_variable_name(&name).map_err(|e| anyhow::anyhow!("invalid variable name {e}"))?;
            ensure!(!(v.required && v.default.is_some()), "variable {name:?}: `required = true` and `default` are mutually exclusive");
            ensure!(v.required || v.default.is_some(), "variable {name:?} needs a `default` or `required = true`");
            variables.insert(name, VariableDecl { default: v.default, required: v.required, secret: v.secret });
        }

        let mut routes = Vec::new();
        let mut component_id: Option<String> = None;
        for (i, trigger) in raw.trigger.http.into_iter().enumerate() {
            ensure!(
                trigger.executor.is_none()
                    || trigger.executor.as_ref().and_then(|e| e.get("type")).and_then(toml::Value::as_str) == Some("http"),
                "trigger.http[{i}]: only the default (wasi-http) executor is supported"
            );
            let RawRoute::Path(route) = trigger.route else {
                // A private endpoint has no route: nothing to serve.
                continue;
            };
            let id = match trigger.component {
                Some(toml::Value::String(id)) => id,
                Some(_) => bail!("trigger.http[{i}]: inline components are not supported"),
                None => bail!("trigger.http[{i}]: static responses are not supported"),
            };
            if let Some(existing) = &component_id {
                ensure!(*existing == id, "this test host serves one component; routes name both {existing:?} and {id:?}");
            }
            component_id = Some(id);
            routes.push(Route::parse(&route)?);
        }
        let id = component_id.context("the manifest has no [[trigger.http]] with a route")?;

        let mut components = raw.component;
        let raw_component = components.remove(&id).with_context(|| format!("trigger names component {id:?}, which has no section"))?;
        let source = match raw_component.source {
            toml::Value::String(s) => dir.join(s),
            _ => bail!("component {id:?}: only a local file `source` is supported"),
        };

        let check_template = |what: &str, t: &Template| -> anyhow::Result<()> {
            for name in t.variables() {
                ensure!(variables.contains_key(name), "{what}: template {t} refers to unknown variable {name:?}");
            }
            Ok(())
        };

        let mut component_variables = BTreeMap::new();
        for (name, value) in raw_component.variables {
            validate_variable_name(&name).map_err(|e| anyhow::anyhow!("component {id:?}: invalid variable name {e}"))?;
            let t = Template::parse(&value)?;
            check_template(&format!("component {id:?} variable {name:?}"), &t)?;
            component_variables.insert(name, t);
        }
        let mut allowed_outbound_hosts = Vec::new();
        for entry in &raw_component.allowed_outbound_hosts {
            let t = Template::parse(entry)?;
            check_template(&format!("component {id:?} allowed_outbound_hosts"), &t)?;
            allowed_outbound_hosts.push(t);
        }

        Ok(Self {
            app_name: raw.application.name.unwrap_or_else(|| "<unnamed>".to_owned()),
            app_version: raw.application.version,
            variables,
            routes,
            component: ComponentDecl {
                id,
                source,
                key_value_stores: raw_component.key_value_stores,
                allowed_outbound_hosts,
                variables: component_variables,
                environment: raw_component.environment,
            },
            path,
            dir,
        })
    }
}

#[cfg(test)]
mod tests;
