//! HTTP trigger routes and how Spin picks one for a request path.

use anyhow::ensure;

use crate::manifest::Manifest;

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
        let absolute = if raw.starts_with('/') { raw.to_owned() } else { format!("/{raw}") };
        let based = absolute.strip_suffix('/').unwrap_or(&absolute).to_owned();
        ensure!(
            !based.split('/').any(|seg| seg.starts_with(':')),
            "route {raw:?}: named wildcards (':name') are not supported by this test host"
        );
        let wildcard_prefix =
            based.strip_suffix("/...").or_else(|| based.strip_suffix("/*")).or_else(|| (based == "...").then_some("")).map(str::to_owned);
        ensure!(wildcard_prefix.is_some() || !based.contains("..."), "route {raw:?}: '...' is only allowed as the last segment");
        Ok(Self { raw: raw.to_owned(), based, wildcard_prefix })
    }

    /// The route as written in the manifest.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Matches a request path; `None` if the route does not cover it. The
    /// second value is the length of the matched prefix (longest wins).
    fn matches(&self, path: &str) -> Option<(RouteMatch, Option<usize>)> {
        let component_route = self.raw.strip_suffix("/...").unwrap_or(&self.raw).to_owned();
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
                    rest.starts_with('/').then(|| (make(rest.to_owned()), Some(prefix.len())))
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

impl Manifest {
    /// Routes a request path (see [`route`]).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        route(&self.routes, path).map(|(_, m)| m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_like_spin() {
        let routes = vec![Route::parse("/api/v1/...").expect("route")];
        let m = route(&routes, "/api/v1/ldap.syncNow").expect("matches").1;
        assert_eq!(m.path_info, "/ldap.syncNow");
        assert_eq!(m.based_route, "/api/v1/...");
        assert_eq!(m.raw_route, "/api/v1/...");
        assert_eq!(m.component_route, "/api/v1");
        assert_eq!(route(&routes, "/api/v1").expect("matches").1.path_info, "");
        assert_eq!(route(&routes, "/api/v1/").expect("matches").1.path_info, "/");
        assert_eq!(route(&routes, "/api/v1/a/b/").expect("matches").1.path_info, "/a/b/");
        assert!(route(&routes, "/api/v1x").is_none());
        assert!(route(&routes, "/api/v2/ldap.syncNow").is_none());
        assert!(route(&routes, "/").is_none());

        let routes = vec![
            Route::parse("/...").expect("route"),
            Route::parse("/one/...").expect("route"),
            Route::parse("/one/two/...").expect("route"),
            Route::parse("/one/two").expect("route"),
        ];
        assert_eq!(route(&routes, "/one/two/three").expect("m").0.raw(), "/one/two/...");
        assert_eq!(route(&routes, "/one/two").expect("m").0.raw(), "/one/two");
        assert_eq!(route(&routes, "/one/x").expect("m").0.raw(), "/one/...");
        let (r, m) = route(&routes, "/").expect("m");
        assert_eq!((r.raw(), m.path_info.as_str()), ("/...", "/"));
        assert_eq!(m.based_route, "/...");
        assert_eq!(m.component_route, "");
        assert!(Route::parse("/users/:id").is_err());
    }
}
