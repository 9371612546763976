//! `docs/openapi.yaml` against the real component: a broad set of real
//! responses (a real slapd, the real `.wasm`, the real store), each checked
//! with a JSON Schema 2020-12 validator against the document's schema for
//! its operation and exact status, with the document's `components` carried
//! in the validator's root so that `#/components/...` references resolve.
//! Every response is collected first and checked in one place; the failure
//! lists every violation.
//!
//! The document's "Routing (every path)" rule, which no operation can state:
//! an unknown path under `/api/v1/` or `/avatar/` answers
//! `#/components/responses/NotFound` (404), and a served path with another
//! method `#/components/responses/MethodNotAllowed` (405). Anything else the
//! document does not list (path, method or status) is a violation.

use std::path::Path;

use ldap_sync_host::{Host, Response};
use serde_json::{Map, Value, json};

use crate::common::*;
use crate::offboarding::{ADMIN, USER_PASSWORD, directory, seed_admin, start_slapd, sync_host, uids};

/// JSON Schema's dialect of the document (`jsonSchemaDialect`).
const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// One real request and its answer.
struct Exchange {
    method: String,
    /// The request's path, with its query.
    uri: String,
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Exchange {
    fn name(&self) -> String {
        format!("{} {} -> {}", self.method, self.uri, self.status)
    }

    fn path(&self) -> &str {
        self.uri.split_once('?').map_or(self.uri.as_str(), |(path, _)| path)
    }
}

/// Drives the component and keeps every exchange, and every answer whose
/// status (or body) was not the one the scenario asked for.
struct Recorder<'a> {
    host: &'a Host,
    seen: Vec<Exchange>,
    unexpected: Vec<String>,
}

impl<'a> Recorder<'a> {
    fn new(host: &'a Host) -> Self {
        Self { host, seen: Vec::new(), unexpected: Vec::new() }
    }

    /// Sends, records, and checks that the answer has status `want` and that
    /// its body contains `needle`.
    async fn call(&mut self, method: &str, uri: &str, headers: &[(&str, &str)], body: Option<Value>, want: (u16, &str)) -> Response {
        let res = self.send(method, uri, headers, body).await;
        self.record(method, uri, &res, want);
        res
    }

    async fn send(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: Option<Value>) -> Response {
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        send(self.host, method, uri, &headers, body).await
    }

    fn record(&mut self, method: &str, uri: &str, res: &Response, (status, needle): (u16, &str)) {
        if res.status != status || !res.text().contains(needle) {
            self.unexpected.push(format!(
                "{method} {uri}: wanted {status} with {needle:?}, got {} {} ({:?})",
                res.status,
                res.text(),
                res.error
            ));
        }
        self.seen.push(Exchange {
            method: method.to_owned(),
            uri: uri.to_owned(),
            status: res.status,
            headers: res.headers.clone(),
            body: res.body.clone(),
        });
    }

    /// The exchanges, and the answers that were not the ones asked for.
    fn into_parts(self) -> (Vec<Exchange>, Vec<String>) {
        (self.seen, self.unexpected)
    }
}

/// The OpenAPI document.
struct Spec {
    doc: Value,
}

