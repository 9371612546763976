//! The user search (spec §3.3), built from the settings in one place for
//! the scan, login and `ldap.testSearch`, and the [`Directory`] seam that
//! runs it.

use crate::ldap::filter;
use crate::ldap::{DirectoryEntry, LdapTiming, SearchEnd, SearchSpec, Session, SyncChunk, SyncEnd};
use crate::settings::{ActiveState, Settings};

use super::SyncError;
use super::map;

/// The search side of an LDAP session, so the sync can be unit-tested with
/// a scripted directory.
pub trait Directory {
    /// Runs `spec`, handing entries over one page at a time.
    fn search(
        &mut self,
        spec: SearchSpec,
        on_page: &mut dyn FnMut(Vec<DirectoryEntry>) -> Result<(), SyncError>,
    ) -> Result<SearchEnd, SyncError>;

    /// Where the session's time went so far (zero for a scripted directory).
    fn timing(&self) -> LdapTiming {
        LdapTiming::default()
    }

    /// The root DSE's `supportedControl` OIDs (none for a scripted directory).
    fn supported_controls(&mut self) -> Result<Vec<String>, SyncError> {
        Ok(Vec::new())
    }

    /// The root DSE's `namingContexts` (none for a scripted directory).
    fn naming_contexts(&mut self) -> Result<Vec<String>, SyncError> {
        Ok(Vec::new())
    }

    /// Runs an RFC 4533 refresh (`spec.sync` set), handing over `chunk`
    /// items at a time. A directory that cannot says so.
    fn sync_search(
        &mut self,
        spec: SearchSpec,
        chunk: usize,
        on_chunk: &mut dyn FnMut(SyncChunk) -> Result<(), SyncError>,
    ) -> Result<SyncEnd, SyncError> {
        let _ = (spec, chunk, on_chunk);
        Err(SyncError::ModeUnavailable("this directory does not support RFC 4533 content synchronisation".to_owned()))
    }
}

impl Directory for Session {
    fn search(
        &mut self,
        spec: SearchSpec,
        on_page: &mut dyn FnMut(Vec<DirectoryEntry>) -> Result<(), SyncError>,
    ) -> Result<SearchEnd, SyncError> {
        Session::search(self, spec, on_page)
    }

    fn timing(&self) -> LdapTiming {
        Session::timing(self)
    }

    fn supported_controls(&mut self) -> Result<Vec<String>, SyncError> {
        Ok(Session::supported_controls(self)?)
    }

    fn naming_contexts(&mut self) -> Result<Vec<String>, SyncError> {
        Ok(Session::root_dse(self, "namingContexts")?)
    }

    fn sync_search(
        &mut self,
        spec: SearchSpec,
        chunk: usize,
        on_chunk: &mut dyn FnMut(SyncChunk) -> Result<(), SyncError>,
    ) -> Result<SyncEnd, SyncError> {
        Session::sync_search(self, spec, chunk, on_chunk)
    }
}

/// Entries per page when pages carry avatars (at most 1 MiB each are used).
const AVATAR_PAGE_SIZE: std::num::NonZeroU32 = std::num::NonZeroU32::MIN.saturating_add(99);

/// `(&<ldap_user_search_filter><username clause>)`, where the clause
/// matches `username` (escaped) on every search field, or any value when
/// `username` is `None` (the directory scan).
pub fn user_search(settings: &Settings, username: Option<&str>) -> Result<SearchSpec, SyncError> {
    let search = &settings.search;
    if search.search_fields.is_empty() {
        return Err(SyncError::NoSearchField);
    }
    let user_filter = search.user_filter.as_ref().map_err(|e| SyncError::Filter(e.clone()))?;
    let clause = |field: &String| match username {
        Some(name) => filter::equality(field.as_str(), name),
        None => filter::present(field.as_str()),
    };
    let mut attributes = map::attributes_to_request(search, settings.sync.active_state != ActiveState::Ignore);
    // Avatars come with the entries (one search, not upstream's second
    // lookup per user); pages are smaller, as each may hold images.
    let avatars = if username.is_some() { settings.avatars.at_login } else { settings.avatars.in_sync };
    let mut page_size = search.page_size;
    if avatars {
        for a in settings.avatars.attributes() {
            if !attributes.iter().any(|w| w.eq_ignore_ascii_case(a)) {
                attributes.push(a.to_owned());
            }
        }
        page_size = page_size.map(|n| n.min(AVATAR_PAGE_SIZE));
    }
    Ok(SearchSpec {
        base: search.base_dn.clone(),
        scope: search.scope,
        filter: user_filter.and(filter::or(search.search_fields.iter().map(clause).collect())),
        attributes,
        page_size,
        size_limit: search.size_limit,
        sync: None,
        dirsync: None,
    })
}

/// Finds the one entry whose search field equals `username`; `None` when
/// there is none or more than one (as upstream treats an ambiguous match).
pub fn find_entry(directory: &mut dyn Directory, settings: &Settings, username: &str) -> Result<Option<DirectoryEntry>, SyncError> {
    let spec = user_search(settings, Some(username))?;
    let mut found = Vec::new();
    directory.search(spec, &mut |page| {
        found.extend(page.into_iter().take(2));
        Ok(())
    })?;
    Ok(if found.len() == 1 { found.pop() } else { None })
}
