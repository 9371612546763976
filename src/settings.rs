//! Settings: every Spin variable this component reads, parsed once per
//! request into types. This is the only module that reads variables; the
//! rest of the crate receives `&Settings`.
//!
//! Variables are named after the Rocket.Chat setting they mirror, in lower
//! case (`LDAP_Host` → `ldap_host`). [`VARIABLES`] lists them with their
//! defaults; `spin.toml` and the README's table must agree with it (a unit
//! test checks both).

use std::net::IpAddr;
use std::num::NonZeroU32;

use crate::ldap::filter::{FilterError, UserFilter};
use crate::sync::map::variables::Variables;

/// Where variable values come from: Spin's variables in the component, a map in tests.
pub trait VariableSource {
    /// The value of `name`; `Ok(None)` when the host does not define it.
    fn get(&self, name: &str) -> Result<Option<String>, String>;
}

/// One declared variable: its name, its default, and whether it is a secret.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    pub default: &'static str,
    pub secret: bool,
}

const fn var(name: &'static str, default: &'static str) -> Variable {
    Variable { name, default, secret: false }
}

const fn secret(name: &'static str) -> Variable {
    Variable { name, default: "", secret: true }
}

/// Every variable, with the default `spin.toml` declares. A host that does
/// not define one (an older manifest) gets this default too.
pub const VARIABLES: &[Variable] = &[
    var("ldap_enable", "false"),
    var("ldap_server_type", "ad"),
    var("ldap_ip", "127.0.0.1"),
    var("ldap_host", ""),
    var("ldap_port", "389"),
    var("ldap_encryption", "plain"),
    var("ldap_ca_cert", ""),
    var("ldap_reject_unauthorized", "true"),
    var("ldap_timeout", "60000"),
    var("ldap_connect_timeout", "1000"),
    var("ldap_authentication", "false"),
    secret("ldap_authentication_userdn"),
    secret("ldap_authentication_password"),
    var("ldap_basedn", ""),
    var("ldap_user_search_filter", "(objectclass=*)"),
    var("ldap_user_search_scope", "sub"),
    var("ldap_user_search_field", "uid"),
    var("ldap_ad_user_search_field", "sAMAccountName"),
    // Upstream says 250; measured, pages of 1,000 (AD's MaxPageSize) scan faster (README, Benchmark).
    var("ldap_search_page_size", "1000"),
    var("ldap_search_size_limit", "1000"),
    var("ldap_unique_identifier_field", "objectGUID,ibm-entryUUID,GUID,dominoUNID,nsuniqueId,uidNumber,uid"),
    var("ldap_merge_existing_users", "false"),
    var("ldap_default_domain", ""),
    var("ldap_username_field", "uid"),
    var("ldap_ad_username_field", "sAMAccountName"),
    var("ldap_email_field", "mail"),
    var("ldap_ad_email_field", "mail"),
    var("ldap_name_field", "cn"),
    var("ldap_ad_name_field", "cn"),
    var("ldap_extension_field", ""),
    // Upstream's default is false; syncing is this component's whole job.
    var("ldap_background_sync", "true"),
    var("ldap_background_sync_import_new_users", "true"),
    var("ldap_background_sync_keep_existant_users_updated", "true"),
    var("ldap_sync_user_active_state", "disable"),
    var("ldap_background_sync_disable_missing_users", "false"),
    // The circuit breaker: a run that would deactivate more deactivates nobody.
    var("ldap_sync_max_deactivations", "10%"),
    var("ldap_sync_force_deactivations", "false"),
    // A whole run's deadline, ms: 30 minutes covers 10 million users at the measured speed.
    var("ldap_sync_run_timeout", "1800000"),
    // How a run reads the directory: auto picks from the root DSE's supportedControl.
    var("ldap_sync_mode", "auto"),
    // A run stops cleanly before this and saves its progress (hosted Spin stops a request at 30 s).
    var("ldap_sync_time_budget_ms", "25000"),
    // Timestamp mode cannot see deletions: a full, reconciling read at least this often.
    var("ldap_full_sync_interval_hours", "24"),
    var("ldap_group_filter_enable", "false"),
    var("ldap_group_filter_objectclass", "groupOfUniqueNames"),
    var("ldap_group_filter_group_id_attribute", "cn"),
    var("ldap_group_filter_group_member_attribute", "uniqueMember"),
    var("ldap_group_filter_group_member_format", ""),
    var("ldap_group_filter_group_name", "ROCKET_CHAT"),
    var("ldap_sync_user_data_roles", "false"),
    var("ldap_sync_user_data_roles_autoremove", "false"),
    var("ldap_sync_user_data_roles_basedn", ""),
    var("ldap_sync_user_data_roles_groupmembershipvalidationstrategy", "each_group"),
    var("ldap_sync_user_data_roles_filter", "(&(cn=#{groupName})(memberUid=#{username}))"),
    var("ldap_sync_user_data_rolesmap", r#"{"rocket-admin":"admin","tech-support":"support"}"#),
    // Our extension: members of groups within mapped groups count.
    var("ldap_nested_groups", "false"),
    // Our extension: roles that exist in Rocket.Chat beyond the built-in ones.
    var("rocketchat_custom_roles", ""),
    var("ldap_sync_user_data_channels", "false"),
    var("ldap_enable_ldap_groups_to_rc_teams", "false"),
    var("ldap_background_sync_avatars", "false"),
    var("ldap_sync_user_avatar", "true"),
    var("ldap_avatar_field", ""),
    var("ldap_sync_custom_fields", "false"),
    var("ldap_customfieldmap", "{}"),
    var("accounts_customfields", ""),
    var("ldap_datasync_usevariables", "false"),
    var("ldap_datasync_variablemap", "{}"),
    var("accounts_verify_email_for_external_accounts", "true"),
    var("utf8_names_slugify", "true"),
    var("accounts_manuallyapprovenewusers", "false"),
    var("accounts_registration_authenticationservices_default_roles", "user"),
    var("accounts_twofactorauthentication_enabled", "true"),
    var("accounts_twofactorauthentication_by_totp_enabled", "true"),
    var("accounts_twofactorauthentication_maxdelta", "1"),
    var("api_enable_rate_limiter", "true"),
    var("api_enable_rate_limiter_limit_calls_default", "10"),
    var("api_enable_rate_limiter_limit_time_default", "60000"),
    // Upstream's Accounts_LoginExpiration: days a login token lives.
    var("accounts_loginexpiration", "90"),
    // Addresses of reverse proxies whose X-Forwarded-For names the client.
    var("api_trusted_proxies", ""),
    var("kv_batch_reads", "true"),
    var("admin_username", ""),
    secret("admin_pass"),
    var("admin_email", ""),
];

/// Upstream features this port does not implement yet. Their switches are
/// declared so that turning one on is a clear 400, not a silent no-op.
const UNSUPPORTED_SWITCHES: &[&str] = &["ldap_sync_user_data_channels", "ldap_enable_ldap_groups_to_rc_teams"];

/// A variable whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The value does not parse; usually a typo in the Spin configuration.
    #[error("invalid value {shown} for variable {name}: expected {accepts}")]
    Invalid { name: &'static str, shown: String, accepts: String },
    /// The host could not provide the variable (a provider such as Vault failed).
    #[error("variable {name} could not be read: {reason}")]
    Unreadable { name: &'static str, reason: String },
}

/// `ldap_encryption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    Plain,
    /// StartTLS on the plain port.
    StartTls,
    /// LDAPS.
    Tls,
}

/// `ldap_user_search_scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Base,
    One,
    Sub,
}

