//! Groups (issue 11) against a real slapd, through the real component:
//! group → role under both strategies, AutoRemove, nested groups with a
//! cycle, roles at login, and the group filter with offboarding. Every test
//! ends with the store-consistency checker.

use ldap_sync_host::demo::{DEMO_PEOPLE_BASE, DEMO_SVC_DN, DEMO_SVC_PASSWORD};
use ldap_sync_host::slapd::Slapd;
use ldap_sync_host::{Host, Response};
use serde_json::json;

use crate::common::*;
use crate::offboarding::{
    USER_PASSWORD, assert_consistent, assert_sync_failed, assert_synced, bind_as, call, directory, inactive, start_slapd, sync_host, uids,
    user,
};

const GROUPS: &str = "ou=groups,dc=example,dc=org";

fn groups_ou() -> String {
    format!("dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n\n")
}

/// A `posixGroup` listing `uids` in `memberUid`.
fn posix_group(cn: &str, gid: u32, uids: &[&str]) -> String {
    let mut l = format!("dn: cn={cn},{GROUPS}\nobjectClass: posixGroup\ncn: {cn}\ngidNumber: {gid}\n");
    uids.iter().for_each(|u| l.push_str(&format!("memberUid: {u}\n")));
    l + "\n"
}

/// A `groupOfNames` under `base` whose `member`s are `dns`.
fn names_group(cn: &str, base: &str, dns: &[String]) -> String {
    let mut l = format!("dn: cn={cn},{base}\nobjectClass: groupOfNames\ncn: {cn}\n");
    dns.iter().for_each(|d| l.push_str(&format!("member: {d}\n")));
    l + "\n"
}

fn person_dn(uid: &str) -> String {
    format!("uid={uid},{DEMO_PEOPLE_BASE}")
}

fn roles(host: &Host, username: &str) -> Vec<String> {
    let doc = user(host, username);
    doc["roles"].as_array().expect("roles").iter().map(|r| r.as_str().expect("a role").to_owned()).collect()
}

fn modify(slapd: &Slapd, ldif: &str) {
    slapd.modify(ldif).unwrap_or_else(|e| panic!("ldapmodify: {e:#}"));
}

async fn directory_login(host: &Host, uid: &str) -> Response {
    let body = json!({"user": uid, "password": USER_PASSWORD}).to_string().into_bytes();
    send(host, "POST", "/api/v1/login", &[("content-type", b"application/json")], body).await
}

#[tokio::test]
async fn each_group_gives_roles_takes_them_with_autoremove_and_login_applies_them() {
    let mut ldif = directory(&uids(4));
    ldif += &groups_ou();
    ldif += &posix_group("rocket-admin", 5000, &["u00"]);
    ldif += &posix_group("tech-support", 5001, &["u01", "u02"]);
    let slapd = start_slapd(ldif, None);
    let host = sync_host(
        slapd.port(),
        &[
            ("ldap_sync_user_data_roles", "true"),
            ("ldap_sync_user_data_roles_basedn", GROUPS),
            ("ldap_sync_user_data_rolesmap", r#"{"rocket-admin":"admin","tech-support":["livechat-agent","support"]}"#),
            ("ldap_sync_user_data_roles_autoremove", "true"),
        ],
    );
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["created"], json!(4), "{report}");
    assert_eq!(report["roles"], json!({"added": 3, "removed": 0, "unknown": ["support"]}), "{report}");
    assert_eq!(roles(&host, "u00"), ["user", "admin"]);
    assert_eq!(roles(&host, "u01"), ["user", "livechat-agent"]);
    assert_eq!(roles(&host, "u02"), ["user", "livechat-agent"]);
    assert_eq!(roles(&host, "u03"), ["user"]);

    // A role outside the map is never touched, even with AutoRemove.
    let mut u02 = user(&host, "u02");
    u02["roles"] = json!(["user", "livechat-agent", "moderator"]);
    let id = u02["_id"].as_str().expect("id").to_owned();
    put(&host, &format!("user:{id}"), &u02);

    // Nothing changed: nothing is written.
    let before = documents(&host);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report["updated"].clone(), report["created"].clone()), (json!(0), json!(0)), "{report}");
    assert_eq!(report["roles"], json!({"added": 0, "removed": 0, "unknown": ["support"]}), "{report}");
    assert_eq!(documents(&host), before);

    // u00 leaves rocket-admin, u03 joins it, u02 leaves tech-support.
    modify(
        &slapd,
        &format!(
            "dn: cn=rocket-admin,{GROUPS}\nchangetype: modify\nreplace: memberUid\nmemberUid: u03\n\n\
             dn: cn=tech-support,{GROUPS}\nchangetype: modify\ndelete: memberUid\nmemberUid: u02\n\n"
        ),
    );
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["updated"], json!(3), "{report}");
    assert_eq!(report["roles"], json!({"added": 1, "removed": 2, "unknown": ["support"]}), "{report}");
    assert_eq!(roles(&host, "u00"), ["user"]);
    assert_eq!(roles(&host, "u02"), ["user", "moderator"]);
    assert_eq!(roles(&host, "u03"), ["user", "admin"]);

    // Login applies the same roles, without a sync.
    modify(&slapd, &format!("dn: cn=rocket-admin,{GROUPS}\nchangetype: modify\nadd: memberUid\nmemberUid: u01\n\n"));
    let res = directory_login(&host, "u01").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(roles(&host, "u01"), ["user", "livechat-agent", "admin"]);
    assert_consistent(&host);
}

