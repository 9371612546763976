//! Directory authentication for login: find the user's entry with the
//! service account, bind as the entry's DN with the given password, then
//! create or update the user with exactly the sync's mapping and planning.
//!
//! Login creates and updates whatever the background-sync switches say:
//! upstream's login path ignores them (`LDAP_Update_Data_On_Login` is on).

use crate::ldap::{DirectoryEntry, PasswordCheck, Session};
use crate::settings::{ActiveState, Settings, SyncSwitches};
use crate::store::schema::UserDoc;
use crate::store::users::{UserWrites, Users};
use crate::store::{Batch, KvStore};

use super::groups::GroupFacts;
use super::plan::{self, PlanContext};
use super::{Directory, RunContext, SyncError, find_entry, map};

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
pub fn verify_password(
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
    let result = verify_on(&mut session, store, settings, username, password, ctx);
    session.close();
    result
}

fn verify_on(
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
    match session.check_password(entry.dn.as_str(), password)? {
        PasswordCheck::Accepted => {
            read_groups(settings, ctx)?;
            if ctx.groups.filters() && !ctx.groups.admits(entry.dn.as_str(), map::ldap_username(&entry, &settings.search).as_deref()) {
                return Ok(DirectoryLogin::Refused("not a member of the group filter's group".to_owned()));
            }
            upsert(store, settings, &entry, ctx)
        }
        PasswordCheck::Refused(reason) => Ok(DirectoryLogin::Refused(reason)),
    }
}

/// Reads the groups the settings need, as the service account (the login
/// session is bound as the user by now): upstream applies the group filter
/// and the roles at login too.
fn read_groups(settings: &Settings, ctx: &mut RunContext<'_>) -> Result<(), SyncError> {
    if settings.groups.roles.is_none() && settings.groups.filter.is_none() {
        return Ok(());
    }
    let mut session = Session::open(&settings.connection)?;
    let facts = GroupFacts::read(&mut session, settings);
    session.close();
    ctx.groups = facts?;
    Ok(())
}

/// Creates or updates the user of one entry (one load, one plan, one write).
fn upsert(store: &dyn KvStore, settings: &Settings, entry: &DirectoryEntry, ctx: &mut RunContext<'_>) -> Result<DirectoryLogin, SyncError> {
    let avatar_attributes = if settings.avatars.at_login { settings.avatars.attributes() } else { Vec::new() };
    let user = match map::map_entry(entry, &settings.search, &settings.accounts, &avatar_attributes) {
        Ok(mut user) => {
            user.roles = ctx.groups.roles_for(user.dn.as_str(), &user.username);
            user
        }
        Err(problem) => return Ok(DirectoryLogin::Refused(problem.to_string())),
    };
    // A disabled account does not log in; the next sync deactivates it here.
    if settings.sync.active_state != ActiveState::Ignore && user.disabled {
        return Ok(DirectoryLogin::Refused("the account is disabled in the directory".to_owned()));
    }
    let users = std::slice::from_ref(&user);
    let mut loaded = Users::new(store).load(plan::keys_to_load(users), plan::candidate_ids(users))?;
    let plan_ctx = PlanContext {
        switches: SyncSwitches { import_new_users: true, keep_existing_updated: true, ..settings.sync },
        accounts: &settings.accounts,
        merge_existing_users: settings.search.merge_existing_users,
        now: (ctx.clock)(),
        roles: plan::role_policy(settings),
    };
    let mut writes = UserWrites::default();
    let planned = match plan::plan_one(&user, &mut loaded, &plan_ctx, &mut writes) {
        Ok(planned) => planned,
        Err(problem) => return Ok(DirectoryLogin::Refused(problem.to_string())),
    };
    let mut batch = Batch::new();
    batch.put_users(&writes)?;
    batch.commit(store)?;
    match planned.id.and_then(|id| loaded.docs.remove(&id)) {
        Some(doc) => Ok(DirectoryLogin::Accepted(Box::new(doc))),
        None => Ok(DirectoryLogin::Refused("the directory entry cannot become a user".to_owned())),
    }
}
