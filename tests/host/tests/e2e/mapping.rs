//! Mapping (issue 11) against a real slapd, through the real component:
//! custom fields, `services.ldap.uuid`, limax usernames, a username that
//! slugifies to nothing, and multi-valued attributes in a field list.

use ldap_sync_host::demo::DEMO_PEOPLE_BASE;
use ldap_sync_host::fixture::directory_root_ldif;
use serde_json::json;

use crate::common::*;
use crate::offboarding::{USER_PASSWORD, assert_consistent, assert_synced, call, start_slapd, sync_host, user};

/// An `inetOrgPerson` named by `employeeNumber` (so `uid` can be anything), with a mail and extra `lines`.
fn person(rdn_uid: &str, uid: &str, lines: &[&str]) -> String {
    let mut l = format!(
        "dn: employeeNumber={rdn_uid},{DEMO_PEOPLE_BASE}\nobjectClass: inetOrgPerson\nobjectClass: ldapSyncTestAccount\n\
         employeeNumber: {rdn_uid}\nuid: {uid}\nsn: x\nmail: {rdn_uid}@example.org\nuserPassword: {USER_PASSWORD}\n"
    );
    for line in lines {
        l.push_str(line);
        l.push('\n');
    }
    l + "\n"
}

#[tokio::test]
async fn declared_custom_fields_are_written_with_upstreams_templates_and_others_kept() {
    let mut ldif = directory_root_ldif();
    ldif += &person("dana", "dana", &["cn: Dana", "departmentNumber: 42", "ou: Sales", "ou: EMEA", "l: Oslo", "st: N", "title: Boss"]);
    ldif += &person("eli", "eli", &["cn: Eli", "l: Rome"]);
    let slapd = start_slapd(ldif, None);
    let host = sync_host(
        slapd.port(),
        &[
            ("ldap_sync_custom_fields", "true"),
            ("ldap_customfieldmap", r##"{"departmentNumber":"dept","ou":"org.units","#{l}/#{st}":"where","title":"undeclared"}"##),
            ("accounts_customfields", r#"{"dept":{"type":"text"},"org":{"units":{"type":"text"}},"where":{"type":"text"}}"#),
        ],
    );
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["created"], json!(2), "{report}");
    assert_eq!(user(&host, "dana")["customFields"], json!({"dept": "42", "org": {"units": ["Sales", "EMEA"]}, "where": "Oslo/N"}));
    assert_eq!(user(&host, "eli").get("customFields"), None, "a template with a missing attribute gives nothing");

    // A field Rocket.Chat set stays; an unchanged directory writes nothing.
    let mut dana = user(&host, "dana");
    dana["customFields"]["phone"] = json!("555");
    put(&host, &format!("user:{}", dana["_id"].as_str().expect("id")), &dana);
    slapd
        .modify(&format!(
            "dn: employeeNumber=dana,{DEMO_PEOPLE_BASE}\nchangetype: modify\nreplace: departmentNumber\ndepartmentNumber: 43\n\n"
        ))
        .expect("ldapmodify");
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["updated"], json!(1), "{report}");
    assert_eq!(
        user(&host, "dana")["customFields"],
        json!({"dept": "43", "org": {"units": ["Sales", "EMEA"]}, "where": "Oslo/N", "phone": "555"})
    );
    let before = documents(&host);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report["updated"].clone(), report["unchanged"].clone()), (json!(0), json!(2)), "{report}");
    assert_eq!(documents(&host), before);
    assert_consistent(&host);
}

#[tokio::test]
async fn usernames_are_limax_slugs_uuids_are_text_and_empty_slugs_get_a_suggestion() {
    let mut ldif = directory_root_ldif();
    ldif += &person("picard", "Jean-Luc Picard", &["cn: Jean-Luc Picard"]);
    ldif += &person("bjorn", "björn.öberg", &["cn: Björn Öberg"]);
    ldif += &person("bruce", "李小龍", &["cn: Bruce Lee"]);
    ldif += &person("minjun", "김민준", &["cn: Kim Minjun"]);
    ldif += &person("nameless", "김철수", &["cn: 김철수"]);
    ldif += &person("multi", "multi", &["cn: First", "cn: Second"]);
    let slapd = start_slapd(ldif, None);
    let host = sync_host(slapd.port(), &[]);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report["created"].clone(), report["failed"].clone()), (json!(6), json!(0)), "{report}");
    for (username, name) in [
        ("jean-luc.picard", "Jean-Luc Picard"),
        ("bjoern.oeberg", "Björn Öberg"),
        ("li3.xiao3.long2", "Bruce Lee"),
        ("kim.minjun", "Kim Minjun"),
        ("user-0", "김철수"),
        ("multi", "First,Second"),
    ] {
        let doc = user(&host, username);
        assert_eq!(doc["name"], json!(name), "{username}");
        // services.ldap.id is the hex of entryUUID's text; uuid is that text.
        let id = doc["services"]["ldap"]["id"].as_str().expect("id");
        let text: String = (0..id.len()).step_by(2).map(|i| u8::from_str_radix(&id[i..i + 2], 16).expect("hex") as char).collect();
        assert_eq!(
            (doc["services"]["ldap"]["idAttribute"].clone(), doc["services"]["ldap"]["uuid"].clone()),
            (json!("entryUUID"), json!(text))
        );
    }
    // An existing user whose username now slugifies to nothing keeps it.
    slapd
        .modify(&format!("dn: employeeNumber=picard,{DEMO_PEOPLE_BASE}\nchangetype: modify\nreplace: uid\nuid:: 7ZWc6rWt\n\n"))
        .expect("ldapmodify");
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["failed"], json!(0), "{report}");
    assert_eq!(user(&host, "jean-luc.picard")["name"], json!("Jean-Luc Picard"));
    assert_consistent(&host);
}