/// Bind credentials of the service account.
#[derive(Clone, PartialEq, Eq)]
pub struct BindCredentials {
    pub dn: String,
    pub password: String,
}

impl std::fmt::Debug for BindCredentials {
    // Hand-written so the password (and the DN, which upstream marks secret) never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BindCredentials(<redacted>)")
    }
}

/// Connection settings of the LDAP server.
#[derive(Debug, Clone)]
pub struct LdapConnection {
    /// Address to connect to (`ldap_ip`, or `ldap_host` when that is an IP).
    pub ip: Option<IpAddr>,
    /// Name for TLS verification (`ldap_host`).
    pub host: String,
    pub port: u16,
    pub encryption: Encryption,
    pub ca_cert: String,
    pub reject_unauthorized: bool,
    pub timeout_ms: u32,
    pub connect_timeout_ms: u32,
    /// `None` = anonymous.
    pub bind: Option<BindCredentials>,
}

/// What to search and how to map entries (AD variants already resolved).
#[derive(Debug, Clone)]
pub struct LdapSearch {
    pub base_dn: String,
    /// `ldap_user_search_filter`, parsed once. A filter that does not parse
    /// is kept as its error: only searches need it, so it fails them (with
    /// the variable's name) and nothing else, such as a local login.
    pub user_filter: Result<UserFilter, FilterError>,
    pub scope: Scope,
    pub search_fields: Vec<String>,
    /// RFC 2696 page size; `None` (`ldap_search_page_size=0`) = unpaged.
    pub page_size: Option<NonZeroU32>,
    pub size_limit: u32,
    pub unique_id_fields: Vec<String>,
    pub username_field: Template,
    pub email_fields: Vec<String>,
    pub name_field: Template,
    pub extension_field: String,
    pub default_domain: String,
    pub merge_existing_users: bool,
    /// `ldap_sync_custom_fields`: the fields of `ldap_customfieldmap` that
    /// `accounts_customfields` declares; empty when off.
    pub custom_fields: Vec<CustomField>,
    /// `ldap_datasync_variablemap`, when `ldap_datasync_usevariables` is on
    /// and the map defines a variable: attributes derived from each entry
    /// before it is mapped.
    pub variables: Option<Variables>,
}

/// One entry of `ldap_customfieldmap`: an LDAP attribute or `#{attr}`
/// template, and the custom field (a dotted path) it fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomField {
    /// The map's key as written: a bare attribute name, or a template.
    pub source: String,
    /// `customFields.<path>`.
    pub path: String,
}

