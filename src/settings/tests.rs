use std::collections::BTreeMap;

use super::*;

struct Map(BTreeMap<&'static str, &'static str>);

impl VariableSource for Map {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.0.get(name).map(|v| (*v).to_owned()))
    }
}

fn with(pairs: &[(&'static str, &'static str)]) -> Result<Settings, SettingsError> {
    Settings::load(&Map(pairs.iter().copied().collect()))
}

#[test]
fn defaults_parse() {
    let s = with(&[]).expect("defaults are valid");
    assert!(!s.ldap_enabled);
    assert!(super::background_sync(&Map(Default::default())).expect("valid"));
    assert_eq!(s.connection.port, 389);
    assert_eq!(s.connection.ip, Some("127.0.0.1".parse().expect("literal")));
    // Server type defaults to "ad", as upstream.
    assert_eq!(s.search.search_fields, vec!["sAMAccountName"]);
    assert_eq!(s.two_factor.max_delta, 1);
    assert_eq!(s.rate_limit.calls, 10);
}

#[test]
fn every_lookup_is_declared() {
    let source = include_str!("../settings.rs");
    let mut rest = source;
    while let Some(at) = rest.find("lookup(\"") {
        rest = &rest[at + 8..];
        let name = &rest[..rest.find('"').expect("closing quote")];
        assert!(VARIABLES.iter().any(|v| v.name == name), "lookup of undeclared variable {name}");
    }
    for name in UNSUPPORTED_SWITCHES {
        assert!(VARIABLES.iter().any(|v| v.name == *name), "{name}");
    }
}

#[test]
fn spin_toml_declares_every_variable_with_the_same_default() {
    let manifest = include_str!("../../spin.toml");
    for v in VARIABLES {
        let line = manifest.lines().find(|l| l.starts_with(&format!("{} = {{", v.name))).unwrap_or_else(|| String::new().leak());
        assert!(!line.is_empty(), "spin.toml [variables] lacks {}", v.name);
        let escaped = v.default.replace('\\', "\\\\").replace('"', "\\\"");
        assert!(line.contains(&format!("default = \"{escaped}\"")), "default of {} differs: {line}", v.name);
        assert_eq!(line.contains("secret = true"), v.secret, "secret flag of {}", v.name);
        assert!(manifest.contains(&format!("{0} = \"{{{{ {0} }}}}\"", v.name)), "component does not map {}", v.name);
    }
    let declared = manifest.lines().skip_while(|l| *l != "[variables]").skip(1).take_while(|l| !l.is_empty()).count();
    assert_eq!(declared, VARIABLES.len(), "spin.toml declares variables the code does not read");
}

#[test]
fn readme_documents_every_variable() {
    let readme = include_str!("../../README.md");
    for v in VARIABLES {
        assert!(readme.contains(&format!("| `{}` |", v.name)), "README table lacks {}", v.name);
    }
}

#[test]
fn invalid_values_name_the_variable_and_what_it_accepts() {
    let e = with(&[("ldap_port", "70000")]).expect_err("out of range");
    assert_eq!(e.to_string(), "invalid value \"70000\" for variable ldap_port: expected an integer from 1 to 65535");
    let e = with(&[("ldap_enable", "yes")]).expect_err("not a bool");
    assert_eq!(e.to_string(), "invalid value \"yes\" for variable ldap_enable: expected true or false");
    let e = with(&[("ldap_encryption", "starttls")]).expect_err("not a choice");
    assert_eq!(e.to_string(), "invalid value \"starttls\" for variable ldap_encryption: expected plain, tls or ssl");
    let e = with(&[("ldap_ip", "ldap.example.com")]).expect_err("names are not resolved");
    assert!(e.to_string().contains("ldap_ip"), "{e}");
}

#[test]
fn unsupported_features_are_refused_not_ignored() {
    let e = with(&[("ldap_sync_user_data_channels", "true")]).expect_err("not supported");
    assert_eq!(
        e.to_string(),
        "invalid value \"true\" for variable ldap_sync_user_data_channels: expected false (this feature is not supported by ldap-sync yet)"
    );
}

