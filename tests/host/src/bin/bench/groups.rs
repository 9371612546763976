//! `--groups`: the group-heavy case of issue #11. 100,000 users, 1,000
//! `groupOfNames` groups of 200 members each (200,000 memberships, every
//! user in two groups), each group mapped to a role
//! (`ldap_sync_user_data_roles`, `each_group`, AutoRemove on). Runs: a first
//! full sync (every user created with their roles), an unchanged one (no
//! writes), then 10 groups get other members and a full sync must update
//! exactly the users whose roles changed. The floor is `ldapsearch` of the
//! users plus one paged `ldapsearch` of every group's members.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use ldap_sync_host::demo::{DEMO_SVC_DN, DEMO_SVC_PASSWORD};
use ldap_sync_host::slapd::{Slapd, SlapdOptions};
use ldap_sync_host::{Host, HostOptions};

use super::{ADMIN, Args, BASE, Run, SUFFIX, TempDir, bench_variables, directory, floor, mib, sync_once, uid};

const USERS: usize = 100_000;
const GROUPS: usize = 1_000;
/// Members per group: two blocks of 100 users.
const BLOCK: usize = 100;
const GROUP_BASE: &str = "ou=groups,dc=example,dc=org";
/// The role of group `g` is `ROLES[g % 4]`.
const ROLES: [&str; 4] = ["moderator", "bot", "leader", "livechat-agent"];
/// Groups whose members change in the change round.
const CHANGED_GROUPS: usize = 10;

fn group_name(g: usize) -> String {
    format!("g{g:04}")
}

/// Group `g`'s members (1-based user numbers): users `g*100+1..` and the
/// block half the directory and one group further on (another role).
fn members(g: usize, shift: usize) -> Vec<usize> {
    let first = (g * BLOCK + shift) % USERS;
    let second = (g * BLOCK + USERS / 2 + BLOCK) % USERS;
    (0..BLOCK).map(|k| first + k + 1).chain((0..BLOCK).map(|k| second + k + 1)).collect()
}

fn group_ldif(g: usize, shift: usize, width: usize) -> String {
    let mut l = format!("dn: cn={},{GROUP_BASE}\nobjectClass: groupOfNames\ncn: {}\n", group_name(g), group_name(g));
    for m in members(g, shift) {
        let _ = writeln!(l, "member: uid={},{BASE}", uid(m, width));
    }
    l + "\n"
}

/// Each user's roles under a membership table.
fn roles_of(table: &[Vec<usize>]) -> HashMap<usize, BTreeSet<&'static str>> {
    let mut out: HashMap<usize, BTreeSet<&'static str>> = HashMap::new();
    for (g, users) in table.iter().enumerate() {
        for u in users {
            out.entry(*u).or_default().insert(ROLES[g % ROLES.len()]);
        }
    }
    out
}

/// The floor of the group read: every group's members, paged.
fn group_floor(slapd: &Slapd, page_size: u32) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let status = Command::new("ldapsearch")
            .env("LDAPNOINIT", "1")
            .args(["-x", "-LLL", "-o", "ldif-wrap=no", "-H", &slapd.url(), "-D", DEMO_SVC_DN, "-w", DEMO_SVC_PASSWORD, "-b", GROUP_BASE])
            .args(["-E", &format!("pr={page_size}/noprompt"), "(objectClass=groupOfNames)", "member"])
            .stdout(Stdio::null())
            .status()
            .context("running ldapsearch (apt-get install ldap-utils)")?;
        ensure!(status.success(), "ldapsearch failed: {status}");
        best = best.min(started.elapsed());
    }
    Ok(best)
}