/// A dynamic-value setting (`getLdapDynamicValue`, spec §3.4): either a
/// `#{attr}` template (`#{givenName} #{sn}`) or a comma-separated list of
/// attributes whose first one with a value wins. Parsed once, by one parser,
/// for both what a search must request and what an entry renders to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The setting as written (for messages).
    pub source: String,
    kind: TemplateKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplateKind {
    /// Text with `#{attr}` placeholders; values of a multi-valued attribute join with `,`.
    Pattern(Vec<TemplatePart>),
    /// Attribute names (all white space removed, as upstream does); the first
    /// with a value gives its values, joined with `,` when there are several.
    FirstOf(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplatePart {
    Text(String),
    Attribute(String),
}

impl Template {
    /// Parses a setting. Never fails: an unterminated `#{` is literal text.
    pub fn parse(source: &str) -> Self {
        let kind = if source.contains("#{") {
            let mut parts = Vec::new();
            let mut rest = source;
            while let Some(start) = rest.find("#{") {
                let after = &rest[start + 2..];
                let Some(end) = after.find('}') else {
                    break;
                };
                parts.push(TemplatePart::Text(rest[..start].to_owned()));
                parts.push(TemplatePart::Attribute(after[..end].trim().to_owned()));
                rest = &after[end + 1..];
            }
            parts.push(TemplatePart::Text(rest.to_owned()));
            parts.retain(|p| *p != TemplatePart::Text(String::new()));
            TemplateKind::Pattern(parts)
        } else {
            let names =
                source.split(',').map(|a| a.chars().filter(|c| !c.is_whitespace()).collect::<String>()).filter(|a| !a.is_empty()).collect();
            TemplateKind::FirstOf(names)
        };
        Self { source: source.to_owned(), kind }
    }

    /// The attributes the template reads.
    pub fn attributes(&self) -> Vec<&str> {
        match &self.kind {
            TemplateKind::Pattern(parts) => parts
                .iter()
                .filter_map(|p| match p {
                    TemplatePart::Attribute(name) if !name.is_empty() => Some(name.as_str()),
                    _ => None,
                })
                .collect(),
            TemplateKind::FirstOf(names) => names.iter().map(String::as_str).collect(),
        }
    }

    /// [`Template::render`], except that an attribute list gives the first
    /// value of its first attribute with a value: for the username, where
    /// upstream's list (of a multi-valued `uid`) makes limax throw and the
    /// entry fail, this takes the first.
    pub fn render_first(&self, values: impl Fn(&str) -> Vec<String>) -> Option<String> {
        match &self.kind {
            TemplateKind::FirstOf(names) => names.iter().find_map(|name| values(name).into_iter().next()),
            TemplateKind::Pattern(_) => self.render(values),
        }
    }

    /// What upstream's `getLdapDynamicValue` returns, for a variable's input:
    /// a template's text (none when empty), or every value of the first
    /// attribute in the list with one (a multi-valued attribute's list).
    pub fn values(&self, values: impl Fn(&str) -> Vec<String>) -> Vec<String> {
        match &self.kind {
            TemplateKind::FirstOf(names) => names.iter().map(|name| values(name)).find(|v| !v.is_empty()).unwrap_or_default(),
            TemplateKind::Pattern(_) => self.render(values).into_iter().collect(),
        }
    }

    /// The value for an entry whose attribute values `values` gives
    /// (non-empty values, decoded); `None` when it renders empty.
    pub fn render(&self, values: impl Fn(&str) -> Vec<String>) -> Option<String> {
        match &self.kind {
            TemplateKind::Pattern(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        TemplatePart::Text(text) => out.push_str(text),
                        TemplatePart::Attribute(name) => out.push_str(&values(name).join(",")),
                    }
                }
                Some(out).filter(|v| !v.is_empty())
            }
            // Upstream returns the first attribute's value as it is, which
            // for several values is their list: as text, joined with `,`.
            TemplateKind::FirstOf(names) => names.iter().map(|name| values(name)).find(|v| !v.is_empty()).map(|v| v.join(",")),
        }
    }
}

/// Background-sync switches (spec §2.5).
#[derive(Debug, Clone, Copy)]
pub struct SyncSwitches {
    pub import_new_users: bool,
    pub keep_existing_updated: bool,
    /// `ldap_sync_user_active_state` (spec §3.8).
    pub active_state: ActiveState,
    /// `ldap_background_sync_disable_missing_users`: deactivate directory
    /// users a complete read did not see.
    pub disable_missing: bool,
    /// `ldap_sync_max_deactivations`.
    pub max_deactivations: DeactivationCap,
    /// `ldap_sync_force_deactivations`: the next run may pass the breaker once.
    pub force_deactivations: bool,
    /// `ldap_sync_run_timeout`: the deadline of a whole run's LDAP session, ms.
    pub run_timeout_ms: u32,
    /// `ldap_sync_mode`.
    pub mode: SyncMode,
    /// `ldap_sync_time_budget_ms`: a run stops cleanly and saves its progress before this.
    pub time_budget_ms: u32,
    /// `ldap_full_sync_interval_hours`: timestamp mode reads everything (and
    /// so finds deletions) when its last complete full read is this old; 0:
    /// every run.
    pub full_interval_hours: u32,
}