impl Spec {
    fn load() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.yaml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with("3.1")), Some(true), "an OpenAPI 3.1 document");
        assert_eq!(doc["jsonSchemaDialect"], json!(DIALECT));
        Self { doc }
    }

    /// `value`, or what its `$ref` (a local JSON pointer) points at, followed to the end.
    fn resolve<'s>(&'s self, mut value: &'s Value) -> Result<&'s Value, String> {
        for _ in 0..16 {
            let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
                return Ok(value);
            };
            let pointer = reference.strip_prefix('#').ok_or_else(|| format!("non-local $ref {reference}"))?;
            value = self.doc.pointer(pointer).ok_or_else(|| format!("$ref {reference} points at nothing"))?;
        }
        Err("a $ref loop".to_owned())
    }

    /// The path template that `path` matches (`{name}` matches one non-empty segment).
    fn path_item(&self, path: &str) -> Option<(&str, &Value)> {
        let wanted: Vec<&str> = path.split('/').collect();
        self.doc["paths"].as_object()?.iter().find_map(|(template, item)| {
            let parts: Vec<&str> = template.split('/').collect();
            let matches = parts.len() == wanted.len()
                && parts.iter().zip(&wanted).all(|(t, w)| if t.starts_with('{') && t.ends_with('}') { !w.is_empty() } else { t == w });
            matches.then_some((template.as_str(), item))
        })
    }

    /// The response object the document gives for this exchange.
    fn response_for(&self, ex: &Exchange) -> Result<&Value, String> {
        let status = ex.status.to_string();
        let routing = |name: &str| self.resolve(&self.doc["components"]["responses"][name]);
        let Some((template, item)) = self.path_item(ex.path()) else {
            let routed = ex.path().starts_with("/api/v1/") || ex.path().starts_with("/avatar/");
            return if routed && ex.status == 404 {
                routing("NotFound")
            } else {
                Err(format!("no path of the document matches {}", ex.path()))
            };
        };
        let Some(operation) = item.get(ex.method.to_ascii_lowercase()) else {
            return if ex.status == 405 { routing("MethodNotAllowed") } else { Err(format!("{template} has no operation {}", ex.method)) };
        };
        let responses = &operation["responses"];
        let response = responses.get(&status).or_else(|| responses.get("default"));
        self.resolve(response.ok_or_else(|| format!("{} {template} has no response {status} (nor default)", ex.method))?)
    }

    /// A validator for `schema`, whose root also carries the document's
    /// `components`, so that `#/components/...` resolves as in the document.
    fn validator(&self, schema: &Value) -> Result<jsonschema::Validator, String> {
        let mut root = match schema {
            Value::Object(map) => map.clone(),
            other => Map::from_iter([("allOf".to_owned(), json!([other]))]),
        };
        root.insert("$schema".to_owned(), json!(DIALECT));
        root.insert("components".to_owned(), self.doc["components"].clone());
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&Value::Object(root))
            .map_err(|e| format!("the schema does not compile: {e}"))
    }

    /// Every way `value` breaks `schema`.
    fn violations(&self, schema: &Value, value: &Value) -> Vec<String> {
        match self.validator(schema) {
            Ok(validator) => validator.iter_errors(value).map(|e| format!("at {:?}: {e}", e.instance_path().to_string())).collect(),
            Err(e) => vec![e],
        }
    }

    /// Every way the exchange breaks the document.
    fn check(&self, ex: &Exchange) -> Vec<String> {
        let response = match self.response_for(ex) {
            Ok(response) => response,
            Err(e) => return vec![e],
        };
        let mut out = self.check_headers(ex, response);
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            if !ex.body.is_empty() {
                out.push(format!("the document gives no content, the body is {:?}", String::from_utf8_lossy(&ex.body)));
            }
            return out;
        };
        let content_type = ex.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let Some(media_object) = content.get(media) else {
            let listed: Vec<&String> = content.keys().collect();
            out.push(format!("content-type {content_type:?} is not one of the document's {listed:?}"));
            return out;
        };
        if media != "application/json" {
            // An image: its status and type are all the document says.
            return out;
        }
        let body: Value = match serde_json::from_slice(&ex.body) {
            Ok(body) => body,
            Err(e) => {
                out.push(format!("the body is not JSON ({e}): {:?}", String::from_utf8_lossy(&ex.body)));
                return out;
            }
        };
        let Some(schema) = media_object.get("schema") else {
            out.push("the document gives application/json without a schema".to_owned());
            return out;
        };
        out.extend(self.violations(schema, &body));
        out.extend(self.check_embedded_json(schema, &body));
        out
    }

    /// The response headers the document marks `required: true` exist, and
    /// every header it describes that was sent fits its schema (as text, or
    /// as a number when it reads as one).
    fn check_headers(&self, ex: &Exchange, response: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for (name, header) in response.get("headers").and_then(Value::as_object).into_iter().flatten() {
            let header = match self.resolve(header) {
                Ok(header) => header,
                Err(e) => {
                    out.push(format!("header {name}: {e}"));
                    continue;
                }
            };
            let Some(value) = ex.headers.get(name.as_str()) else {
                if header["required"] == json!(true) {
                    out.push(format!("the required header {name} is missing"));
                }
                continue;
            };
            let Some(schema) = header.get("schema") else { continue };
            let text = value.to_str().unwrap_or_default();
            let as_text = self.violations(schema, &json!(text));
            let as_number = text.parse::<i64>().ok().map(|n| self.violations(schema, &json!(n)));
            if !as_text.is_empty() && as_number.as_ref().is_none_or(|v| !v.is_empty()) {
                out.push(format!("header {name}: {text:?}: {}", as_text.join("; ")));
            }
        }
        out
    }

    /// String properties that hold JSON text (`contentMediaType:
    /// application/json` with a `contentSchema`, as `method.call`'s
    /// `message`): the text parses and fits the `contentSchema`. (JSON
    /// Schema 2020-12 makes these annotations only.)
    fn check_embedded_json(&self, schema: &Value, body: &Value) -> Vec<String> {
        let Ok(schema) = self.resolve(schema) else { return Vec::new() };
        let mut out = Vec::new();
        for (name, property) in schema.get("properties").and_then(Value::as_object).into_iter().flatten() {
            let (Some(inner_schema), Some("application/json")) =
                (property.get("contentSchema"), property.get("contentMediaType").and_then(Value::as_str))
            else {
                continue;
            };
            let Some(text) = body.get(name).and_then(Value::as_str) else { continue };
            match serde_json::from_str::<Value>(text) {
                Ok(inner) => out.extend(self.violations(inner_schema, &inner).into_iter().map(|v| format!("{name} (JSON text) {v}"))),
                Err(e) => out.push(format!("{name} is not JSON text ({e}): {text:?}")),
            }
        }
        out
    }
}