pub fn bench_groups(rt: &tokio::runtime::Runtime, args: &Args) -> anyhow::Result<()> {
    let width = USERS.to_string().len().max(5);
    println!();
    println!("=== groups: {USERS} users, {GROUPS} groups, {} memberships ===", GROUPS * 2 * BLOCK);
    let mut ldif = directory(USERS, width);
    ldif.push_str(&format!("dn: {GROUP_BASE}\nobjectClass: organizationalUnit\nou: groups\n\n"));
    for g in 0..GROUPS {
        ldif.push_str(&group_ldif(g, 0, width));
    }
    let slapd = Slapd::start(SlapdOptions {
        suffix: SUFFIX.into(),
        size_limit: Some(500),
        ldif,
        unlimited: vec![DEMO_SVC_DN.to_owned()],
        ..SlapdOptions::default()
    })
    .context("starting slapd")?;
    let users_floor = floor(&slapd, args.page_size)?;
    let groups_floor = group_floor(&slapd, args.page_size)?;
    let floor = users_floor + groups_floor;
    println!("floor: users {:.3} s + groups {:.3} s = {:.3} s", users_floor.as_secs_f64(), groups_floor.as_secs_f64(), floor.as_secs_f64());

    let map: serde_json::Map<String, serde_json::Value> =
        (0..GROUPS).map(|g| (group_name(g), serde_json::Value::from(ROLES[g % ROLES.len()]))).collect();
    let mut variables = bench_variables(slapd.port(), args.page_size);
    for (k, v) in [
        ("ldap_sync_mode", "full".to_owned()),
        ("ldap_sync_user_data_roles", "true".to_owned()),
        ("ldap_sync_user_data_roles_autoremove", "true".to_owned()),
        ("ldap_sync_user_data_roles_basedn", GROUP_BASE.to_owned()),
        ("ldap_sync_user_data_roles_filter", "(&(objectClass=groupOfNames)(cn=#{groupName})(member=#{userdn}))".to_owned()),
        ("ldap_sync_user_data_rolesmap", serde_json::Value::Object(map).to_string()),
    ] {
        variables.insert(k.to_owned(), v);
    }
    let state = TempDir::new()?;
    let host =
        Host::new(HostOptions { state_dir: Some(state.0.clone()), variables, ..HostOptions::default() }).context("starting the host")?;
    ADMIN.seed(&host)?;
    let n = USERS as u64;
    let mut runs: Vec<Run> = Vec::new();
    runs.push(sync_once(rt, &host, "groups: full (first)", n, (n, 0, 0))?);
    let before: Vec<Vec<usize>> = (0..GROUPS).map(|g| members(g, 0)).collect();
    let added: usize = roles_of(&before).values().map(BTreeSet::len).sum();
    ensure!(runs[0].report["roles"]["added"] == serde_json::json!(added), "roles added: {} (expected {added})", runs[0].report["roles"]);
    runs.push(sync_once(rt, &host, "groups: no change", n, (0, 0, n))?);

    // Ten groups get other first blocks.
    let mut after = before.clone();
    let mut change = String::new();
    for (g, members_now) in after.iter_mut().enumerate().take(CHANGED_GROUPS) {
        *members_now = members(g, USERS / 4);
        let _ = write!(change, "dn: cn={},{GROUP_BASE}\nchangetype: modify\nreplace: member\n", group_name(g));
        for m in members_now.iter() {
            let _ = writeln!(change, "member: uid={},{BASE}", uid(*m, width));
        }
        change.push('\n');
    }
    slapd.modify(&change).context("ldapmodify")?;
    let (old, new) = (roles_of(&before), roles_of(&after));
    let updated = (1..=USERS).filter(|u| old.get(u) != new.get(u)).count() as u64;
    runs.push(sync_once(rt, &host, "groups: 10 groups changed", n, (0, updated, n - updated))?);

    println!(
        "{:<26} {:>7} {:>9} {:>8} {:>10} {:>9} {:>8} {:>8}",
        "run", "wall s", "users/s", "x floor", "keys wrtn", "mem MiB", "updated", "roles +/-"
    );
    for r in &runs {
        println!(
            "{:<26} {:>7.2} {:>9.0} {:>8.2} {:>10} {:>9.2} {:>8} {:>4}/{:<4}",
            r.name,
            r.wall.as_secs_f64(),
            r.users_per_s(),
            r.wall.as_secs_f64() / floor.as_secs_f64(),
            r.writes.set_many_keys + r.writes.sets + r.writes.delete_many_keys + r.writes.deletes,
            mib(r.memory),
            r.counts.1,
            r.report["roles"]["added"],
            r.report["roles"]["removed"]
        );
    }
    for r in &runs {
        println!(
            "{:<26} guest {} ms: groups {} ms, LDAP wait {} ms, map {} ms, plan {} ms",
            r.name,
            r.report["durationMs"],
            r.phases["groupsUs"].as_u64().unwrap_or(0) / 1000,
            r.phases["ldapWaitUs"].as_u64().unwrap_or(0) / 1000,
            r.phases["mapUs"].as_u64().unwrap_or(0) / 1000,
            r.phases["planUs"].as_u64().unwrap_or(0) / 1000
        );
    }
    let no_change = &runs[1];
    println!(
        "group-heavy: first sync {:.2}x the floor, unchanged {:.2}x with {} data keys written",
        runs[0].wall.as_secs_f64() / floor.as_secs_f64(),
        no_change.wall.as_secs_f64() / floor.as_secs_f64(),
        no_change.data_writes()
    );
    Ok(())
}