/// `ldap_sync_mode`: how a run reads the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// RFC 4533 when the server announces it, else a full read.
    Auto,
    /// Every entry, every run (paged).
    Full,
    /// RFC 4533 refreshOnly with a stored cookie.
    Syncrepl,
    /// Entries with `modifyTimestamp >=` the last run's start (less a
    /// margin), and a full read every `ldap_full_sync_interval_hours`.
    Timestamp,
    /// Active Directory's DirSync control with a stored cookie.
    Dirsync,
}

/// `ldap_sync_user_active_state`: what a disabled directory account does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveState {
    /// The directory's enabled state is ignored.
    Ignore,
    /// A disabled account is deactivated (upstream's default).
    Disable,
    /// Deactivated when disabled, reactivated when enabled again.
    Both,
}

/// `ldap_sync_max_deactivations`: at most this many deactivations per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeactivationCap {
    Count(u64),
    /// A percentage of the users the run saw.
    Percent(u8),
}

impl DeactivationCap {
    /// The most deactivations a run that saw `seen` users may make. A
    /// percentage rounds up, so one deactivation in a small directory passes.
    pub fn limit(self, seen: u64) -> u64 {
        match self {
            DeactivationCap::Count(n) => n,
            DeactivationCap::Percent(p) => seen.saturating_mul(u64::from(p)).div_ceil(100),
        }
    }
}

/// Rocket.Chat's built-in roles; `rocketchat_custom_roles` adds the rest.
pub const BUILT_IN_ROLES: &[&str] = &[
    "admin",
    "moderator",
    "leader",
    "owner",
    "user",
    "bot",
    "app",
    "guest",
    "anonymous",
    "livechat-agent",
    "livechat-manager",
    "livechat-monitor",
];

/// Group-based settings (spec §2.3, §2.6), and our `ldap_nested_groups`.
#[derive(Debug, Clone, Default)]
pub struct GroupSync {
    /// `ldap_sync_user_data_roles` with a non-empty map.
    pub roles: Option<RoleSync>,
    /// `ldap_group_filter_enable` with a member format.
    pub filter: Option<GroupFilter>,
    /// `ldap_nested_groups`: members of groups within a group count.
    pub nested: bool,
}

/// `ldap_sync_user_data_roles_groupmembershipvalidationstrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipStrategy {
    /// One search per mapped group (`#{groupName}` in the filter).
    EachGroup,
    /// One search for all groups; names from `ou`, else `cn`.
    Once,
}

/// Group → role mapping (spec §3.9).
#[derive(Debug, Clone)]
pub struct RoleSync {
    /// The map in its order: LDAP group → roles as written (`admin.x` is `admin`).
    pub map: Vec<(String, Vec<String>)>,
    pub autoremove: bool,
    pub base_dn: String,
    pub strategy: MembershipStrategy,
    /// The filter template, checked to read the other way round.
    pub filter: String,
    /// Roles that exist: [`BUILT_IN_ROLES`] and `rocketchat_custom_roles`.
    pub known_roles: Vec<String>,
}

/// Group filter (spec §3.5): only members of one group are users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFilter {
    pub object_class: String,
    pub id_attribute: String,
    pub member_attribute: String,
    /// `#{username}` (the LDAP username, before slugify) and `#{userdn}`.
    pub member_format: String,
    pub group_name: String,
}

/// Account settings (spec §2.7).
#[derive(Debug, Clone)]
pub struct Accounts {
    pub verify_external_emails: bool,
    pub slugify_names: bool,
    pub manually_approve_new_users: bool,
    pub default_roles: Vec<String>,
    /// `admin_username`: the bootstrap admin, whom no directory entry may take over.
    pub bootstrap_admin: Option<String>,
}

/// Second-factor settings.
#[derive(Debug, Clone, Copy)]
pub struct TwoFactor {
    pub enabled: bool,
    pub totp_enabled: bool,
    /// TOTP window in steps either side of now.
    pub max_delta: u8,
}

/// REST rate limiter settings.
#[derive(Debug, Clone)]
pub struct RateLimit {
    pub enabled: bool,
    pub calls: u32,
    pub window_ms: u32,
    /// `api_trusted_proxies`: only a request from one of these may name its
    /// client in `X-Forwarded-For`.
    pub trusted_proxies: Vec<IpAddr>,
}

/// The local admin created on first use (Rocket.Chat's `ADMIN_USERNAME`,
/// `ADMIN_PASS`, `ADMIN_EMAIL`).
#[derive(Clone)]
pub struct AdminBootstrap {
    pub username: String,
    pub password: String,
    /// Empty = no e-mail.
    pub email: String,
}

impl std::fmt::Debug for AdminBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminBootstrap").field("username", &self.username).field("email", &self.email).finish_non_exhaustive()
    }
}

/// How long a login token lives (`accounts_loginexpiration`, days), in ms.
/// Read on its own because the gate needs it before anything else is loaded.
pub fn login_expiration_ms(source: &dyn VariableSource) -> Result<i64, SettingsError> {
    let r = Reader { source };
    Ok(i64::from(r.number(lookup("accounts_loginexpiration"), 1, 36_500)?) * 86_400_000)
}