/// Upstream's DataSync variables: each operation, a variable that reads the
/// one before it, and the mapping settings naming variables like attributes.
const VARIABLE_MAP: &str = r##"{
    "login": {"input": "uid", "output": {"operation": "replace", "pattern": "[^a-z]", "regex": true, "flags": "gi", "replacement": ""}},
    "shortMail": {"input": "mail", "output": {"operation": "split", "pattern": "@"}},
    "region": {"input": "departmentNumber", "output": {"operation": "match", "pattern": "^4", "valueIfTrue": "north", "valueIfFalse": "south"}},
    "initials": {"input": "#{givenName}", "output": {"operation": "substring", "start": 0, "end": 2}},
    "display": {"input": "displayName", "output": {"operation": "fallback", "fallback": "#{cn} (#{initials})", "minLength": 3}},
    "office": {"input": "#{l}-#{region}"}
}"##;

#[tokio::test]
async fn datasync_variables_derive_attributes_the_mapping_reads() {
    let mut ldif = directory_root_ldif();
    ldif += &person("dana", "Dana_01", &["cn: Dana Scully", "givenName: Dana", "departmentNumber: 42", "l: Oslo", "displayName: DS"]);
    ldif += &person("eli", "eli.k", &["cn: Eli Kay", "givenName: Eli", "departmentNumber: 7", "l: Rome", "displayName: Dr Eli Kay"]);
    let slapd = start_slapd(ldif, None);
    let settings = [
        ("ldap_datasync_usevariables", "true"),
        ("ldap_datasync_variablemap", VARIABLE_MAP),
        ("ldap_username_field", "login"),
        ("ldap_name_field", "display"),
        ("ldap_sync_custom_fields", "true"),
        ("ldap_customfieldmap", r#"{"region":"region","shortMail":"mailbox","office":"office"}"#),
        ("accounts_customfields", r#"{"region":{"type":"text"},"mailbox":{"type":"text"},"office":{"type":"text"}}"#),
    ];
    let host = sync_host(slapd.port(), &settings);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report["created"].clone(), report["failed"].clone()), (json!(2), json!(0)), "{report}");
    let dana = user(&host, "dana");
    assert_eq!(dana["name"], json!("Dana Scully (Da)"), "displayName shorter than minLength: the fallback");
    assert_eq!(dana["customFields"], json!({"region": "north", "mailbox": "dana", "office": "Oslo-north"}));
    let eli = user(&host, "elik");
    assert_eq!(eli["name"], json!("Dr Eli Kay"));
    assert_eq!(eli["customFields"], json!({"region": "south", "mailbox": "eli", "office": "Rome-south"}));

    // A changed input changes the derived value; nothing else is written.
    slapd
        .modify(&format!(
            "dn: employeeNumber=eli,{DEMO_PEOPLE_BASE}\nchangetype: modify\nreplace: departmentNumber\ndepartmentNumber: 41\n\n"
        ))
        .expect("ldapmodify");
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report["updated"].clone(), report["unchanged"].clone()), (json!(1), json!(1)), "{report}");
    assert_eq!(user(&host, "elik")["customFields"]["office"], json!("Rome-north"));
    let before = documents(&host);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["updated"], json!(0), "{report}");
    assert_eq!(documents(&host), before);
    assert_consistent(&host);
}

#[tokio::test]
async fn a_variable_map_upstream_would_fail_every_entry_with_is_a_400_that_names_it() {
    let slapd = start_slapd(directory_root_ldif() + &person("dana", "dana", &["cn: Dana"]), None);
    let map = r#"{"x": {"input": "uid", "output": {"operation": "replace", "pattern": "("}}}"#;
    let host = sync_host(slapd.port(), &[("ldap_datasync_usevariables", "true"), ("ldap_datasync_variablemap", map)]);
    let res = call(&host).await;
    assert_eq!(res.status, 400, "{}", res.text());
    let body = res.json();
    let error = body["error"].as_str().expect("error");
    assert!(error.contains("for variable ldap_datasync_variablemap: expected a JSON object of variable name"), "{error}");
    assert!(error.contains("variable \"x\": replace needs \"replacement\" as a string"), "{error}");
    // Off, the map is not read at all, as upstream.
    let host = sync_host(slapd.port(), &[("ldap_datasync_usevariables", "false"), ("ldap_datasync_variablemap", map)]);
    assert_synced(&host, &call(&host).await);
}
