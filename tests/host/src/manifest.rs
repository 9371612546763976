//! Reading `spin.toml` (manifest version 2) and resolving variables.
//!
//! Only what a single-component HTTP application needs is read: the
//! application `[variables]`, the `[[trigger.http]]` routes, and the served
//! component's `source`, `key_value_stores`, `allowed_outbound_hosts`,
//! `environment` and `[component.<id>.variables]`. Other keys (`build`,
//! `description`, ...) are ignored.
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

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use serde::Deserialize;

use crate::net::AllowedHosts;

// ---------------------------------------------------------------------------
// Raw TOML shapes
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Templates and names
// ---------------------------------------------------------------------------

/// A Spin template: literal text with `{{ variable }}` expressions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Expr(String),
}

impl Template {
    /// Parses a template the way Spin's `spin-expressions` does: `{{` opens
    /// an expression that runs to the next `}}` (trimmed); there is no escape.
    pub fn parse(template: &str) -> anyhow::Result<Self> {
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            if let Some(expr_rest) = rest.strip_prefix("{{") {
                let Some((expr, after)) = expr_rest.split_once("}}") else {
                    bail!("invalid template {template:?}: unmatched '{{{{'");
                };
                parts.push(Part::Expr(expr.trim().to_owned()));
                rest = after;
            } else if let Some(idx) = rest.find("{{") {
                let (lit, after) = rest.split_at(idx);
                parts.push(Part::Lit(lit.to_owned()));
                rest = after;
            } else {
                parts.push(Part::Lit(rest.to_owned()));
                rest = "";
            }
        }
        Ok(Self { parts })
    }

    /// The variable names the template refers to.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(e) => Some(e.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// Substitutes resolved application variables.
    pub fn resolve(&self, values: &BTreeMap<String, String>) -> anyhow::Result<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(l) => out.push_str(l),
                Part::Expr(name) => out.push_str(
                    values
                        .get(name)
                        .with_context(|| format!("unknown variable {name:?} in template"))?,
                ),
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Lit(l) => f.write_str(l)?,
                Part::Expr(e) => write!(f, "{{{{ {e} }}}}")?,
            }
        }
        Ok(())
    }
}

/// Checks a variable name the way Spin does (`spin-expressions` `Key::validate`):
/// lower-case ASCII letters, digits and single underscores, starting with a
/// letter and ending with a letter or digit. The error is Spin's reason text.
pub fn validate_variable_name(name: &str) -> Result<(), String> {
    let reason = if name.is_empty() {
        "must not be empty".to_owned()
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        format!(
            "invalid character {c:?}. Variable names may contain only lower-case letters, \
             numbers, and underscores."
        )
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        "must start with a lowercase ASCII letter".to_owned()
    } else if !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        "must end with a lowercase ASCII letter or digit".to_owned()
    } else if name.contains("__") {
        "must not contain multiple consecutive underscores".to_owned()
    } else {
        return Ok(());
    };
    Err(format!("{name:?}: {reason}"))
}

// ---------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------

/// An HTTP trigger route, Spin-style: exact (`/foo`) or trailing wildcard
/// (`/foo/...`). The application base is always `/` in manifest version 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// As written in the manifest (`/api/v1/...`).
    raw: String,
    /// `raw` made absolute, one trailing slash removed (Spin's "based route").
    based: String,
    /// For a wildcard route, the prefix without `/...` (may be empty for `/...`).
    wildcard_prefix: Option<String>,
}

/// The result of routing a request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    /// `spin-matched-route`: the route combined with the base (`/api/v1/...`).
    pub based_route: String,
    /// `spin-raw-component-route`: the route as written in the manifest.
    pub raw_route: String,
    /// `spin-component-route`: the raw route without a trailing `/...`.
    pub component_route: String,
    /// `spin-path-info`: the part of the path matched by the trailing wildcard.
    pub path_info: String,
}