impl AdminBootstrap {
    /// The bootstrap admin, when `admin_username` and `admin_pass` are both set.
    pub fn load(source: &dyn VariableSource) -> Result<Option<Self>, SettingsError> {
        let r = Reader { source };
        let username = r.text(lookup("admin_username"))?.trim().to_owned();
        let password = r.text(lookup("admin_pass"))?;
        let email = r.text(lookup("admin_email"))?.trim().to_owned();
        if username.is_empty() || password.is_empty() {
            return Ok(None);
        }
        if !email.is_empty() && !email.contains('@') {
            return Err(r.invalid(lookup("admin_email"), &email, "an e-mail address"));
        }
        Ok(Some(Self { username, password, email }))
    }
}

/// Every setting, parsed.
#[derive(Debug, Clone)]
pub struct Settings {
    pub ldap_enabled: bool,
    pub connection: LdapConnection,
    pub search: LdapSearch,
    pub sync: SyncSwitches,
    pub accounts: Accounts,
    pub two_factor: TwoFactor,
    pub rate_limit: RateLimit,
    pub groups: GroupSync,
    pub avatars: AvatarSettings,
}

/// Avatars from the directory (spec §3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarSettings {
    /// Syncs take avatars: `ldap_background_sync_avatars` and `ldap_sync_user_avatar`.
    pub in_sync: bool,
    /// Logins take avatars: `ldap_sync_user_avatar` (upstream's login does).
    pub at_login: bool,
    /// `ldap_avatar_field`, tried before `thumbnailPhoto` and `jpegPhoto`.
    pub field: String,
}

impl AvatarSettings {
    /// The attributes an avatar may be in, in upstream's order.
    pub fn attributes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for a in [self.field.as_str(), "thumbnailPhoto", "jpegPhoto"] {
            if !a.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(a)) {
                out.push(a);
            }
        }
        out
    }
}

