use super::*;
use crate::ldap::filter::UserFilter;
use crate::settings::{Accounts, LdapSearch, Template};

fn search() -> LdapSearch {
    LdapSearch {
        base_dn: "dc=example,dc=org".into(),
        user_filter: UserFilter::parse("(objectclass=*)"),
        scope: crate::settings::Scope::Sub,
        search_fields: vec!["uid".into()],
        page_size: std::num::NonZeroU32::new(250),
        size_limit: 1000,
        unique_id_fields: vec!["entryUUID".into(), "uid".into()],
        username_field: Template::parse("uid"),
        email_fields: vec!["mail".into()],
        name_field: Template::parse("cn"),
        extension_field: String::new(),
        default_domain: String::new(),
        merge_existing_users: false,
        custom_fields: Vec::new(),
        variables: None,
    }
}

fn accounts() -> Accounts {
    Accounts {
        verify_external_emails: true,
        slugify_names: true,
        manually_approve_new_users: false,
        default_roles: vec!["user".into()],
        bootstrap_admin: None,
    }
}

fn entry(attrs: &[(&str, &[&str])]) -> DirectoryEntry {
    DirectoryEntry::new(
        "uid=x,dc=example,dc=org",
        attrs.iter().map(|(n, vs)| ((*n).to_owned(), vs.iter().map(|v| v.as_bytes().to_vec()).collect())).collect(),
    )
}

#[test]
fn maps_the_usual_fields() {
    let e =
        entry(&[("entryUUID", &["abc"]), ("uid", &["Alice"]), ("mail", &["alice@example.org", "a2@example.org"]), ("cn", &["Alice A"])]);
    let u = map_entry(&e, &search(), &accounts(), &[]).expect("maps");
    assert_eq!(u.ldap_id.attribute, "entryUUID");
    assert_eq!(u.ldap_id.value, "616263");
    assert_eq!(u.username, "alice");
    assert_eq!(u.emails, vec!["alice@example.org", "a2@example.org"]);
    assert_eq!(u.name.as_deref(), Some("Alice A"));
}

#[test]
fn unique_id_falls_through_candidates_and_keeps_upstream_quirks() {
    let e = entry(&[("uid", &["john"]), ("mail", &["j@x.org"])]);
    assert_eq!(map_entry(&e, &search(), &accounts(), &[]).expect("maps").ldap_id.value, "6a6f686e");
    let mut s = search();
    s.unique_id_fields = vec![];
    s.search_fields = vec![];
    s.username_field = Template::parse("uid");
    let u = map_entry(&e, &s, &accounts(), &[]).expect("dn fallback");
    assert_eq!((u.ldap_id.attribute.as_str(), u.ldap_id.value.as_str()), ("dn", "uid=x,dc=example,dc=org"));
    let none = entry(&[("mail", &["j@x.org"])]);
    assert_eq!(map_entry(&none, &search(), &accounts(), &[]), Err(EntryProblem::NoUniqueId("entryUUID,uid,uid".into())));
}

#[test]
fn email_fallbacks() {
    let e = entry(&[("uid", &["bob"]), ("mail", &["not-an-address"])]);
    assert_eq!(map_entry(&e, &search(), &accounts(), &[]), Err(EntryProblem::NoEmail("mail".into())));
    let mut s = search();
    s.default_domain = "corp.example".into();
    assert_eq!(map_entry(&e, &s, &accounts(), &[]).expect("domain").emails, vec!["bob@corp.example"]);
    // With other e-mail fields: a single-valued `mail` holding an `@` is the last resort (after the domain).
    let mut s = search();
    s.email_fields = vec!["userPrincipalName".into()];
    let upn = entry(&[("uid", &["bob"]), ("userPrincipalName", &["bob"]), ("mail", &["bob@mail.example"])]);
    assert_eq!(map_entry(&upn, &s, &accounts(), &[]).expect("mail").emails, vec!["bob@mail.example"]);
    let two = entry(&[("uid", &["bob"]), ("mail", &["bob@a.example", "bob@b.example"])]);
    assert_eq!(map_entry(&two, &s, &accounts(), &[]), Err(EntryProblem::NoEmail("userPrincipalName".into())), "several values: none");
    s.default_domain = "corp.example".into();
    assert_eq!(map_entry(&upn, &s, &accounts(), &[]).expect("domain first").emails, vec!["bob@corp.example"]);
    assert!(attributes_to_request(&s, false).iter().any(|a| a == "mail"), "mail is asked for");
}

#[test]
fn templates_and_lists() {
    let mut s = search();
    s.name_field = Template::parse("#{givenName} #{sn}");
    s.username_field = Template::parse("missing, uid");
    let e = entry(&[("uid", &["carol"]), ("givenName", &["Carol"]), ("sn", &["Jones"]), ("mail", &["c@x.org"])]);
    let u = map_entry(&e, &s, &accounts(), &[]).expect("maps");
    assert_eq!((u.username.as_str(), u.name.as_deref()), ("carol", Some("Carol Jones")));
    assert_eq!(attributes_to_request(&s, false), vec!["entryUUID", "uid", "mail", "missing", "givenName", "sn"]);
    assert_eq!(
        attributes_to_request(&s, true),
        vec!["entryUUID", "uid", "mail", "missing", "givenName", "sn", "userAccountControl", "loginDisabled", "orclIsEnabled"],
        "the account state only when ldap_sync_user_active_state needs it"
    );
}