impl Route {
    /// Parses a manifest route.
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let absolute = if raw.starts_with('/') {
            raw.to_owned()
        } else {
            format!("/{raw}")
        };
        let based = absolute.strip_suffix('/').unwrap_or(&absolute).to_owned();
        ensure!(
            !based.split('/').any(|seg| seg.starts_with(':')),
            "route {raw:?}: named wildcards (':name') are not supported by this test host"
        );
        let wildcard_prefix = based
            .strip_suffix("/...")
            .or_else(|| based.strip_suffix("/*"))
            .or_else(|| (based == "...").then_some(""))
            .map(str::to_owned);
        ensure!(
            wildcard_prefix.is_some() || !based.contains("..."),
            "route {raw:?}: '...' is only allowed as the last segment"
        );
        Ok(Self {
            raw: raw.to_owned(),
            based,
            wildcard_prefix,
        })
    }

    /// The route as written in the manifest.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Matches a request path; `None` if the route does not cover it. The
    /// second value is the length of the matched prefix (longest wins).
    fn matches(&self, path: &str) -> Option<(RouteMatch, Option<usize>)> {
        let component_route = self
            .raw
            .strip_suffix("/...")
            .unwrap_or(&self.raw)
            .to_owned();
        let based_route = self.based.clone();
        let make = |path_info: String| RouteMatch {
            based_route: based_route.clone(),
            raw_route: self.raw.clone(),
            component_route: component_route.clone(),
            path_info,
        };
        match &self.wildcard_prefix {
            Some(prefix) => {
                if path == prefix {
                    Some((make(String::new()), Some(prefix.len())))
                } else {
                    let rest = path.strip_prefix(prefix.as_str())?;
                    rest.starts_with('/')
                        .then(|| (make(rest.to_owned()), Some(prefix.len())))
                }
            }
            None => {
                let trimmed = path.strip_suffix('/').unwrap_or(path);
                (trimmed == self.based).then(|| (make(String::new()), None))
            }
        }
    }
}

/// Picks the route for `path` as Spin does: an exact route beats any
/// wildcard, and among wildcards the longest prefix wins.
pub fn route<'a>(routes: &'a [Route], path: &str) -> Option<(&'a Route, RouteMatch)> {
    let mut best: Option<(&Route, RouteMatch, Option<usize>)> = None;
    for r in routes {
        let Some((m, len)) = r.matches(path) else {
            continue;
        };
        let better = match (&best, len) {
            (None, _) => true,
            (Some((_, _, None)), _) => false,
            (Some((_, _, Some(_))), None) => true,
            (Some((_, _, Some(old))), Some(new)) => new > *old,
        };
        if better {
            best = Some((r, m, len));
        }
    }
    best.map(|(r, m, _)| (r, m))
}