impl Settings {
    /// Reads and parses every variable; the first bad one is the error.
    pub fn load(source: &dyn VariableSource) -> Result<Self, SettingsError> {
        let r = Reader { source };
        for name in UNSUPPORTED_SWITCHES {
            if r.flag(lookup(name))? {
                return Err(SettingsError::Invalid {
                    name: lookup(name).name,
                    shown: "\"true\"".to_owned(),
                    accepts: "false (this feature is not supported by ldap-sync yet)".to_owned(),
                });
            }
        }
        let ad = match r.text(lookup("ldap_server_type"))?.as_str() {
            "ad" => true,
            "" => false,
            other => return Err(r.invalid(lookup("ldap_server_type"), other, "\"ad\" or an empty value")),
        };
        let pick = |plain: &str, ad_variant: &str| if ad { lookup(ad_variant) } else { lookup(plain) };

        let host = r.text(lookup("ldap_host"))?;
        let ip_text = r.text(lookup("ldap_ip"))?;
        let ip = if ip_text.trim().is_empty() {
            host.trim().parse().ok()
        } else {
            Some(
                ip_text
                    .trim()
                    .parse()
                    .map_err(|_| r.invalid(lookup("ldap_ip"), &ip_text, "an IPv4 or IPv6 address (Spin does not resolve names)"))?,
            )
        };
        let bind = if r.flag(lookup("ldap_authentication"))? {
            Some(BindCredentials {
                dn: r.text(lookup("ldap_authentication_userdn"))?,
                password: r.text(lookup("ldap_authentication_password"))?,
            })
        } else {
            None
        };
        let connection = LdapConnection {
            ip,
            host,
            port: r.number(lookup("ldap_port"), 1, 65_535)? as u16,
            encryption: match r.text(lookup("ldap_encryption"))?.as_str() {
                "plain" => Encryption::Plain,
                "tls" => Encryption::StartTls,
                "ssl" => Encryption::Tls,
                other => return Err(r.invalid(lookup("ldap_encryption"), other, "plain, tls or ssl")),
            },
            ca_cert: r.text(lookup("ldap_ca_cert"))?,
            reject_unauthorized: r.flag(lookup("ldap_reject_unauthorized"))?,
            timeout_ms: r.number(lookup("ldap_timeout"), 1, 3_600_000)?,
            connect_timeout_ms: r.number(lookup("ldap_connect_timeout"), 1, 600_000)?,
            bind,
        };
        let search_fields = r.csv(pick("ldap_user_search_field", "ldap_ad_user_search_field"))?;
        let search = LdapSearch {
            base_dn: r.text(lookup("ldap_basedn"))?,
            user_filter: UserFilter::parse(&r.text(lookup("ldap_user_search_filter"))?),
            scope: match r.text(lookup("ldap_user_search_scope"))?.as_str() {
                "base" => Scope::Base,
                "one" => Scope::One,
                "sub" => Scope::Sub,
                other => return Err(r.invalid(lookup("ldap_user_search_scope"), other, "base, one or sub")),
            },
            search_fields,
            page_size: NonZeroU32::new(r.number(lookup("ldap_search_page_size"), 0, 1_000_000)?),
            size_limit: r.number(lookup("ldap_search_size_limit"), 0, u32::MAX)?,
            unique_id_fields: r.csv(lookup("ldap_unique_identifier_field"))?,
            username_field: Template::parse(&r.text(pick("ldap_username_field", "ldap_ad_username_field"))?),
            email_fields: r.csv(pick("ldap_email_field", "ldap_ad_email_field"))?,
            name_field: Template::parse(&r.text(pick("ldap_name_field", "ldap_ad_name_field"))?),
            extension_field: r.text(lookup("ldap_extension_field"))?.trim().to_owned(),
            default_domain: r.text(lookup("ldap_default_domain"))?.trim().to_owned(),
            merge_existing_users: r.flag(lookup("ldap_merge_existing_users"))?,
            custom_fields: r.custom_fields()?,
            variables: r.variables()?,
        };
        Ok(Self {
            ldap_enabled: r.flag(lookup("ldap_enable"))?,
            connection,
            search,
            sync: SyncSwitches {
                import_new_users: r.flag(lookup("ldap_background_sync_import_new_users"))?,
                keep_existing_updated: r.flag(lookup("ldap_background_sync_keep_existant_users_updated"))?,
                active_state: match r.text(lookup("ldap_sync_user_active_state"))?.trim() {
                    "none" => ActiveState::Ignore,
                    "disable" => ActiveState::Disable,
                    "both" => ActiveState::Both,
                    other => return Err(r.invalid(lookup("ldap_sync_user_active_state"), other, "none, disable or both")),
                },
                disable_missing: r.flag(lookup("ldap_background_sync_disable_missing_users"))?,
                max_deactivations: {
                    let v = lookup("ldap_sync_max_deactivations");
                    let text = r.text(v)?;
                    let trimmed = text.trim();
                    let parsed = match trimmed.strip_suffix('%') {
                        Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= 100).map(DeactivationCap::Percent),
                        None => trimmed.parse::<u64>().ok().map(DeactivationCap::Count),
                    };
                    parsed.ok_or_else(|| r.invalid(v, &text, "a count (e.g. 50) or a percentage from 0% to 100% (e.g. 10%)"))?
                },
                force_deactivations: r.flag(lookup("ldap_sync_force_deactivations"))?,
                run_timeout_ms: r.number(lookup("ldap_sync_run_timeout"), 1_000, 86_400_000)?,
                mode: match r.text(lookup("ldap_sync_mode"))?.trim() {
                    "auto" => SyncMode::Auto,
                    "full" => SyncMode::Full,
                    "syncrepl" => SyncMode::Syncrepl,
                    "timestamp" => SyncMode::Timestamp,
                    "dirsync" => SyncMode::Dirsync,
                    other => return Err(r.invalid(lookup("ldap_sync_mode"), other, "auto, full, syncrepl, dirsync or timestamp")),
                },
                time_budget_ms: r.number(lookup("ldap_sync_time_budget_ms"), 100, 86_400_000)?,
                full_interval_hours: r.number(lookup("ldap_full_sync_interval_hours"), 0, 8_760)?,
            },
            accounts: Accounts {
                verify_external_emails: r.flag(lookup("accounts_verify_email_for_external_accounts"))?,
                slugify_names: r.flag(lookup("utf8_names_slugify"))?,
                manually_approve_new_users: r.flag(lookup("accounts_manuallyapprovenewusers"))?,
                default_roles: r.csv(lookup("accounts_registration_authenticationservices_default_roles"))?,
                bootstrap_admin: Some(r.text(lookup("admin_username"))?.trim().to_owned()).filter(|u| !u.is_empty()),
            },
            two_factor: r.two_factor()?,
            rate_limit: r.rate_limit()?,
            groups: r.groups()?,
            avatars: {
                let at_login = r.flag(lookup("ldap_sync_user_avatar"))?;
                AvatarSettings {
                    in_sync: at_login && r.flag(lookup("ldap_background_sync_avatars"))?,
                    at_login,
                    field: r.text(lookup("ldap_avatar_field"))?.trim().to_owned(),
                }
            },
        })
    }
}

/// What the gate (rate limiter, second factor) needs, read on its own: a
/// route parses these before it admits the caller, and the rest of the
/// settings only after, so configuration errors reach only callers the gate
/// let through (upstream's order).
#[derive(Debug, Clone)]
pub struct GateSettings {
    pub two_factor: TwoFactor,
    pub rate_limit: RateLimit,
}

impl GateSettings {
    pub fn load(source: &dyn VariableSource) -> Result<Self, SettingsError> {
        let r = Reader { source };
        Ok(Self { two_factor: r.two_factor()?, rate_limit: r.rate_limit()? })
    }
}

impl Settings {
    /// The gate's part of these settings.
    pub fn gate(&self) -> GateSettings {
        GateSettings { two_factor: self.two_factor, rate_limit: self.rate_limit.clone() }
    }
}

/// `ldap_enable` alone (`LDAP_disabled` is answered before anything else of the sync is parsed).
pub fn ldap_enabled(source: &dyn VariableSource) -> Result<bool, SettingsError> {
    Reader { source }.flag(lookup("ldap_enable"))
}

