//! Directory authentication for login: find the user's entry with the
//! service account, bind as the entry's DN with the given password, then
//! create or update the user with exactly the sync's mapping
//! ([`super::upsert_entry`]).

use crate::ldap::{LdapError, Session};
use crate::settings::Settings;
use crate::store::KvStore;
use crate::store::schema::UserDoc;

use super::{Directory, RunContext, SyncError, find_entry, upsert_entry};

/// What the directory said about a login.
#[derive(Debug)]
pub enum DirectoryLogin {
    /// Password accepted; the stored user, created or updated from the entry.
    Accepted(Box<UserDoc>),
    /// The entry exists but refused the password (or cannot become a user).
    Refused(String),
    /// No single entry matches the username.
    NotFound,
}

/// Checks `username`/`password` against the directory.
pub fn authenticate(
    store: &dyn KvStore,
    settings: &Settings,
    username: &str,
    password: &str,
    ctx: &mut RunContext<'_>,
) -> Result<DirectoryLogin, SyncError> {
    // An empty password is an unauthenticated bind (RFC 4513 §5.1.2), which
    // some servers accept for any DN: never let it prove anything.
    if password.is_empty() {
        return Ok(DirectoryLogin::Refused("empty password".to_owned()));
    }
    let mut session = Session::open(&settings.connection)?;
    let result = authenticate_on(&mut session, store, settings, username, password, ctx);
    session.close();
    result
}

fn authenticate_on(
    session: &mut Session,
    store: &dyn KvStore,
    settings: &Settings,
    username: &str,
    password: &str,
    ctx: &mut RunContext<'_>,
) -> Result<DirectoryLogin, SyncError> {
    let Some(entry) = find_entry(session as &mut dyn Directory, settings, username)? else {
        return Ok(DirectoryLogin::NotFound);
    };
    match session.bind_as(&entry.dn, password) {
        Ok(()) => {}
        Err(LdapError::Result { code, .. }) => {
            return Ok(DirectoryLogin::Refused(format!("bind as the user failed: {}", crate::ldap::error::code_name(&code))));
        }
        Err(other) => return Err(other.into()),
    }
    Ok(match upsert_entry(store, settings, entry, ctx)? {
        Ok(user) => DirectoryLogin::Accepted(Box::new(user)),
        Err(reason) => DirectoryLogin::Refused(reason),
    })
}
