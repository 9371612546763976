use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::manifest::{parse_at_app as parse, project_manifest};

#[test]
fn resolves_the_projects_manifest() {
    let m = project_manifest();
    let none = |_: &str| None;
    let r = m.resolve_with_env(&BTreeMap::new(), none).expect("resolves");
    assert_eq!(r.component_variables["ldap_ip"], "127.0.0.1");
    assert_eq!(r.component_variables["ldap_port"], "389");
    assert_eq!(r.allowed_outbound_hosts, ["tcp://127.0.0.1:389"]);
    assert!(r.allowed_hosts.allows_socket("tcp", "127.0.0.1:389".parse().expect("addr")));

    // Precedence: overrides > SPIN_VARIABLE_* > default.
    let env = |k: &str| match k {
        "SPIN_VARIABLE_LDAP_PORT" => Some("1389".to_owned()),
        "SPIN_VARIABLE_LDAP_IP" => Some("10.0.0.1".to_owned()),
        _ => None,
    };
    let overrides: BTreeMap<String, String> = [("ldap_ip".to_owned(), "192.0.2.10".to_owned())].into();
    let r = m.resolve_with_env(&overrides, env).expect("resolves");
    assert_eq!(r.component_variables["ldap_ip"], "192.0.2.10");
    assert_eq!(r.component_variables["ldap_port"], "1389");
    assert_eq!(r.allowed_outbound_hosts, ["tcp://192.0.2.10:1389"]);

    let bad: BTreeMap<String, String> = [("no_such".to_owned(), "x".to_owned())].into();
    assert!(m.resolve_with_env(&bad, none).is_err());
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
    let err = m.resolve_with_env(&BTreeMap::new(), none).expect_err("required");
    assert!(err.to_string().contains("SPIN_VARIABLE_HOST"), "{err}");
    let overrides: BTreeMap<String, String> = [("host".to_owned(), "10.1.1.1".to_owned())].into();
    let r = m.resolve_with_env(&overrides, none).expect("resolves");
    assert_eq!(r.component_variables["url"], "ldap://10.1.1.1:389/dc=example");
    assert_eq!(r.component_variables["fixed"], "literal");
    assert_eq!(r.allowed_outbound_hosts[0], "tcp://10.1.1.1:389");
    let env = |k: &str| (k == "SPIN_VARIABLE_HOST").then(|| "10.2.2.2".to_owned());
    let r = m.resolve_with_env(&BTreeMap::new(), env).expect("resolves");
    assert_eq!(r.component_variables["url"], "ldap://10.2.2.2:389/dc=example");
}