/// `kv_batch_reads` alone (read before the store is opened): `false` makes
/// every batch read single `get`s, for Spin's Redis store (docs/deploy.md).
#[cfg_attr(not(target_family = "wasm"), allow(dead_code, reason = "read by spin_entry.rs, which builds only for the component"))]
pub fn kv_batch_reads(source: &dyn VariableSource) -> Result<bool, SettingsError> {
    Reader { source }.flag(lookup("kv_batch_reads"))
}

/// `ldap_background_sync` alone.
pub fn background_sync(source: &dyn VariableSource) -> Result<bool, SettingsError> {
    Reader { source }.flag(lookup("ldap_background_sync"))
}

/// Upstream's `getNestedProp(customFields, path)` is truthy.
fn truthy_at(value: &serde_json::Value, path: &str) -> bool {
    let found = path.split('.').try_fold(value, |v, key| v.get(key));
    match found {
        None | Some(serde_json::Value::Null | serde_json::Value::Bool(false)) => false,
        Some(serde_json::Value::String(s)) => !s.is_empty(),
        Some(serde_json::Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(_) => true,
    }
}

/// `{"group": "role" | ["role", ...], ...}` in the text's order; `None`
/// when it is not such an object.
fn parse_roles_map(text: &str) -> Option<Vec<(String, Vec<String>)>> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value
        .as_object()?
        .iter()
        .map(|(group, roles)| {
            let roles = match roles {
                serde_json::Value::String(one) => vec![one.clone()],
                serde_json::Value::Array(many) => many.iter().map(|r| r.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>()?,
                _ => return None,
            };
            Some((group.clone(), roles))
        })
        .collect()
}

/// The declaration of `name`. Every name passed here is a literal from this
/// file, and [`tests::every_lookup_is_declared`] loads all of them.
fn lookup(name: &str) -> Variable {
    VARIABLES
        .iter()
        .copied()
        .find(|v| v.name == name)
        // A name missing from VARIABLES is a programming error caught by the unit tests.
        .unwrap_or(Variable { name: "unknown_variable", default: "", secret: false })
}

struct Reader<'a> {
    source: &'a dyn VariableSource,
}