#[test]
fn slugify_non_latin_names() {
    // limax 4.2.3's answers (tests/fixtures/limax has many more).
    assert_eq!(slugify("Jürgen Müller"), "juergen.mueller");
    assert_eq!(slugify("björn.öberg"), "bjoern.oeberg");
    assert_eq!(slugify("北京 用户"), "bei3.jing1.yong4.hu4");
    assert_eq!(slugify("李小龍"), "li3.xiao3.long2");
    assert_eq!(slugify("やまだ たろう"), "yamada.tarou");
    assert_eq!(slugify("Иван Петров"), "ivan.petrov");
    assert_eq!(slugify("O'Brien, Pat"), "obrien.pat");
    assert_eq!(slugify("jean-luc picard"), "jean-luc.picard");
    assert_eq!(slugify("dots..and--dashes"), "dots.and--dashes");
    assert_eq!(slugify("under_score"), "under_score");
    assert_eq!(slugify("a1234bcd"), "a1234bcd");
    // No hangul in speakingurl's maps: nothing is left, and the caller skips the entry.
    assert_eq!(slugify("김민준"), "");
}

#[test]
fn custom_fields_follow_upstreams_template_handler() {
    let mut s = search();
    s.custom_fields = vec![
        crate::settings::CustomField { source: "departmentNumber".into(), path: "dept".into() },
        crate::settings::CustomField { source: "ou".into(), path: "org.units".into() },
        crate::settings::CustomField { source: "#{l}/#{st}".into(), path: "where".into() },
        crate::settings::CustomField { source: "#{l}/#{missing}".into(), path: "never".into() },
        crate::settings::CustomField { source: "empty".into(), path: "none".into() },
    ];
    let e = entry(&[
        ("uid", &["dana"]),
        ("mail", &["d@x.org"]),
        ("departmentNumber", &["42"]),
        ("ou", &["Sales", "EMEA"]),
        ("l", &["Oslo"]),
        ("st", &["N", "O"]),
        ("empty", &[""]),
    ]);
    let u = map_entry(&e, &s, &accounts(), &[]).expect("maps");
    assert_eq!(
        u.custom_fields,
        vec![
            ("dept".to_owned(), serde_json::json!("42")),
            ("org.units".to_owned(), serde_json::json!(["Sales", "EMEA"])),
            ("where".to_owned(), serde_json::json!("Oslo/N,O")),
        ]
    );
    let wanted = attributes_to_request(&s, false);
    for attr in ["departmentNumber", "ou", "l", "st", "missing", "empty"] {
        assert!(wanted.iter().any(|w| w == attr), "{attr} is requested: {wanted:?}");
    }
}

#[test]
fn uuids_are_stored_as_rfc_4122_text() {
    let e = entry(&[("entryUUID", &["6F1B2C3D-0000-1111-2222-333344445555"]), ("uid", &["eve"]), ("mail", &["e@x.org"])]);
    assert_eq!(map_entry(&e, &search(), &accounts(), &[]).expect("maps").uuid.as_deref(), Some("6f1b2c3d-0000-1111-2222-333344445555"));
    // AD's objectGUID: the first three fields little-endian.
    let guid: Vec<u8> = (0u8..16).collect();
    let mut s = search();
    s.unique_id_fields = vec!["objectGUID".into()];
    let ad = DirectoryEntry::new(
        "cn=x,dc=example,dc=org",
        vec![("objectGUID".into(), vec![guid]), ("uid".into(), vec![b"ad".to_vec()]), ("mail".into(), vec![b"a@x.org".to_vec()])],
    );
    let u = map_entry(&ad, &s, &accounts(), &[]).expect("maps");
    assert_eq!(u.ldap_id.value, "000102030405060708090a0b0c0d0e0f", "the id stays upstream's hex of the wire bytes");
    assert_eq!(u.uuid.as_deref(), Some("03020100-0504-0706-0809-0a0b0c0d0e0f"));
    let plain = entry(&[("uid", &["fay"]), ("mail", &["f@x.org"])]);
    assert_eq!(map_entry(&plain, &search(), &accounts(), &[]).expect("maps").uuid, None);
}

#[test]
fn a_username_that_slugifies_to_nothing_maps_to_an_empty_one() {
    let e = entry(&[("uid", &["김민준"]), ("mail", &["k@x.org"]), ("cn", &["Kim Min-jun"])]);
    let u = map_entry(&e, &search(), &accounts(), &[]).expect("maps");
    assert_eq!(u.username, "");
    assert_eq!(
        crate::sync::plan::username_suggestions(&u)[..4],
        ["kim.min-jun".to_owned(), "kmin-jun".to_owned(), "kimm".to_owned(), "kim.min-jun-0".to_owned()]
    );
    let nameless = RcUser { name: None, ..u };
    assert_eq!(crate::sync::plan::username_suggestions(&nameless)[0], "user-0");
}

#[test]
fn a_multi_valued_attribute_in_a_field_list_is_passed_on() {
    let e = entry(&[("uid", &["gil"]), ("mail", &["g@x.org"]), ("cn", &["Gil", "Gilbert"])]);
    assert_eq!(map_entry(&e, &search(), &accounts(), &[]).expect("maps").name.as_deref(), Some("Gil,Gilbert"));
    // The username takes the first: upstream's list makes limax throw.
    let e = entry(&[("uid", &["gil", "gilbert"]), ("mail", &["g@x.org"])]);
    assert_eq!(map_entry(&e, &search(), &accounts(), &[]).expect("maps").username, "gil");
}
