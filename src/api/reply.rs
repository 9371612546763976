//! Success bodies.

use serde_json::json;

use super::Response;

/// A successful reply of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `ldap.syncNow` finished: upstream's body, exactly, with no extra
    /// fields (its response schema forbids them).
    SyncInProgress,
}

impl Reply {
    /// The HTTP response.
    pub fn into_response(self) -> Response {
        match self {
            Reply::SyncInProgress => {
                Response { status: 200, headers: Vec::new(), body: json!({"message": "Sync_in_progress", "success": true}), raw: None }
            }
        }
    }
}

/// Upstream's `API.v1.success(obj)`: the object with `"success": true`
/// appended as the last key.
pub fn success(body: serde_json::Map<String, serde_json::Value>) -> Response {
    let mut body = body;
    body.insert("success".to_owned(), serde_json::Value::Bool(true));
    Response { status: 200, headers: Vec::new(), body: serde_json::Value::Object(body), raw: None }
}