impl Reader<'_> {
    fn text(&self, v: Variable) -> Result<String, SettingsError> {
        match self.source.get(v.name) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Ok(v.default.to_owned()),
            Err(reason) => Err(SettingsError::Unreadable { name: v.name, reason }),
        }
    }

    fn flag(&self, v: Variable) -> Result<bool, SettingsError> {
        let value = self.text(v)?;
        match value.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.invalid(v, &value, "true or false")),
        }
    }

    fn two_factor(&self) -> Result<TwoFactor, SettingsError> {
        Ok(TwoFactor {
            enabled: self.flag(lookup("accounts_twofactorauthentication_enabled"))?,
            totp_enabled: self.flag(lookup("accounts_twofactorauthentication_by_totp_enabled"))?,
            max_delta: self.number(lookup("accounts_twofactorauthentication_maxdelta"), 0, 10)? as u8,
        })
    }

    fn rate_limit(&self) -> Result<RateLimit, SettingsError> {
        Ok(RateLimit {
            enabled: self.flag(lookup("api_enable_rate_limiter"))?,
            calls: self.number(lookup("api_enable_rate_limiter_limit_calls_default"), 1, 1_000_000)?,
            window_ms: self.number(lookup("api_enable_rate_limiter_limit_time_default"), 1, 86_400_000)?,
            trusted_proxies: self
                .csv(lookup("api_trusted_proxies"))?
                .iter()
                .map(|ip| ip.parse().map_err(|_| self.invalid(lookup("api_trusted_proxies"), ip, "a comma-separated list of IP addresses")))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Upstream's `copyCustomFieldsLDAP` setup: the map's entries whose
    /// target `accounts_customfields` declares (a truthy value at that path).
    fn custom_fields(&self) -> Result<Vec<CustomField>, SettingsError> {
        if !self.flag(lookup("ldap_sync_custom_fields"))? {
            return Ok(Vec::new());
        }
        let map_var = lookup("ldap_customfieldmap");
        let map_text = self.text(map_var)?;
        let declared_var = lookup("accounts_customfields");
        let declared_text = self.text(declared_var)?;
        if map_text.trim().is_empty() || declared_text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&map_text).map_err(|_| {
            self.invalid(map_var, &map_text, "a JSON object of LDAP attribute or template → custom field, e.g. {\"department\":\"dept\"}")
        })?;
        let declared: serde_json::Value = serde_json::from_str(&declared_text)
            .ok()
            .filter(serde_json::Value::is_object)
            .ok_or_else(|| self.invalid(declared_var, &declared_text, "a JSON object declaring the custom fields"))?;
        let mut fields = Vec::new();
        for (source, target) in map {
            let Some(path) = target.as_str() else {
                return Err(self.invalid(map_var, &map_text, "custom field names as strings"));
            };
            if truthy_at(&declared, path) {
                fields.push(CustomField { source, path: path.to_owned() });
            }
        }
        Ok(fields)
    }

    /// Upstream's `LDAP_DataSync_VariableMap`, read only when
    /// `LDAP_DataSync_UseVariables` is on. A map upstream would fail every
    /// entry with (a missing pattern, a regex it cannot compile) is refused
    /// here, before any entry is read.
    fn variables(&self) -> Result<Option<Variables>, SettingsError> {
        if !self.flag(lookup("ldap_datasync_usevariables"))? {
            return Ok(None);
        }
        let map_var = lookup("ldap_datasync_variablemap");
        let text = self.text(map_var)?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        let variables = Variables::parse(&text).map_err(|e| {
            let accepts = "a JSON object of variable name → {\"input\": \"<attributes or #{template}>\", \"output\": \
                           {\"operation\": \"replace\" | \"match\" | \"substring\" | \"split\" | \"fallback\", ...}}";
            self.invalid(map_var, &text, &format!("{accepts} ({e})"))
        })?;
        Ok(Some(variables).filter(|v| !v.is_empty()))
    }

    fn groups(&self) -> Result<GroupSync, SettingsError> {
        Ok(GroupSync { roles: self.roles()?, filter: self.group_filter()?, nested: self.flag(lookup("ldap_nested_groups"))? })
    }

    fn roles(&self) -> Result<Option<RoleSync>, SettingsError> {
        if !self.flag(lookup("ldap_sync_user_data_roles"))? {
            return Ok(None);
        }
        let map_var = lookup("ldap_sync_user_data_rolesmap");
        let text = self.text(map_var)?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        let map = parse_roles_map(&text).ok_or_else(|| {
            self.invalid(map_var, &text, "a JSON object of LDAP group → role or list of roles, e.g. {\"rocket-admin\":\"admin\"}")
        })?;
        let strategy_var = lookup("ldap_sync_user_data_roles_groupmembershipvalidationstrategy");
        let strategy = match self.text(strategy_var)?.trim() {
            "each_group" => MembershipStrategy::EachGroup,
            "once" => MembershipStrategy::Once,
            other => return Err(self.invalid(strategy_var, other, "each_group or once")),
        };
        let filter_var = lookup("ldap_sync_user_data_roles_filter");
        let filter = self.text(filter_var)?.trim().to_owned();
        let group = if strategy == MembershipStrategy::EachGroup { Some("group") } else { None };
        crate::ldap::filter::membership_query(&filter, group)
            .map_err(|e| self.invalid(filter_var, &filter, &format!("a group-membership filter ({e})")))?;
        let base_var = lookup("ldap_sync_user_data_roles_basedn");
        let base_dn = self.text(base_var)?.trim().to_owned();
        if base_dn.is_empty() && strategy == MembershipStrategy::EachGroup {
            return Err(self.invalid(base_var, &base_dn, "the DN under which the groups are (each_group needs one)"));
        }
        let mut known_roles: Vec<String> = BUILT_IN_ROLES.iter().map(|r| (*r).to_owned()).collect();
        known_roles.extend(self.csv(lookup("rocketchat_custom_roles"))?);
        Ok(Some(RoleSync {
            map,
            autoremove: self.flag(lookup("ldap_sync_user_data_roles_autoremove"))?,
            base_dn,
            strategy,
            filter,
            known_roles,
        }))
    }

    fn group_filter(&self) -> Result<Option<GroupFilter>, SettingsError> {
        if !self.flag(lookup("ldap_group_filter_enable"))? {
            return Ok(None);
        }
        let member_format = self.text(lookup("ldap_group_filter_group_member_format"))?.trim().to_owned();
        // Upstream filters only with a member format.
        if member_format.is_empty() {
            return Ok(None);
        }
        let member_var = lookup("ldap_group_filter_group_member_attribute");
        let member_attribute = self.text(member_var)?.trim().to_owned();
        if member_attribute.is_empty() {
            return Err(self.invalid(member_var, &member_attribute, "the attribute that lists the group's members"));
        }
        Ok(Some(GroupFilter {
            object_class: self.text(lookup("ldap_group_filter_objectclass"))?.trim().to_owned(),
            id_attribute: self.text(lookup("ldap_group_filter_group_id_attribute"))?.trim().to_owned(),
            member_attribute,
            member_format,
            group_name: self.text(lookup("ldap_group_filter_group_name"))?.trim().to_owned(),
        }))
    }

    fn number(&self, v: Variable, min: u32, max: u32) -> Result<u32, SettingsError> {
        let value = self.text(v)?;
        match value.trim().parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(self.invalid(v, &value, &format!("an integer from {min} to {max}"))),
        }
    }

    /// Upstream removes all whitespace from CSV settings and drops empty items.
    fn csv(&self, v: Variable) -> Result<Vec<String>, SettingsError> {
        Ok(self
            .text(v)?
            .split(',')
            .map(|item| item.chars().filter(|c| !c.is_whitespace()).collect::<String>())
            .filter(|item| !item.is_empty())
            .collect())
    }

    fn invalid(&self, v: Variable, value: &str, accepts: &str) -> SettingsError {
        let shown = if v.secret { "<secret>".to_owned() } else { format!("{value:?}") };
        SettingsError::Invalid { name: v.name, shown, accepts: accepts.to_owned() }
    }
}

#[cfg(test)]
mod tests;
