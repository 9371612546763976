//! `POST /api/v1/ldap.syncPreview` (issue 12, our extension): the plan of a
//! sync, computed by the sync's own code over an overlay; it writes nothing
//! but the plan, and the sync that follows does exactly what it said.

use std::collections::BTreeMap;

use ldap_sync_host::Host;
use ldap_sync_host::demo::DEMO_PEOPLE_BASE;
use serde_json::{Value, json};

use crate::common::*;
use crate::offboarding::{ADMIN, assert_synced, call, directory, person, start_slapd, sync_host, uids};

async fn preview(host: &Host) -> Value {
    let req = http::Request::post("/api/v1/ldap.syncPreview")
        .header("x-user-id", ADMIN.id)
        .header("x-auth-token", ADMIN.login_token)
        .header("x-2fa-code", sha256_hex(ADMIN.password))
        .body(Vec::new())
        .expect("request");
    let res = host.send(req).await.expect("host answers");
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(body["success"], json!(true));
    body["preview"].clone()
}

/// Every key and value but the rate limiter's counters (the preview call is counted).
fn store(host: &Host) -> BTreeMap<String, Vec<u8>> {
    host.kv_keys()
        .expect("keys")
        .into_iter()
        .filter(|k| !k.starts_with("rate-limit:"))
        .map(|k| {
            let v = host.kv_get(&k).expect("get").expect("value");
            (k, v)
        })
        .collect()
}

#[tokio::test]
async fn a_sync_after_a_preview_does_what_the_preview_said() {
    let slapd = start_slapd(directory(&uids(6)), None);
    let host = sync_host(slapd.port(), &[("ldap_background_sync_disable_missing_users", "true"), ("ldap_sync_max_deactivations", "50%")]);
    assert_synced(&host, &call(&host).await);

    // One leaves, one is renamed, one arrives.
    slapd.modify(&format!("dn: uid=u00,{DEMO_PEOPLE_BASE}\nchangetype: delete\n\n")).expect("delete");
    slapd.modify(&format!("dn: uid=u01,{DEMO_PEOPLE_BASE}\nchangetype: modify\nreplace: cn\ncn: Renamed One\n\n")).expect("modify");
    let add = person("u06", &["userAccountControl: 512"]);
    slapd.modify(&add.replacen('\n', "\nchangetype: add\n", 1)).expect("add");

    let before = store(&host);
    let plan = preview(&host).await;
    let mut after = store(&host);
    let stored: Value = serde_json::from_slice(&after.remove("sync-preview").expect("the plan is stored")).expect("JSON");
    assert_eq!(stored, plan);
    assert_eq!(after, before, "a preview writes nothing but its plan");

    assert_eq!(
        (plan["create"].clone(), plan["update"].clone(), plan["deactivate"].clone(), plan["unchanged"].clone()),
        (json!(1), json!(1), json!(1), json!(4)),
        "{plan}"
    );
    assert_eq!((plan["complete"].clone(), plan["outcome"].clone(), plan["breaker"].clone()), (json!(true), json!("success"), Value::Null));
    assert_eq!(
        plan["sample"],
        json!({"create": ["u06"], "update": [{"username": "u01", "fields": ["name"]}], "deactivate": ["u00"], "reactivate": []})
    );

    // The sync does exactly that.
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(
        (report["created"].clone(), report["updated"].clone(), report["deactivated"].clone(), report["unchanged"].clone()),
        (plan["create"].clone(), plan["update"].clone(), plan["deactivate"].clone(), plan["unchanged"].clone())
    );
    assert_eq!(report["deactivations"], plan["sample"]["deactivate"]);
    assert_eq!(crate::offboarding::user(&host, "u01")["name"], json!("Renamed One"));
    assert_eq!(crate::offboarding::active(&host, "u00"), json!(false));
    crate::offboarding::assert_consistent(&host);

    // Nothing left to do: an empty plan.
    let plan = preview(&host).await;
    assert_eq!((plan["create"].clone(), plan["update"].clone(), plan["deactivate"].clone()), (json!(0), json!(0), json!(0)), "{plan}");
}

#[tokio::test]
async fn a_preview_shows_what_the_breaker_would_hold_back() {
    let slapd = start_slapd(directory(&uids(10)), None);
    let host = sync_host(slapd.port(), &[("ldap_background_sync_disable_missing_users", "true")]);
    assert_synced(&host, &call(&host).await);
    let gone: String = (0..5).map(|i| format!("dn: uid=u{i:02},{DEMO_PEOPLE_BASE}\nchangetype: delete\n\n")).collect();
    slapd.modify(&gone).expect("delete");
    let plan = preview(&host).await;
    assert_eq!(plan["deactivate"], json!(0), "{plan}");
    assert_eq!(plan["breaker"]["wouldDeactivate"], json!(5), "{plan}");
    assert_eq!(plan["breaker"]["limit"], json!(1), "{plan}");
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["offboarding"]["breaker"], plan["breaker"]);
}
