use crate::manifest::{parse_at_app as parse, project_manifest};

#[test]
fn parses_the_projects_manifest() {
    let m = project_manifest();
    assert_eq!(m.app_name, "ldap-sync");
    assert_eq!(m.component.id, "ldap-sync");
    assert!(m.component.source.ends_with("target/wasm32-wasip2/release/ldap_sync.wasm"));
    assert!(m.component.source.is_absolute());
    assert_eq!(m.component.key_value_stores, ["default"]);
    assert_eq!(m.routes.len(), 2);
    assert_eq!(m.routes[0].raw(), "/api/v1/...");
    assert_eq!(m.routes[1].raw(), "/avatar/...");
    assert!(m.route("/api/v1/ldap.syncNow").is_some());
    assert!(m.route("/avatar/alice").is_some());
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
    assert!(parse("spin_manifest_version = 2\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"nope\"\n").is_err());
}
