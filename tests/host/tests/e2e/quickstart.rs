//! The README quickstart, step by step, through the real component: the
//! demo directory, the app with the README's variables, login, syncNow
//! with the password second factor, and users.list.

use ldap_sync_host::demo::{DEMO_USERS, demo_variables, start_demo};
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn readme_quickstart_works() {
    // Step 1: the demo directory (on a free port here, 3389 in the README).
    let slapd = start_demo(None).expect("demo directory");
    // Step 2: the README's variables.
    let readme = include_str!("../../../../README.md");
    let mut vars: Vec<(&str, String)> = demo_variables(slapd.port());
    for (name, value) in [("admin_username", "admin"), ("admin_pass", "admin-pw"), ("admin_email", "admin@example.org")] {
        vars.push((name, value.to_owned()));
    }
    for (name, value) in &vars {
        let shown = if *name == "ldap_port" { "3389".to_owned() } else { value.clone() };
        let line = format!("SPIN_VARIABLE_{}={shown} \\", name.to_uppercase());
        assert!(readme.contains(&line), "the README quickstart lacks {line:?}");
    }
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let host = host(&pairs);

    // Step 3: log in, sync with the password second factor, list.
    let body = json!({"user": "admin", "password": "admin-pw"}).to_string().into_bytes();
    let login = send(&host, "POST", "/api/v1/login", &[("content-type", b"application/json")], body).await;
    assert_eq!(login.status, 200, "{}", login.text());
    let data = login.json()["data"].clone();
    let creds = vec![
        ("x-user-id", data["userId"].as_str().expect("id").as_bytes().to_vec()),
        ("x-auth-token", data["authToken"].as_str().expect("token").as_bytes().to_vec()),
    ];
    let code = sha256_hex("admin-pw");
    let sync = sync_now(&host, &with(&creds, &[("x-2fa-method", "password"), ("x-2fa-code", &code)])).await;
    assert_eq!((sync.status, sync.text()), (200, r#"{"message":"Sync_in_progress","success":true}"#.to_owned()));

    let list = send(&host, "GET", "/api/v1/users.list?count=20", &with(&creds, &[]), Vec::new()).await;
    assert_eq!(list.status, 200, "{}", list.text());
    let body = list.json();
    let mut names: Vec<String> =
        body["users"].as_array().expect("users").iter().map(|u| u["username"].as_str().unwrap_or_default().to_owned()).collect();
    names.sort();
    let mut expected: Vec<String> = DEMO_USERS.iter().map(|u| u.uid.to_owned()).chain(["admin".to_owned()]).collect();
    expected.sort();
    assert_eq!(names, expected);
    assert_eq!((body["total"].clone(), body["success"].clone()), (json!(13), json!(true)));
    assert!(!list.text().contains("bcrypt"));

    // A directory user logs in with the directory password.
    let body = json!({"user": "alice", "password": "password"}).to_string().into_bytes();
    let alice = send(&host, "POST", "/api/v1/login", &[], body).await;
    assert_eq!(alice.json()["data"]["me"]["username"], Value::from("alice"));
}
