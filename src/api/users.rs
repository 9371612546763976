//! `GET /api/v1/users.info` and `GET /api/v1/users.list`, as 7.x answers
//! them (`apps/meteor/app/api/server/v1/users.ts`,
//! `apps/meteor/app/lib/server/functions/getFullUserData.ts`): read-only
//! views of the stored user documents.
//!
//! Which fields a caller sees is decided here, by upstream's projections.
//! No secret (bcrypt hash, login token, TOTP secret, backup code) ever
//! leaves this module: `services` is only shown to the user themself, and
//! only as flags. The `sort`/`query` language of `users.list` lives in
//! [`query`]. Neither route writes to the store.

mod query;

use serde_json::{Map, Value, json};

use crate::auth::{self, Admitted, Identity, RoutePolicy, permission};
use crate::settings::Settings;
use crate::store::ids::random_id;
use crate::store::schema::UserDoc;
use crate::store::users::{Listing, Users, holds_import_id};
use crate::store::{KvStore, StoreError, UserId};

use super::{ApiError, Env, Request, Response, credentials, identify, percent_decode, reply, views};
use query::{Filter, Sort};

/// `users.info`'s search keys, in upstream's precedence.
const SEARCH_KEYS: [&str; 3] = ["userId", "username", "importId"];
/// The optional keys of each schema branch. `includeUserRooms` and `fields`
/// are accepted and ignored (7.x ignores `fields` too).
const OPTIONAL_INFO_KEYS: [&str; 2] = ["includeUserRooms", "fields"];

/// `defaultFields` of `getFullUserData` (plus `_id`): what any caller sees.
const INFO_FIELDS: &[&str] = &[
    "_id",
    "name",
    "username",
    "nickname",
    "status",
    "utcOffset",
    "type",
    "active",
    "bio",
    "reason",
    "statusText",
    "avatarETag",
    "extension",
    "federated",
    "statusLivechat",
];
/// `fullFields`: added when the caller may view all info.
const INFO_FULL_FIELDS: &[&str] = &[
    "emails",
    "phone",
    "statusConnection",
    "createdAt",
    "lastLogin",
    "requirePasswordChange",
    "requirePasswordChangeReason",
    "roles",
    "importIds",
    "freeSwitchExtension",
];

/// `getNonEmptyFields` minus `limitedUserFieldsToExclude`: what `users.list`
/// shows of everyone (besides `_id`).
const LIST_FIELDS: &[&str] = &["name", "username", "status", "active", "avatarETag", "type"];
/// The same for callers with `view-full-other-user-info`.
const LIST_FULL_FIELDS: &[&str] = &["name", "username", "emails", "roles", "status", "active", "avatarETag", "lastLogin", "type"];

/// `API_Default_Count`'s default.
const DEFAULT_COUNT: usize = 50;
/// `API_Upper_Count_Limit`'s default: the most rows one page returns.
const MAX_COUNT: usize = 100;

/// `GET /api/v1/users.info?userId=…|username=…|importId=…`.
///
/// Deliberate deviation: for the user themself, upstream 7.x returns the
/// whole `services` object (with only `services.password` replaced by
/// `true`), which leaks their login-token hashes, TOTP secret and hashed
/// backup codes. We return `services` reduced to flags exactly as `me` does
/// (`{"totp":{"enabled":true},"password":{"exists":true}}`).
pub fn info(req: &Request, env: &Env<'_>) -> Response {
    limited(req, env, "/api/v1/users.infoget", info_reply)
}

/// `GET /api/v1/users.list?offset=&count=&sort=&query=`.
pub fn list(req: &Request, env: &Env<'_>) -> Response {
    limited(req, env, "/api/v1/users.listget", list_reply)
}