/// Response headers of a made-up exchange.
type Headers = &'static [(&'static str, &'static str)];

/// `X-User-Id` and `X-Auth-Token`.
fn auth<'a>(id: &'a str, token: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![("x-user-id", id), ("x-auth-token", token)]
}

/// The login's `(userId, authToken)`.
fn session_of(res: &Response) -> (String, String) {
    let body = res.json();
    let field = |name: &str| body["data"][name].as_str().unwrap_or_else(|| panic!("login gave no {name}: {body}")).to_owned();
    (field("userId"), field("authToken"))
}

#[tokio::test]
async fn real_responses_match_the_openapi_document() {
    let spec = Spec::load();
    let mut slapd = start_slapd(directory(&uids(3)), None);
    let host = sync_host(slapd.port(), &[]);
    // The admin gets a verified address, so that `2fa:enable` can answer a result.
    let mut doc = get(&host, &format!("user:{}", ADMIN.id)).expect("the admin");
    doc["emails"] = json!([{"address": "admin@example.org", "verified": true}]);
    put(&host, &format!("user:{}", ADMIN.id), &doc);
    let mut r = Recorder::new(&host);

    let code = sha256_hex(ADMIN.password);
    let admin = auth(ADMIN.id, ADMIN.login_token);
    let admin_2fa = [admin.as_slice(), &[("x-2fa-code", code.as_str())]].concat();
    let (sync_now, status, preview) = ("/api/v1/ldap.syncNow", "/api/v1/ldap.syncStatus", "/api/v1/ldap.syncPreview");

    // The sync and its extensions.
    r.call("GET", status, &admin_2fa, None, (200, r#""reports":[]"#)).await;
    r.call("POST", sync_now, &admin_2fa, None, (200, "Sync_in_progress")).await;
    r.call("POST", sync_now, &admin_2fa, None, (200, "Sync_in_progress")).await;
    let res = r.call("GET", &format!("{status}?count=5"), &admin_2fa, None, (200, r#""outcome":"success""#)).await;
    assert_eq!(res.json()["reports"].as_array().map(Vec::len), Some(2), "{}", res.text());
    r.call("GET", &format!("{status}?count=0"), &admin_2fa, None, (400, "invalid-params")).await;
    r.call("GET", status, &admin, None, (400, "totp-required")).await;
    r.call("GET", status, &[], None, (401, "logged in")).await;
    r.call("POST", preview, &admin_2fa, None, (200, r#""preview""#)).await;
    r.call("POST", preview, &admin, None, (400, "totp-required")).await;
    r.call("POST", sync_now, &admin, None, (400, "totp-required")).await;
    r.call("POST", sync_now, &[admin.as_slice(), &[("x-2fa-code", "000000")]].concat(), None, (400, "totp-invalid")).await;
    r.call("POST", sync_now, &[], None, (401, "logged in")).await;
    r.call("POST", sync_now, &[("x-user-id", ADMIN.id), ("x-auth-token", "wrong")], None, (401, "logged in")).await;

    // Sessions: a local and a directory login, me, logout.
    let login = "/api/v1/login";
    let res = r.call("POST", login, &[], Some(json!({"user": ADMIN.id, "password": ADMIN.password})), (200, "authToken")).await;
    let (admin_id, admin_token) = session_of(&res);
    let res = r.call("POST", login, &[], Some(json!({"user": "u01", "password": USER_PASSWORD})), (200, "authToken")).await;
    let (user_id, user_token) = session_of(&res);
    let ldap_form = json!({"ldap": true, "username": "u02", "ldapPass": USER_PASSWORD, "ldapOptions": {}});
    r.call("POST", login, &[], Some(ldap_form), (200, "authToken")).await;
    r.call("POST", login, &[], Some(json!({"user": "u01", "password": "wrong"})), (401, "Unauthorized")).await;
    r.call("POST", login, &[], Some(json!({"user": "nobody", "password": "wrong"})), (401, "Unauthorized")).await;
    r.call("POST", login, &[], Some(json!({"user": ADMIN.id})), (400, "invalid-params")).await;
    let admin_session = auth(&admin_id, &admin_token);
    let user = auth(&user_id, &user_token);
    r.call("GET", "/api/v1/me", &admin, None, (200, r#""username":"admin""#)).await;
    r.call("GET", "/api/v1/me", &user, None, (200, r#""username":"u01""#)).await;
    r.call("GET", "/api/v1/me", &[], None, (401, "logged in")).await;

    // TOTP enrolment's envelope: a result, a method's error, a bad body.
    let message = |method: &str| json!({"message": json!({"msg": "method", "id": "1", "method": method, "params": []}).to_string()});
    let call = "/api/v1/method.call/2fa:checkCodesRemaining";
    r.call("POST", call, &admin_session, Some(message("2fa:checkCodesRemaining")), (200, "invalid-totp")).await;
    r.call("POST", "/api/v1/method.call/nope", &admin_session, Some(message("nope:method")), (200, r#"\"error\":404"#)).await;
    let enable = "/api/v1/method.call/2fa:enable";
    r.call("POST", enable, &admin_session, Some(message("2fa:enable")), (200, "totp-required")).await;
    r.call("POST", enable, &admin_session, Some(json!({"message": "{}", "x": 1})), (400, "invalid-params")).await;
    r.call("POST", enable, &[], Some(message("2fa:enable")), (401, "logged in")).await;

    // Users.
    r.call("GET", "/api/v1/users.info?username=u00", &admin, None, (200, r#""canViewAllInfo":true"#)).await;
    r.call("GET", "/api/v1/users.info?username=u01", &user, None, (200, r#""services""#)).await;
    r.call("GET", "/api/v1/users.info?username=u00", &user, None, (200, r#""canViewAllInfo":false"#)).await;
    r.call("GET", "/api/v1/users.info?username=nobody", &admin, None, (400, "User not found.")).await;
    r.call("GET", "/api/v1/users.info", &admin, None, (400, "invalid-params")).await;
    r.call("GET", "/api/v1/users.info?username=u00", &[], None, (401, "logged in")).await;
    r.call("GET", "/api/v1/users.list", &admin, None, (200, r#""users""#)).await;
    r.call("GET", "/api/v1/users.list?count=2&offset=1", &user, None, (200, r#""users""#)).await;
    r.call("GET", "/api/v1/users.list?sort=%7B%22name%22%3A2%7D", &admin, None, (400, "error-invalid-sort")).await;
    // A user (not an admin) is counted: within the minute, the 11th call is refused.
    let uri = "/api/v1/users.info?username=u00";
    let mut refused = false;
    for _ in 0..20 {
        let res = r.send("GET", uri, &user, None).await;
        if res.status != 200 {
            r.record("GET", uri, &res, (429, "error-too-many-requests"));
            refused = true;
            break;
        }
    }
    if !refused {
        r.unexpected.push(format!("GET {uri}: 20 calls, no 429"));
    }

    // The LDAP test routes.
    r.call("POST", "/api/v1/ldap.testConnection", &admin, Some(json!({})), (200, "LDAP_Connection_successful")).await;
    r.call("POST", "/api/v1/ldap.testConnection", &user, Some(json!({})), (403, "error-unauthorized")).await;
    r.call("POST", "/api/v1/ldap.testConnection", &[], Some(json!({})), (401, "logged in")).await;
    r.call("POST", "/api/v1/ldap.testSearch", &admin, Some(json!({"username": "u01"})), (200, "LDAP_User_Found")).await;
    r.call("POST", "/api/v1/ldap.testSearch", &admin, Some(json!({"username": "zed"})), (400, "User not found")).await;
    r.call("POST", "/api/v1/ldap.testSearch", &admin, Some(json!({})), (400, "invalid-params")).await;

    // Avatars (letters: no user here has an image), and a 304.
    r.call("GET", "/avatar/u00", &[], None, (200, "<svg")).await;
    r.call("GET", "/avatar/@x?size=64", &[], None, (200, "<svg")).await;
    r.call("GET", "/avatar/nobody%20here", &[], None, (200, "<svg")).await;
    r.call("GET", "/avatar/u00", &[("if-modified-since", "Thu, 01 Jan 2015 00:00:00 GMT")], None, (304, "")).await;

    // Routing.
    r.call("GET", "/api/v1/nope", &admin, None, (404, "API endpoint not found")).await;
    r.call("GET", "/api/v1/users.nope", &[], None, (404, "API endpoint not found")).await;
    r.call("GET", sync_now, &admin_2fa, None, (405, "Method not allowed")).await;
    r.call("POST", "/api/v1/me", &admin, None, (405, "Method not allowed")).await;
    r.call("DELETE", "/avatar/u00", &[], None, (405, "Method not allowed")).await;

    // Logout, then the token is gone.
    r.call("POST", "/api/v1/logout", &user, Some(json!({})), (200, "logged out")).await;
    r.call("POST", "/api/v1/logout", &user, Some(json!({})), (401, "logged in")).await;

    // The directory gone: the run, the preview and the test routes fail.
    slapd.stop();
    r.call("POST", sync_now, &admin_2fa, None, (400, "LDAP_Sync_failed")).await;
    r.call("POST", preview, &admin_2fa, None, (400, "LDAP_Sync_failed")).await;
    r.call("POST", "/api/v1/ldap.testConnection", &admin, Some(json!({})), (400, "LDAP_Connection_failed_reason")).await;
    r.call("POST", "/api/v1/ldap.testSearch", &admin, Some(json!({"username": "u01"})), (400, "cannot connect")).await;
    r.call("GET", &format!("{status}?count=1"), &admin_2fa, None, (200, r#""outcome":"failed""#)).await;

    // Another run holds the lease: ldap.syncNow starts none, the preview waits, the status shows it.
    let lease = json!({"runId": "r1", "expiresAt": {"$date": (T0 + 60) * 1000}, "startedAt": {"$date": T0 * 1000 - 5000},
                       "phase": "users", "pages": 7});
    put(&host, "sync-lease", &lease);
    r.call("POST", sync_now, &admin_2fa, None, (200, "Sync_in_progress")).await;
    r.call("POST", preview, &admin_2fa, None, (400, "A sync is in progress")).await;
    r.call("GET", status, &admin_2fa, None, (200, r#""inProgress":{"runId":"r1""#)).await;

    // TOTP enrolment's first step, with the password's digest as the second factor: a result.
    let with_code = [admin_session.as_slice(), &[("x-2fa-code", code.as_str())]].concat();
    r.call("POST", enable, &with_code, Some(message("2fa:enable")), (200, "otpauth://")).await;
    let (mut seen, mut unexpected) = r.into_parts();

    // LDAP off, and a variable that cannot be used.
    let off = crate::common::host(&[]);
    seed_admin(&off);
    let bad = sync_host(slapd.port(), &[("ldap_timeout", "soon")]);
    for (host, want) in [(&off, "LDAP_disabled"), (&bad, "ldap_timeout")] {
        let mut r = Recorder::new(host);
        r.call("POST", sync_now, &admin_2fa, None, (400, want)).await;
        r.call("POST", preview, &admin_2fa, None, (400, want)).await;
        r.call("POST", "/api/v1/ldap.testConnection", &admin, Some(json!({})), (400, want)).await;
        let (s, u) = r.into_parts();
        seen.extend(s);
        unexpected.extend(u);
    }

    // ldap.syncNow's 200 is upstream's exact schema: no other property.
    let schema = &spec.doc["paths"][sync_now]["post"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(schema["additionalProperties"], json!(false), "ldap.syncNow's 200 schema allows other properties: {schema}");
    assert!(
        !spec.violations(schema, &json!({"message": "Sync_in_progress", "success": true, "extra": 1})).is_empty(),
        "the validator lets an extra property through"
    );
    let synced = seen.iter().filter(|ex| ex.method == "POST" && ex.path() == sync_now && ex.status == 200).count();
    assert_eq!(synced, 3, "ldap.syncNow's 200s checked");

    // The checks bite: a wrong body or embedded JSON text, an unlisted status, path, method or
    // content type, a missing required header, a header off its schema, a body where none is due.
    let json_type: Headers = &[("content-type", "application/json")];
    let avatar: Headers = &[("cache-control", "public, max-age=0"), ("content-disposition", "inline")];
    let wrongs: [(&str, &str, u16, Headers, &str, &str); 11] = [
        ("GET", "/api/v1/me", 401, json_type, r#"{"success":false,"error":"nope"}"#, r#""status" is a required property"#),
        ("GET", "/api/v1/me", 200, json_type, r#"{"_id":"admin","success":true}"#, r#""services" is a required property"#),
        ("GET", "/api/v1/users.info", 200, json_type, r#"{"user":{"_id":"x","canViewAllInfo":"yes"},"success":true}"#, "boolean"),
        ("POST", "/api/v1/method.call/x", 200, json_type, r#"{"message":"{\"msg\":\"result\"}","success":true}"#, "(JSON text)"),
        ("GET", "/api/v1/users.list", 418, json_type, "{}", "has no response 418"),
        ("GET", "/api/v1/users.list", 200, &[("content-type", "text/plain")], "{}", "is not one of the document's"),
        ("GET", "/api/v2/nope", 404, json_type, r#"{"success":false,"error":"API endpoint not found"}"#, "no path of the document"),
        ("PUT", "/api/v1/me", 200, json_type, "{}", "has no operation PUT"),
        ("GET", "/api/v1/ldap.syncNow", 405, json_type, r#"{"success":false,"error":"Method not allowed"}"#, "header Allow is missing"),
        ("GET", "/avatar/u00", 304, avatar, "x", "the document gives no content"),
        ("GET", "/avatar/u00", 200, &[("content-type", "image/svg+xml"), ("cache-control", "private")], "<svg/>", "Cache-Control"),
    ];
    for (method, uri, status, headers, body, why) in wrongs {
        let headers = headers.iter().map(|(n, v)| (http::HeaderName::from_static(n), http::HeaderValue::from_static(v))).collect();
        let wrong = Exchange { method: method.to_owned(), uri: uri.to_owned(), status, headers, body: body.as_bytes().to_vec() };
        let violations = spec.check(&wrong).join("; ");
        assert!(violations.contains(why), "{}: {why:?} not among the violations: {violations:?}", wrong.name());
    }

    // Every exchange against the document, in one place.
    let mut failures: Vec<String> = unexpected.into_iter().map(|u| format!("unexpected answer: {u}")).collect();
    for ex in &seen {
        let violations = spec.check(ex);
        if !violations.is_empty() {
            failures.push(format!("{}: {}\n    body: {}", ex.name(), violations.join("\n    "), String::from_utf8_lossy(&ex.body)));
        }
    }
    assert!(failures.is_empty(), "{} of {} responses break docs/openapi.yaml:\n{}", failures.len(), seen.len(), failures.join("\n"));
}

/// The document's own response examples fit the schemas beside them (so a
/// reader is not shown a body the component could not send).
#[test]
fn the_documents_examples_fit_their_schemas() {
    let spec = Spec::load();
    let mut responses: Vec<(String, &Value)> = Vec::new();
    for (path, item) in spec.doc["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                responses.push((format!("{method} {path} {status}"), response));
            }
        }
    }
    for (name, response) in spec.doc["components"]["responses"].as_object().into_iter().flatten() {
        responses.push((format!("#/components/responses/{name}"), response));
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, response) in responses {
        let response = spec.resolve(response).unwrap_or_else(|e| panic!("{name}: {e}"));
        let media = &response["content"]["application/json"];
        for (example, value) in media["examples"].as_object().into_iter().flatten() {
            checked += 1;
            let violations = spec.violations(&media["schema"], &value["value"]);
            let embedded = spec.check_embedded_json(&media["schema"], &value["value"]);
            if !violations.is_empty() || !embedded.is_empty() {
                failures.push(format!("{name}, example {example}: {}", [violations, embedded].concat().join("; ")));
            }
        }
    }
    assert!(checked > 50, "only {checked} examples found");
    assert!(failures.is_empty(), "{} examples break their schemas:\n{}", failures.len(), failures.join("\n"));
}
