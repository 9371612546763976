//! Resolving a [`Manifest`]'s variables (overrides, then `SPIN_VARIABLE_*`,
//! then defaults; see the [module docs](super)) and everything that depends on
//! them: the component's variables and its allowed outbound hosts.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail, ensure};

use crate::manifest::Manifest;
use crate::net::AllowedHosts;

/// Variables and permissions resolved for one component.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    /// Application variables (`[variables]`) after overrides/env/defaults.
    pub app_variables: BTreeMap<String, String>,
    /// The component's variables (`[component.<id>.variables]`), resolved:
    /// what the guest's `variables::get` sees.
    pub component_variables: BTreeMap<String, String>,
    /// The resolved `allowed_outbound_hosts` strings.
    pub allowed_outbound_hosts: Vec<String>,
    /// ... and parsed.
    pub allowed_hosts: AllowedHosts,
}

impl Manifest {
    /// Resolves the application variables (overrides, then `SPIN_VARIABLE_*`
    /// from the process environment, then defaults) and everything that
    /// depends on them.
    pub fn resolve(&self, overrides: &BTreeMap<String, String>) -> anyhow::Result<Resolved> {
        self.resolve_with_env(overrides, |key| std::env::var(key).ok())
    }

    /// [`Manifest::resolve`] with an explicit environment lookup.
    pub fn resolve_with_env(&self, overrides: &BTreeMap<String, String>, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Resolved> {
        for name in overrides.keys() {
            ensure!(self.variables.contains_key(name), "variable {name:?} is not declared in [variables] of {}", self.path.display());
        }
        let mut app_variables = BTreeMap::new();
        for (name, decl) in &self.variables {
            let value = overrides
                .get(name)
                .cloned()
                .or_else(|| env(&format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())))
                .or_else(|| decl.default.clone());
            let Some(value) = value else {
                bail!(
                    "required variable {name:?} has no value: pass it as an override or set \
                     SPIN_VARIABLE_{}",
                    name.to_ascii_uppercase()
                );
            };
            app_variables.insert(name.clone(), value);
        }

        let component_variables = self
            .component
            .variables
            .iter()
            .map(|(k, t)| Ok((k.clone(), t.resolve(&app_variables)?)))
            .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
        let allowed_outbound_hosts =
            self.component.allowed_outbound_hosts.iter().map(|t| t.resolve(&app_variables)).collect::<anyhow::Result<Vec<_>>>()?;
        let allowed_hosts = AllowedHosts::parse(&allowed_outbound_hosts)
            .with_context(|| format!("component {:?}: allowed_outbound_hosts", self.component.id))?;
        Ok(Resolved { app_variables, component_variables, allowed_outbound_hosts, allowed_hosts })
    }
}

#[cfg(test)]
mod tests;
