//! `GET /api/v1/ldap.syncStatus` (issue 12, our extension): the gate of
//! `ldap.syncNow`, the run in progress from its lease record, and the
//! bounded history of reports.

use ldap_sync_host::demo::DEMO_PEOPLE_BASE;
use serde_json::{Value, json};

use crate::common::*;
use crate::offboarding::{ADMIN, assert_synced, call, directory, start_slapd, sync_host, uids};

fn status_request(query: &str, code: Option<&str>) -> http::Request<Vec<u8>> {
    let mut req = http::Request::get(format!("/api/v1/ldap.syncStatus{query}"))
        .header("x-user-id", ADMIN.id)
        .header("x-auth-token", ADMIN.login_token);
    if let Some(code) = code {
        req = req.header("x-2fa-code", code);
    }
    req.body(Vec::new()).expect("request")
}

async fn status(host: &ldap_sync_host::Host, query: &str) -> Value {
    let res = host.send(status_request(query, Some(&sha256_hex(ADMIN.password)))).await.expect("host answers");
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

#[tokio::test]
async fn status_shows_the_newest_reports_and_the_run_in_progress() {
    let slapd = start_slapd(directory(&uids(3)), None);
    let host = sync_host(slapd.port(), &[]);

    let empty = status(&host, "").await;
    assert_eq!(empty, json!({"inProgress": null, "reports": [], "total": 0, "success": true}));

    let first = assert_synced(&host, &call(&host).await);
    slapd.modify(&format!("dn: uid=u00,{DEMO_PEOPLE_BASE}\nchangetype: delete\n\n")).expect("ldapmodify");
    let second = assert_synced(&host, &call(&host).await);
    let body = status(&host, "?count=1").await;
    assert_eq!(body["total"], json!(2));
    let reports = body["reports"].as_array().expect("reports");
    assert_eq!(reports.len(), 1, "{body}");
    // The newest first: the stored report, with the problems' total.
    let mut expected = second.clone();
    expected["problemsTotal"] = json!(0);
    assert_eq!(reports[0], expected);
    assert!(reports[0]["runId"].as_str().is_some_and(|id| !id.is_empty()), "{body}");
    assert_ne!(reports[0]["runId"], first["runId"]);
    let both = status(&host, "?count=20").await;
    assert_eq!(
        both["reports"].as_array().map(|r| r.iter().map(|r| r["runId"].clone()).collect::<Vec<_>>()),
        Some(vec![second["runId"].clone(), first["runId"].clone()])
    );

    // A live lease is the run in progress (its holder writes its progress there).
    let lease = json!({"runId": "r1", "expiresAt": {"$date": (T0 + 60) * 1000}, "startedAt": {"$date": T0 * 1000 - 5000},
                       "phase": "users", "pages": 7});
    put(&host, "sync-lease", &lease);
    let body = status(&host, "?count=1").await;
    assert_eq!(
        body["inProgress"],
        json!({"runId": "r1", "startedAt": {"$date": T0 * 1000 - 5000}, "phase": "users", "pages": 7, "expiresAt": {"$date": (T0 + 60) * 1000}})
    );
    // An expired one is not.
    put(&host, "sync-lease", &json!({"runId": "r1", "expiresAt": {"$date": T0 * 1000 - 1}}));
    assert_eq!(status(&host, "?count=1").await["inProgress"], Value::Null);
}

#[tokio::test]
async fn the_history_keeps_twenty_reports() {
    let slapd = start_slapd(directory(&uids(1)), None);
    let host = sync_host(slapd.port(), &[]);
    for _ in 0..23 {
        assert_synced(&host, &call(&host).await);
    }
    let kept: Vec<String> =
        host.kv_keys().expect("keys").into_iter().filter(|k| k.starts_with("sync-report:") && k != "sync-report:last").collect();
    assert_eq!(kept.len(), 20, "{kept:?}");
    assert!(!kept.contains(&"sync-report:3".to_owned()) && kept.contains(&"sync-report:4".to_owned()), "{kept:?}");
    let body = status(&host, "?count=20").await;
    assert_eq!((body["total"].clone(), body["reports"].as_array().map(Vec::len)), (json!(20), Some(20)));
}

#[tokio::test]
async fn status_has_the_gate_of_sync_now() {
    let slapd = start_slapd(directory(&uids(1)), None);
    let host = sync_host(slapd.port(), &[]);
    // No second factor: refused as ldap.syncNow refuses it.
    let res = host.send(status_request("", None)).await.expect("host answers");
    assert_eq!(res.status, 400, "{}", res.text());
    assert_eq!(res.json()["errorType"], json!("totp-required"));
    // No token: 401.
    let res = send(&host, "GET", "/api/v1/ldap.syncStatus", &[], Vec::new()).await;
    assert_eq!(res.status, 401, "{}", res.text());
    // A bad count.
    let res = host.send(status_request("?count=0", Some(&sha256_hex(ADMIN.password)))).await.expect("host answers");
    assert_reply(
        &res,
        400,
        json!({"success": false, "error": "count must be an integer from 1 to 20 [invalid-params]", "errorType": "invalid-params"}),
    );
    // Another method.
    let res = send(&host, "POST", "/api/v1/ldap.syncStatus", &[], Vec::new()).await;
    assert_eq!(res.status, 405, "{}", res.text());
}