/// The gate, then `reply`; the limiter's headers go on whatever it answers.
fn limited(
    req: &Request,
    env: &Env<'_>,
    rate_route: &'static str,
    reply: fn(&Request, &Env<'_>, UserDoc) -> Result<Response, ApiError>,
) -> Response {
    match caller(req, env, rate_route) {
        Ok(admitted) => reply(req, env, admitted.user).unwrap_or_else(ApiError::into_response).with_rate_limit(admitted.rate_limit),
        Err(e) => e.into_response(),
    }
}

fn info_reply(req: &Request, env: &Env<'_>, caller: UserDoc) -> Result<Response, ApiError> {
    let search = Search::parse(&query_pairs(&req.query))?;
    let user = full_user_data(env.store, &caller, &search)?.ok_or(ApiError::Plain("User not found."))?;
    let mut body = Map::new();
    body.insert("user".to_owned(), Value::Object(user));
    Ok(reply::success(body))
}

fn list_reply(req: &Request, env: &Env<'_>, caller: UserDoc) -> Result<Response, ApiError> {
    if !auth::has_permission(env.store, &caller, permission::VIEW_D_ROOM)? {
        return Err(ApiError::Forbidden);
    }
    // Upstream's order: `sort` and `query` are refused before a bad page
    // (which only MongoDB notices, at the end).
    let sort = Sort::parse(req.query_param("sort").as_deref())?;
    let can_see_all = auth::has_permission(env.store, &caller, permission::VIEW_FULL_OTHER_USER_INFO)?;
    let fields = if can_see_all { LIST_FULL_FIELDS } else { LIST_FIELDS };
    let filter = Filter::parse(req.query_param("query").as_deref(), can_see_all, fields)?;
    let page = Page::parse(req)?;

    // The default listing (every user, by username) pages through the
    // listing index; anything else, or a stale index, scans.
    let users_repo = Users::new(env.store);
    let whole_listing = sort.is_default() && req.query_param("query").is_none_or(|q| q.is_empty());
    let view = if can_see_all { "full" } else { "limited" };
    let indexed = if whole_listing { Some(users_repo.listing_page(view, page.offset, page.count, (env.clock)())?) } else { None };
    let (rows, total) = match indexed {
        Some(Listing::Current { documents, total }) => (documents.iter().map(|doc| list_row(doc, fields)).collect(), total),
        stale => {
            let mut rows: Vec<Map<String, Value>> =
                users_repo.all_documents()?.iter().filter(|doc| filter.matches(doc)).map(|doc| list_row(doc, fields)).collect();
            sort.apply(&mut rows);
            if let Some(Listing::Stale(stale)) = stale {
                let ids: Vec<UserId> = rows.iter().filter_map(|row| row.get("_id").and_then(Value::as_str)).map(UserId::from).collect();
                users_repo.save_listing(stale, &ids, &random_id(12, env.random))?;
            }
            let total = rows.len();
            (rows.into_iter().skip(page.offset).take(page.count).collect::<Vec<_>>(), total)
        }
    };
    let users: Vec<Value> = rows.into_iter().map(|row| views::rest_dates(Value::Object(row))).collect();
    let count = users.len();
    let mut body = Map::new();
    body.insert("users".to_owned(), Value::Array(users));
    body.insert("count".to_owned(), json!(count));
    body.insert("offset".to_owned(), json!(page.offset));
    body.insert("total".to_owned(), json!(total));
    Ok(reply::success(body))
}

/// Upstream's `authRequired`: a valid login token and a username
/// (`userWithoutUsername` is off for both routes), then the REST rate
/// limiter (`rate_route`: path + method, as upstream keys it). Neither route
/// demands a second factor.
fn caller(req: &Request, env: &Env<'_>, rate_route: &'static str) -> Result<Admitted, ApiError> {
    let policy = RoutePolicy { rate_route: Some(rate_route), second_factor: None, permission: None };
    let creds = credentials(req);
    let caller = identify(env, &creds, &policy)?;
    let settings = Settings::load(env.variables)?;
    Ok(auth::admit(env.store, Identity::Token(Box::new(caller)), &creds, &policy, &settings.gate(), (env.clock)())?)
}

/// Every `name=value` pair of a query string, decoded, in order.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// The one search of `users.info`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Search {
    Id(String),
    Username(String),
    ImportId(String),
}

impl Search {
    /// Checks the parameters as upstream's ajv schema (`isUsersInfoParamsGetProps`)
    /// does, then picks the first non-empty search in upstream's precedence.
    fn parse(params: &[(String, String)]) -> Result<Search, ApiError> {
        check_info_schema(params)?;
        let value = |name: &str| params.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.clone());
        if let Some(id) = value("userId") {
            return Ok(Search::Id(id));
        }
        if let Some(username) = value("username") {
            return Ok(Search::Username(username));
        }
        if let Some(import_id) = value("importId") {
            return Ok(Search::ImportId(import_id));
        }
        Err(ApiError::Plain("Invalid search query."))
    }
}

/// The 7.x schema is `anyOf` three objects, each with one required search
/// key, the optional keys, no other key, all strings. ajv (without
/// `allErrors`) reports the first failure of each branch, then the `anyOf`;
/// upstream joins them with `"\n "`. A repeated key arrives as an array.
fn check_info_schema(params: &[(String, String)]) -> Result<(), ApiError> {
    // Linear in the number of parameters: a query string of thousands costs no more than reading it.
    let mut seen = std::collections::HashSet::with_capacity(params.len());
    let repeated = !params.iter().all(|(name, _)| seen.insert(name.as_str()));
    let mut messages = Vec::with_capacity(SEARCH_KEYS.len() + 1);
    for required in SEARCH_KEYS {
        let allowed = |name: &str| name == required || OPTIONAL_INFO_KEYS.contains(&name);
        let failure = if !params.iter().any(|(name, _)| name == required) {
            format!("must have required property '{required}'")
        } else if params.iter().any(|(name, _)| !allowed(name)) {
            "must NOT have additional properties".to_owned()
        } else if repeated {
            "must be string".to_owned()
        } else {
            return Ok(());
        };
        messages.push(failure);
    }
    messages.push("must match a schema in anyOf".to_owned());
    Err(ApiError::InvalidParams(messages.join("\n ")))
}