// ---------------------------------------------------------------------------
// The parsed manifest
// ---------------------------------------------------------------------------

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
    /// Reads and validates a manifest file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading manifest {}", path.display()))?;
        let path = std::fs::canonicalize(path)
            .with_context(|| format!("resolving manifest path {}", path.display()))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .context("manifest path has no parent directory")?;
        Self::parse(&text, path, dir)
    }

    /// Parses manifest text; `dir` is where relative `source` paths start.
    pub fn parse(text: &str, path: PathBuf, dir: PathBuf) -> anyhow::Result<Self> {
        let raw: RawManifest =
            toml::from_str(text).with_context(|| format!("parsing manifest {}", path.display()))?;
        ensure!(
            raw.spin_manifest_version.as_integer() == Some(2)
                || raw.spin_manifest_version.as_str() == Some("2"),
            "{}: only spin_manifest_version = 2 is supported",
            path.display()
        );

        let mut variables = BTreeMap::new();
        for (name, v) in raw.variables {
            validate_variable_name(&name)
                .map_err(|e| anyhow::anyhow!("invalid variable name {e}"))?;
            ensure!(
                !(v.required && v.default.is_some()),
                "variable {name:?}: `required = true` and `default` are mutually exclusive"
            );
            ensure!(
                v.required || v.default.is_some(),
                "variable {name:?} needs a `default` or `required = true`"
            );
            variables.insert(
                name,
                VariableDecl {
                    default: v.default,
                    required: v.required,
                    secret: v.secret,
                },
            );
        }

        let mut routes = Vec::new();
        let mut component_id: Option<String> = None;
        for (i, trigger) in raw.trigger.http.into_iter().enumerate() {
            ensure!(
                trigger.executor.is_none()
                    || trigger
                        .executor
                        .as_ref()
                        .and_then(|e| e.get("type"))
                        .and_then(toml::Value::as_str)
                        == Some("http"),
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
                ensure!(
                    *existing == id,
                    "this test host serves one component; routes name both {existing:?} and {id:?}"
                );
            }
            component_id = Some(id);
            routes.push(Route::parse(&route)?);
        }
        let id = component_id.context("the manifest has no [[trigger.http]] with a route")?;

        let mut components = raw.component;
        let raw_component = components
            .remove(&id)
            .with_context(|| format!("trigger names component {id:?}, which has no section"))?;
        let source = match raw_component.source {
            toml::Value::String(s) => dir.join(s),
            _ => bail!("component {id:?}: only a local file `source` is supported"),
        };

        let check_template = |what: &str, t: &Template| -> anyhow::Result<()> {
            for name in t.variables() {
                ensure!(
                    variables.contains_key(name),
                    "{what}: template {t} refers to unknown variable {name:?}"
                );
            }
            Ok(())
        };

        let mut component_variables = BTreeMap::new();
        for (name, value) in raw_component.variables {
            validate_variable_name(&name)
                .map_err(|e| anyhow::anyhow!("component {id:?}: invalid variable name {e}"))?;
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
            app_name: raw
                .application
                .name
                .unwrap_or_else(|| "<unnamed>".to_owned()),
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

    /// Routes a request path (see [`route`]).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        route(&self.routes, path).map(|(_, m)| m)
    }

    /// Resolves the application variables (overrides, then `SPIN_VARIABLE_*`
    /// from the process environment, then defaults) and everything that
    /// depends on them.
    pub fn resolve(&self, overrides: &BTreeMap<String, String>) -> anyhow::Result<Resolved> {
        self.resolve_with_env(overrides, |key| std::env::var(key).ok())
    }

    /// [`Manifest::resolve`] with an explicit environment lookup.
    pub fn resolve_with_env(
        &self,
        overrides: &BTreeMap<String, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Resolved> {
        for name in overrides.keys() {
            ensure!(
                self.variables.contains_key(name),
                "variable {name:?} is not declared in [variables] of {}",
                self.path.display()
            );
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
        let allowed_outbound_hosts = self
            .component
            .allowed_outbound_hosts
            .iter()
            .map(|t| t.resolve(&app_variables))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let allowed_hosts = AllowedHosts::parse(&allowed_outbound_hosts).with_context(|| {
            format!("component {:?}: allowed_outbound_hosts", self.component.id)
        })?;
        Ok(Resolved {
            app_variables,
            component_variables,
            allowed_outbound_hosts,
            allowed_hosts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real_manifest() -> Manifest {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../spin.toml"));
        Manifest::load(path).expect("the project's spin.toml loads")
    }

    #[test]
    fn templates() {
        let vars: BTreeMap<String, String> = [("a", "1"), ("bee", "two")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        for (tmpl, want) in [
            ("", ""),
            ("plain", "plain"),
            ("{{ a }}", "1"),
            ("{{a}}", "1"),
            ("x-{{ a }}-{{ bee }}-y", "x-1-two-y"),
            ("{{ a }}{{ bee }}", "1two"),
            ("tcp://{{ bee }}:{{ a }}", "tcp://two:1"),
            ("a } b }}", "a } b }}"),
        ] {
            let t = Template::parse(tmpl).expect(tmpl);
            assert_eq!(t.resolve(&vars).expect(tmpl), want, "{tmpl:?}");
        }
        assert!(Template::parse("{{ a }} {{ unmatched").is_err());
        assert!(
            Template::parse("{{ nope }}")
                .expect("parses")
                .resolve(&vars)
                .is_err()
        );
        assert_eq!(
            Template::parse("x{{a}}y").expect("parses").to_string(),
            "x{{ a }}y"
        );
    }

    #[test]
    fn variable_names() {
        for good in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3", "ldap_ip"] {
            assert!(validate_variable_name(good).is_ok(), "{good}");
        }
        for bad in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y", "LDAP_IP"] {
            assert!(validate_variable_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_like_spin() {
        let routes = vec![Route::parse("/api/v1/...").expect("route")];
        let m = route(&routes, "/api/v1/ldap.syncNow").expect("matches").1;
        assert_eq!(m.path_info, "/ldap.syncNow");
        assert_eq!(m.based_route, "/api/v1/...");
        assert_eq!(m.raw_route, "/api/v1/...");
        assert_eq!(m.component_route, "/api/v1");
        assert_eq!(route(&routes, "/api/v1").expect("matches").1.path_info, "");
        assert_eq!(
            route(&routes, "/api/v1/").expect("matches").1.path_info,
            "/"
        );
        assert_eq!(
            route(&routes, "/api/v1/a/b/").expect("matches").1.path_info,
            "/a/b/"
        );
        assert!(route(&routes, "/api/v1x").is_none());
        assert!(route(&routes, "/api/v2/ldap.syncNow").is_none());
        assert!(route(&routes, "/").is_none());

        let routes = vec![
            Route::parse("/...").expect("route"),
            Route::parse("/one/...").expect("route"),
            Route::parse("/one/two/...").expect("route"),
            Route::parse("/one/two").expect("route"),
        ];
        assert_eq!(
            route(&routes, "/one/two/three").expect("m").0.raw(),
            "/one/two/..."
        );
        assert_eq!(route(&routes, "/one/two").expect("m").0.raw(), "/one/two");
        assert_eq!(route(&routes, "/one/x").expect("m").0.raw(), "/one/...");
        let (r, m) = route(&routes, "/").expect("m");
        assert_eq!((r.raw(), m.path_info.as_str()), ("/...", "/"));
        assert_eq!(m.based_route, "/...");
        assert_eq!(m.component_route, "");
        assert!(Route::parse("/users/:id").is_err());
    }

    #[test]
    fn parses_the_projects_manifest() {
        let m = real_manifest();
        assert_eq!(m.app_name, "ldap-sync");
        assert_eq!(m.component.id, "ldap-sync");
        assert!(
            m.component
                .source
                .ends_with("target/wasm32-wasip2/release/ldap_sync.wasm")
        );
        assert!(m.component.source.is_absolute());
        assert_eq!(m.component.key_value_stores, ["default"]);
        assert_eq!(m.routes.len(), 1);
        assert_eq!(m.routes[0].raw(), "/api/v1/...");
        assert!(m.route("/api/v1/ldap.syncNow").is_some());
        assert!(m.route("/health").is_none());
        assert!(m.variables.contains_key("ldap_ip"));
        assert!(m.variables["ldap_authentication_password"].secret);
        // Every component variable refers to a declared application variable
        // (checked at load), and each maps `{{ name }}` to its namesake.
        for (name, t) in &m.component.variables {
            assert_eq!(t.to_string(), format!("{{{{ {name} }}}}"));
        }
    }

    #[test]
    fn resolves_the_projects_manifest() {
        let m = real_manifest();
        let none = |_: &str| None;
        let r = m
            .resolve_with_env(&BTreeMap::new(), none)
            .expect("resolves");
        assert_eq!(r.component_variables["ldap_ip"], "127.0.0.1");
        assert_eq!(r.component_variables["ldap_port"], "389");
        assert_eq!(r.allowed_outbound_hosts, ["tcp://127.0.0.1:389"]);
        assert!(
            r.allowed_hosts
                .allows_socket("tcp", "127.0.0.1:389".parse().expect("addr"))
        );

        // Precedence: overrides > SPIN_VARIABLE_* > default.
        let env = |k: &str| match k {
            "SPIN_VARIABLE_LDAP_PORT" => Some("1389".to_owned()),
            "SPIN_VARIABLE_LDAP_IP" => Some("10.0.0.1".to_owned()),
            _ => None,
        };
        let overrides: BTreeMap<String, String> =
            [("ldap_ip".to_owned(), "192.0.2.10".to_owned())].into();
        let r = m.resolve_with_env(&overrides, env).expect("resolves");
        assert_eq!(r.component_variables["ldap_ip"], "192.0.2.10");
        assert_eq!(r.component_variables["ldap_port"], "1389");
        assert_eq!(r.allowed_outbound_hosts, ["tcp://192.0.2.10:1389"]);

        let bad: BTreeMap<String, String> = [("no_such".to_owned(), "x".to_owned())].into();
        assert!(m.resolve_with_env(&bad, none).is_err());
    }

    fn parse(text: &str) -> anyhow::Result<Manifest> {
        Manifest::parse(text, PathBuf::from("/app/spin.toml"), PathBuf::from("/app"))
    }

    #[test]
    fn required_variables_and_mixed_templates() {
        let text = r#"
            spin_manifest_version = 2
            [application]
            name = "t"
            [variables]
            host = { required = true, secret = true }
            port = { default = "389" }
            [[trigger.http]]
            route = "/..."
            component = "c"
            [component.c]
            source = "c.wasm"
            allowed_outbound_hosts = ["tcp://{{ host }}:{{ port }}", "https://example.com"]
            [component.c.variables]
            url = "ldap://{{ host }}:{{ port }}/dc=example"
            fixed = "literal"
        "#;
        let m = parse(text).expect("parses");
        assert_eq!(m.component.source, PathBuf::from("/app/c.wasm"));
        let none = |_: &str| None;
        let err = m
            .resolve_with_env(&BTreeMap::new(), none)
            .expect_err("required");
        assert!(err.to_string().contains("SPIN_VARIABLE_HOST"), "{err}");
        let overrides: BTreeMap<String, String> =
            [("host".to_owned(), "10.1.1.1".to_owned())].into();
        let r = m.resolve_with_env(&overrides, none).expect("resolves");
        assert_eq!(
            r.component_variables["url"],
            "ldap://10.1.1.1:389/dc=example"
        );
        assert_eq!(r.component_variables["fixed"], "literal");
        assert_eq!(r.allowed_outbound_hosts[0], "tcp://10.1.1.1:389");
        let env = |k: &str| (k == "SPIN_VARIABLE_HOST").then(|| "10.2.2.2".to_owned());
        let r = m.resolve_with_env(&BTreeMap::new(), env).expect("resolves");
        assert_eq!(
            r.component_variables["url"],
            "ldap://10.2.2.2:389/dc=example"
        );
    }

    #[test]
    fn manifest_errors() {
        let base = |extra: &str| {
            format!(
                "spin_manifest_version = 2\n[variables]\nv = {{ default = \"1\" }}\n\
                 [[trigger.http]]\nroute = \"/...\"\ncomponent = \"c\"\n\
                 [component.c]\nsource = \"c.wasm\"\n{extra}"
            )
        };
        assert!(parse(&base("")).is_ok());
        assert!(parse(&base("[component.c.variables]\nx = \"{{ nope }}\"\n")).is_err());
        assert!(parse(&base("[component.c.variables]\nBad = \"x\"\n")).is_err());
        assert!(parse(&base("allowed_outbound_hosts = [\"tcp://{{ w }}:1\"]\n")).is_err());
        assert!(parse(&base("[component.c.variables]\nx = \"{{ v \"\n")).is_err());
        assert!(parse("spin_manifest_version = 1\n").is_err());
        assert!(
            parse(
                "spin_manifest_version = 2\n[variables]\nv = { default = \"1\", required = true }\n\
                 [[trigger.http]]\nroute = \"/...\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
            )
            .is_err()
        );
        assert!(
            parse(
                "spin_manifest_version = 2\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"nope\"\n"
            )
            .is_err()
        );
    }
}