#[test]
fn roles_parse_with_upstreams_defaults_and_bad_maps_name_the_variable() {
    assert!(with(&[]).expect("valid").groups.roles.is_none());
    let s = with(&[("ldap_sync_user_data_roles", "true"), ("ldap_sync_user_data_roles_basedn", "ou=groups,dc=x")]).expect("valid");
    let roles = s.groups.roles.expect("on");
    assert_eq!(
        roles.map,
        vec![("rocket-admin".to_owned(), vec!["admin".to_owned()]), ("tech-support".to_owned(), vec!["support".to_owned()])]
    );
    assert_eq!(roles.strategy, MembershipStrategy::EachGroup);
    assert!(!roles.autoremove);
    assert!(roles.known_roles.iter().any(|r| r == "livechat-agent"));
    let on = |extra: (&'static str, &'static str)| {
        with(&[("ldap_sync_user_data_roles", "true"), ("ldap_sync_user_data_roles_basedn", "ou=groups,dc=x"), extra])
    };
    let e = on(("ldap_sync_user_data_rolesmap", "{\"a\": 1}")).expect_err("not roles");
    assert!(
        e.to_string().starts_with("invalid value \"{\\\"a\\\": 1}\" for variable ldap_sync_user_data_rolesmap: expected a JSON object"),
        "{e}"
    );
    let e = on(("ldap_sync_user_data_rolesmap", "{not json")).expect_err("not JSON");
    assert!(e.to_string().contains("ldap_sync_user_data_rolesmap"), "{e}");
    assert!(on(("ldap_sync_user_data_rolesmap", " ")).expect("an empty map is no role sync").groups.roles.is_none());
    let e = on(("ldap_sync_user_data_roles_filter", "(|(cn=#{groupName})(memberUid=#{username}))")).expect_err("not turnable");
    assert!(e.to_string().contains("ldap_sync_user_data_roles_filter"), "{e}");
    let e = with(&[("ldap_sync_user_data_roles", "true")]).expect_err("each_group needs a base");
    assert!(e.to_string().contains("ldap_sync_user_data_roles_basedn"), "{e}");
    let s = on(("ldap_sync_user_data_roles_groupmembershipvalidationstrategy", "once")).expect("valid");
    assert_eq!(s.groups.roles.expect("on").strategy, MembershipStrategy::Once);
}

#[test]
fn the_group_filter_needs_a_member_format_as_upstream() {
    assert!(with(&[("ldap_group_filter_enable", "true")]).expect("valid").groups.filter.is_none());
    let s = with(&[("ldap_group_filter_enable", "true"), ("ldap_group_filter_group_member_format", "uid=#{username},ou=people,dc=x")])
        .expect("valid");
    let f = s.groups.filter.expect("on");
    assert_eq!(
        (f.object_class.as_str(), f.id_attribute.as_str(), f.member_attribute.as_str()),
        ("groupOfUniqueNames", "cn", "uniqueMember")
    );
    assert_eq!(f.group_name, "ROCKET_CHAT");
}

#[test]
fn ad_variants_follow_the_server_type() {
    let s = with(&[("ldap_server_type", ""), ("ldap_user_search_field", " uid , mail ,")]).expect("valid");
    assert_eq!(s.search.search_fields, vec!["uid", "mail"]);
    assert_eq!(s.search.username_field.source, "uid");
}

#[test]
fn host_ip_fills_in_for_an_empty_ldap_ip() {
    let s = with(&[("ldap_ip", ""), ("ldap_host", "10.1.2.3")]).expect("valid");
    assert_eq!(s.connection.ip, Some("10.1.2.3".parse().expect("literal")));
    let s = with(&[("ldap_ip", ""), ("ldap_host", "ldap.example.com")]).expect("valid");
    assert_eq!(s.connection.ip, None);
}

#[test]
fn secrets_are_never_shown() {
    let s = with(&[("ldap_authentication", "true"), ("ldap_authentication_password", "hunter2")]).expect("valid");
    assert!(!format!("{s:?}").contains("hunter2"));
}

#[test]
fn templates_parse_once_for_requests_and_rendering() {
    let values = |name: &str| match name {
        "givenName" => vec!["Ann".to_owned()],
        "sn" => vec!["Lee".to_owned(), "Li".to_owned()],
        _ => Vec::new(),
    };
    let pattern = Template::parse("#{givenName} #{ sn }!");
    assert_eq!(pattern.attributes(), ["givenName", "sn"]);
    assert_eq!(pattern.render(values).as_deref(), Some("Ann Lee,Li!"));
    let first_of = Template::parse(" mail , given Name ,sn");
    assert_eq!(first_of.attributes(), ["mail", "givenName", "sn"]);
    assert_eq!(Template::parse("mail, sn").render(values).as_deref(), Some("Lee,Li"), "several values are passed on, as text");
    let open = Template::parse("x #{sn");
    assert!(open.attributes().is_empty());
    assert_eq!(open.render(values).as_deref(), Some("x #{sn"));
    assert_eq!(Template::parse("#{missing}").render(values), None);
    assert_eq!(Template::parse("  ").render(values), None);
}
