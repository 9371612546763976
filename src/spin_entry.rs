//! The Spin entry point and adapters: the only code that names `spin_sdk`
//! besides `store::spin`.

// `#[http_component]` expands to the SDK's `unsafe` export glue; nothing
// hand-written here is unsafe.
#![allow(unsafe_code)]

use futures::StreamExt as _;
use spin_sdk::http::{IncomingRequest, IntoResponse, Response};
use spin_sdk::http_component;

use crate::api;
use crate::settings::VariableSource;
use crate::store::schema::Date;
use crate::store::spin::SpinStore;

/// Spin's variables, as a [`VariableSource`].
struct SpinVariables;

impl VariableSource for SpinVariables {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        match spin_sdk::variables::get(name) {
            Ok(value) => Ok(Some(value)),
            Err(spin_sdk::variables::Error::Undefined(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[http_component]
async fn handle(req: IncomingRequest) -> impl IntoResponse {
    let method = req.method().to_string();
    let path = req.path_with_query().unwrap_or_else(|| "/".to_owned());
    let headers = req.headers().entries();
    let request = api::Request::new(&method, &path, headers);
    // The body is read with its cap applied while reading: a client cannot
    // make an instance hold more than `MAX_BODY` bytes of it.
    let mut body = Vec::new();
    let mut stream = req.into_body_stream();
    let mut complete = true;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) if body.len() + bytes.len() <= api::MAX_BODY => body.extend(bytes),
            Ok(_) => {
                complete = false;
                break;
            }
            // A body the client broke off is as good as a body that is too large: unusable.
            Err(_) => {
                complete = false;
                break;
            }
        }
    }
    let request = if complete { request.with_body(body) } else { request.with_oversized_body() };
    let opened = crate::settings::kv_batch_reads(&SpinVariables)
        .map_err(api::ApiError::Settings)
        .and_then(|batch_reads| SpinStore::open("default", batch_reads).map_err(api::ApiError::Store));
    let response = match opened {
        Ok(store) => {
            let env = api::Env { store: &store, variables: &SpinVariables, clock: &now, random: &random };
            api::route(&request, &env)
        }
        Err(e) => e.into_response(),
    };
    let mut builder = Response::builder();
    builder.status(response.status);
    // A 304 has no body, so no type (the avatar route's revalidation).
    if response.status != 304 && !response.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        builder.header("content-type", "application/json");
    }
    for (name, value) in &response.headers {
        builder.header(*name, value.as_str());
    }
    builder.body(response.body_bytes()).build()
}

/// Secure random bytes from the host (`wasi:random`). If the host cannot
/// provide them the instance traps, which Spin answers with a 500: never
/// fall back to predictable ids.
fn random(buf: &mut [u8]) {
    #[expect(clippy::expect_used, reason = "no safe fallback exists for missing randomness")]
    getrandom::fill(buf).expect("wasi:random is available in every Spin host");
}

fn now() -> Date {
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
    Date { millis: i64::try_from(millis).unwrap_or(i64::MAX) }
}