#[tokio::test]
async fn once_reads_one_search_and_nested_groups_end_at_a_cycle() {
    let mut ldif = directory(&uids(3));
    ldif += &groups_ou();
    // staff ⊃ ops ⊃ staff (a cycle); u02 is in neither.
    ldif += &names_group("staff", GROUPS, &[person_dn("u00"), format!("cn=ops,{GROUPS}")]);
    ldif += &names_group("ops", GROUPS, &[person_dn("u01"), format!("cn=staff,{GROUPS}")]);
    let slapd = start_slapd(ldif, None);
    let mut host = sync_host(
        slapd.port(),
        &[
            ("ldap_sync_user_data_roles", "true"),
            ("ldap_sync_user_data_roles_groupmembershipvalidationstrategy", "once"),
            ("ldap_sync_user_data_roles_basedn", GROUPS),
            ("ldap_sync_user_data_roles_filter", "(&(objectClass=groupOfNames)(member=#{userdn}))"),
            ("ldap_sync_user_data_rolesmap", r#"{"staff":"moderator","ops":"bot"}"#),
        ],
    );
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["roles"], json!({"added": 2, "removed": 0}), "{report}");
    assert_eq!(roles(&host, "u00"), ["user", "moderator"]);
    assert_eq!(roles(&host, "u01"), ["user", "bot"]);
    assert_eq!(roles(&host, "u02"), ["user"]);

    host.set_variable("ldap_nested_groups", "true").expect("variable");
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["roles"], json!({"added": 2, "removed": 0}), "{report}");
    assert_eq!(roles(&host, "u00"), ["user", "moderator", "bot"]);
    assert_eq!(roles(&host, "u01"), ["user", "bot", "moderator"]);
    assert_eq!(roles(&host, "u02"), ["user"]);
    assert_consistent(&host);
}

#[tokio::test]
async fn a_bad_roles_map_or_filter_is_a_400_that_names_the_variable() {
    let slapd = start_slapd(directory(&uids(1)), None);
    let on = [("ldap_sync_user_data_roles", "true"), ("ldap_sync_user_data_roles_basedn", GROUPS)];
    let host = sync_host(slapd.port(), &[on[0], on[1], ("ldap_sync_user_data_rolesmap", "{\"a\": 1}")]);
    assert_reply(
        &call(&host).await,
        400,
        json!({"success": false, "error": "invalid value \"{\\\"a\\\": 1}\" for variable ldap_sync_user_data_rolesmap: expected a JSON object of \
             LDAP group → role or list of roles, e.g. {\"rocket-admin\":\"admin\"}"}),
    );
    let host =
        sync_host(slapd.port(), &[on[0], on[1], ("ldap_sync_user_data_roles_filter", "(|(cn=#{groupName})(memberUid=#{username}))")]);
    assert_reply(
        &call(&host).await,
        400,
        json!({"success": false, "error": "invalid value \"(|(cn=#{groupName})(memberUid=#{username}))\" for variable \
             ldap_sync_user_data_roles_filter: expected a group-membership filter (the user may appear only in an equality assertion \
             (attribute=#{username}) joined by & (not under | or !))"}),
    );
}

#[tokio::test]
async fn the_group_filter_skips_outsiders_and_offboards_only_after_a_complete_group_read() {
    let mut ldif = directory(&uids(4));
    ldif += &format!(
        "dn: cn=ROCKET_CHAT,{DEMO_PEOPLE_BASE}\nobjectClass: groupOfUniqueNames\ncn: ROCKET_CHAT\nuniqueMember: {}\nuniqueMember: {}\n\n",
        person_dn("u00"),
        person_dn("u01")
    );
    let slapd = start_slapd(ldif, None);
    let mut host = sync_host(
        slapd.port(),
        &[
            ("ldap_group_filter_enable", "true"),
            ("ldap_group_filter_group_member_format", "uid=#{username},ou=people,dc=example,dc=org"),
            ("ldap_background_sync_disable_missing_users", "true"),
            ("ldap_sync_max_deactivations", "100%"),
        ],
    );
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report["created"].clone(), report["skipped"].clone()), (json!(2), json!(2)), "{report}");
    let reason = "not a member of the group filter's group (ldap_group_filter_*)";
    assert_eq!(
        report["problems"],
        json!([{"dn": person_dn("u02"), "reason": reason}, {"dn": person_dn("u03"), "reason": reason}]),
        "{report}"
    );
    assert!(get(&host, "username:u02").is_none(), "an outsider was created");
    assert_eq!(directory_login(&host, "u02").await.status, 401, "an outsider logged in");
    assert!(get(&host, "username:u02").is_none(), "an outsider was created at login");

    // u01 leaves the group: missing, so deactivated.
    modify(
        &slapd,
        &format!("dn: cn=ROCKET_CHAT,{DEMO_PEOPLE_BASE}\nchangetype: modify\ndelete: uniqueMember\nuniqueMember: {}\n\n", person_dn("u01")),
    );
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["deactivated"], json!(1), "{report}");
    assert_eq!(inactive(&host), ["u01"]);

    // The group cannot be read (renamed here): the run fails, nobody is deactivated.
    host.set_variable("ldap_group_filter_group_name", "NOT_THERE").expect("variable");
    let message = assert_sync_failed(&host, &call(&host).await);
    assert!(message.starts_with("groups: the group filter's group was not found"), "{message}");
    assert_eq!(inactive(&host), ["u01"]);
    // Nor when the service account may not read it.
    host.set_variable("ldap_group_filter_group_name", "ROCKET_CHAT").expect("variable");
    bind_as(&mut host, ("cn=nobody,dc=example,dc=org", "wrong"));
    let res = call(&host).await;
    assert_eq!(res.status, 400, "{}", res.text());
    assert_eq!(inactive(&host), ["u01"]);
    bind_as(&mut host, (DEMO_SVC_DN, DEMO_SVC_PASSWORD));
    assert_synced(&host, &call(&host).await);
    assert_eq!(inactive(&host), ["u01"]);
    assert_consistent(&host);
}