/// `getFullUserDataByIdOrUsernameOrImportId`: `None` when nobody matches,
/// or for an importId search by a caller who may not view all info.
fn full_user_data(store: &dyn KvStore, caller: &UserDoc, search: &Search) -> Result<Option<Map<String, Value>>, ApiError> {
    // Upstream decides "myself" from the search value, not from the user found.
    let myself = match search {
        Search::Id(id) => caller.id == *id.as_str(),
        Search::Username(username) => caller.username.as_deref() == Some(username.as_str()),
        Search::ImportId(import_id) => holds_import_id(caller.extra.get("importIds"), import_id),
    };
    let can_view_all_info = myself || auth::has_permission(store, caller, permission::VIEW_FULL_OTHER_USER_INFO)?;
    let users = Users::new(store);
    let found = match search {
        Search::Id(value) | Search::Username(value) => users.document_by_id_or_username(value)?,
        Search::ImportId(import_id) if can_view_all_info => users.document_by_import_id(import_id)?,
        Search::ImportId(_) => None,
    };
    let Some(doc) = found else {
        return Ok(None);
    };
    Ok(Some(info_view(store, doc, myself, can_view_all_info)?))
}

/// `users.info`'s projection, in document order, then `canViewAllInfo`.
/// Custom fields are not shown: `Accounts_CustomFields` is not configurable
/// here, and its default (none) shows none.
fn info_view(
    store: &dyn KvStore,
    doc: Map<String, Value>,
    myself: bool,
    can_view_all_info: bool,
) -> Result<Map<String, Value>, StoreError> {
    let mut fields = INFO_FIELDS.to_vec();
    if can_view_all_info {
        fields.extend_from_slice(INFO_FULL_FIELDS);
    }
    if myself {
        fields.push("services");
    }
    let mut view = views::project(&doc, &fields);
    if let Some(services) = view.get_mut("services") {
        *services = own_services(store, doc)?;
    }
    view.insert("canViewAllInfo".to_owned(), Value::Bool(can_view_all_info));
    Ok(view)
}

/// `services` as `me` shows it: flags only, never a secret.
fn own_services(store: &dyn KvStore, doc: Map<String, Value>) -> Result<Value, StoreError> {
    let id = doc.get("_id").and_then(Value::as_str).unwrap_or_default().to_owned();
    let user: UserDoc = serde_json::from_value(Value::Object(doc))
        .map_err(|e| StoreError::Corrupt { key: format!("the document of user {id:?}"), reason: e.to_string() })?;
    let totp_enabled = Users::new(store).second_factor(&user)?.totp.is_some_and(|t| t.enabled);
    Ok(views::me(&user, totp_enabled, "").remove("services").unwrap_or_else(|| json!({})))
}

/// One row of `users.list`: `_id` and the projected fields in document
/// order, then `nameInsensitive` (MongoDB's `$toLower` of the name, which
/// lower-cases ASCII only; `""` without a name). Dates stay EJSON until the
/// rows are sorted.
fn list_row(doc: &Map<String, Value>, fields: &[&str]) -> Map<String, Value> {
    let mut row: Map<String, Value> =
        doc.iter().filter(|(k, _)| k.as_str() == "_id" || fields.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    let name_insensitive = match doc.get("name") {
        Some(Value::String(name)) => name.to_ascii_lowercase(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    row.insert("nameInsensitive".to_owned(), Value::String(name_insensitive));
    row
}

/// `getPaginationItems` with upstream's default settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Page {
    offset: usize,
    count: usize,
}

impl Page {
    /// `offset` and `count` are read with JavaScript's `parseInt` (`"12abc"`
    /// is 12). `count` defaults to [`DEFAULT_COUNT`], is capped at
    /// [`MAX_COUNT`], and `0` means the default: unlike upstream's default
    /// `API_Allow_Infinite_Count`, a page is always bounded. A value that is
    /// not a non-negative integer is a 400 (upstream: MongoDB's error).
    fn parse(req: &Request) -> Result<Page, ApiError> {
        let offset = match req.query_param("offset").filter(|v| !v.is_empty()) {
            None => 0,
            Some(raw) => non_negative("offset", &raw)?,
        };
        let count = match req.query_param("count") {
            None => DEFAULT_COUNT,
            Some(raw) if raw.is_empty() => 0,
            Some(raw) => non_negative("count", &raw)?,
        };
        let count = match count {
            0 => DEFAULT_COUNT,
            n => n.min(MAX_COUNT),
        };
        Ok(Page { offset, count })
    }
}

fn non_negative(name: &str, raw: &str) -> Result<usize, ApiError> {
    parse_int(raw)
        .filter(|n| *n >= 0)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .ok_or_else(|| ApiError::BadRequest(format!("invalid value \"{raw}\" for parameter {name}: expected a non-negative integer")))
}

/// JavaScript's `parseInt(text)` in base 10: leading white space, a sign,
/// then as many digits as there are (saturating); `None` for NaN.
fn parse_int(text: &str) -> Option<i64> {
    let text = text.trim_start();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let end = digits.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let magnitude = digits[..end].parse::<i64>().unwrap_or(i64::MAX);
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests;
