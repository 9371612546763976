//! `ldap-sync-bench`: how close a `ldap.syncNow` run comes to the floor.
//!
//! ```text
//! cargo run --profile bench-host -p ldap-sync-host --bin ldap-sync-bench -- [--users N[,N...]] [--million] [--page-size P] [--skip-reads] [--groups] [--redis]
//! ```
//!
//! For each directory size (default 10,000 and 100,000 users; `--million`
//! adds 1,000,000):
//!
//! 1. Generates `inetOrgPerson` users (`uid=u00001..`, `cn`, `sn`, `mail`)
//!    under `ou=people,dc=example,dc=org` plus the service account
//!    `cn=svc,dc=example,dc=org`, loads them into a throwaway OpenLDAP
//!    `slapd` with `slapadd`, with the `syncprov` overlay (RFC 4533, session
//!    log as long as the directory) and `cn=svc` exempt from size limits
//!    (slapd's default of 500 stays for everyone else).
//! 2. **The floor**: `ldapsearch` as `cn=svc`, paged at the same page size,
//!    with the sync's filter and attributes, output discarded; best of 3
//!    (the first also warms slapd's cache for the runs that follow).
//! 3. Runs the real component (`target/wasm32-wasip2/release/ldap_sync.wasm`,
//!    built for release) in the test host (optimised with `--profile
//!    bench-host`; in the dev profile only its dependencies, wasmtime and
//!    SQLite, are) with a **file-backed** store in a fresh
//!    temp dir (SQLite with `fsync` per transaction, as Spin's default
//!    store), and an admin seeded as the e2e tests do. Each run is one whole
//!    `POST /api/v1/ldap.syncNow` through the host:
//!    * **full (first)**: an empty store, every user is created;
//!    * **full, no change**: nothing changed; nothing but the report (and
//!      the run's lease) may be written;
//!    * **syncrepl, no cookie**: `ldap_sync_mode=syncrepl` for the first
//!      time: an RFC 4533 refresh of the whole content (every user known by
//!      its sync mark); it stores the cookie;
//!    * **syncrepl, no change**: a refresh from the cookie, nothing changed;
//!    * then a **change round** with `ldapmodify`: 0.5% of the users get a
//!      new `cn`, 0.5% are renamed (`modrdn` to a new `uid`), 0.5% deleted,
//!      and 0.5% new users are added;
//!    * **syncrepl, after changes**: only the changes arrive;
//!    * **full, after syncrepl**: a full read must find every user unchanged
//!      (the incremental run left the store as a full run would).
//!
//! Per run it prints: wall time, users/s (directory entries / wall time),
//! the ratio to the floor, store keys read and written and the write
//! transactions (`fsync`s: [`ldap_sync_host::kv::Writes::commits`]), the
//! guest's peak linear memory ([`ldap_sync_host::Response::guest_memory_peak`]),
//! the report's counts (checked: the bench fails when they are not what they
//! must be), and the guest's own phase breakdown from the report's `phases`:
//! LDAP wait, BER decode, mapping, store reads, JSON decode, planning, store
//! writes. Then the targets of issue #10, each met or not.
//!
//! After the largest size it times the read routes (`--skip-reads` leaves
//! this out): `users.list?count=50` (first call: scan and index; then
//! indexed), `users.info?importId=`, against `GET /api/v1/me` and one
//! host-side `get`.
//!
//! `--groups` runs only the group-heavy case instead (`bench/groups.rs`).
//!
//! Any failure (slapd, a status other than 200, a failed run, counts that are
//! not what they must be) ends the bench with a message and a non-zero exit.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use ldap_sync_host::demo::{DEMO_PEOPLE_BASE, DEMO_SUFFIX, DEMO_SVC_DN, DEMO_SVC_PASSWORD, demo_variables};
use ldap_sync_host::fixture::{LocalAdmin, SYNC_IN_PROGRESS, directory_root_ldif, person_ldif, variables};
use ldap_sync_host::kv::{DEFAULT_DB_FILE, Reads, Writes};
use ldap_sync_host::redis_server::RedisServer;
use ldap_sync_host::slapd::{Slapd, SlapdOptions};
use ldap_sync_host::{Host, HostOptions, Response};
use serde_json::{Value, json};

const USAGE: &str = "\
usage: ldap-sync-bench [--users N[,N...]] [--million] [--page-size P] [--skip-reads] [--groups] [--redis]

  --users N,...  directory sizes to run, in users (default 10000,100000)
  --million      also run 1,000,000 users (slow: about 10 minutes and 3 GiB of disk)
  --page-size P  ldap_search_page_size, the RFC 2696 page size (default 1000)
  --skip-reads   do not time users.list and users.info after the syncs
  --groups       only the group-heavy case: 100,000 users, 1,000 groups,
                 200,000 memberships, roles from every group (issue #11)
  --redis        the store on a local redis-server (as Spin's Redis provider,
                 with kv_batch_reads=false) instead of SQLite

For each size: the ldapsearch floor, then a first, an unchanged and a
changed full ldap.syncNow run against a local slapd, with ratios to the floor,
store traffic, fsyncs, guest peak memory and the phase breakdown.
";

// The demo directory's layout and service account, so its variables apply.
const SUFFIX: &str = DEMO_SUFFIX;
const BASE: &str = DEMO_PEOPLE_BASE;
/// The caller of every run, seeded as the e2e tests seed theirs.
const ADMIN: LocalAdmin = LocalAdmin { id: "admin", password: "bench-admin-pw", login_token: "bench-login-token" };
/// The sync's filter and attributes under the demo variables (its log says so).
const FLOOR_FILTER: &str = "(&(objectclass=*)(uid=*))";
const FLOOR_ATTRS: [&str; 7] = ["entryUUID", "uid", "mail", "cn", "userAccountControl", "loginDisabled", "orclIsEnabled"];
/// Issue #10's guest memory target.
const MEMORY_TARGET: u64 = 8 << 20;

#[path = "bench/groups.rs"]
mod groups;

#[derive(Debug)]
struct Args {
    sizes: Vec<usize>,
    page_size: u32,
    reads: bool,
    /// Only the group-heavy case (`--groups`).
    groups: bool,
    /// The store on Redis (`--redis`).
    redis: bool,
}

/// Parses the command line; `Ok(None)` means `--help` was asked for.
fn parse_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Args>> {
    let mut out = Args { sizes: vec![10_000, 100_000], page_size: 1000, reads: true, groups: false, redis: false };
    let mut million = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| match inline.clone() {
            Some(v) => Ok(v),
            None => args.next().with_context(|| format!("{name} needs a value")),
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--skip-reads" => out.reads = false,
            "--groups" => out.groups = true,
            "--redis" => out.redis = true,
            "--million" => million = true,
            "--users" => {
                let v = value("--users")?;
                out.sizes = v
                    .split(',')
                    .map(|n| n.replace('_', "").parse::<usize>().with_context(|| format!("--users {v:?}: {n:?} is not a number")))
                    .collect::<anyhow::Result<_>>()?;
                ensure!(
                    out.sizes.iter().all(|n| *n >= 200),
                    "--users: every size must be at least 200 (the change round touches 0.5% of each)"
                );
            }
            "--page-size" => {
                let v = value("--page-size")?;
                out.page_size = v.parse().with_context(|| format!("--page-size {v:?} is not a number"))?;
            }
            _ => bail!("unknown argument {arg:?}\n\n{USAGE}"),
        }
    }
    if million {
        out.sizes.push(1_000_000);
    }
    Ok(Some(out))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ldap-sync-bench: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The `uid` of user `i` (1-based): `u00001`, wider past 99,999 users.
fn uid(i: usize, width: usize) -> String {
    format!("u{i:0width$}")
}

fn user_ldif(i: usize, width: usize) -> String {
    let u = uid(i, width);
    person_ldif(&format!("uid={u}"), &u, &format!("User {u}"), &u, &[&format!("{u}@example.org")])
}

/// The directory: suffix, service account, `ou=people` and `n` users.
fn directory(n: usize, width: usize) -> String {
    let mut l = directory_root_ldif();
    l.reserve(n * 160);
    for i in 1..=n {
        l.push_str(&user_ldif(i, width));
    }
    l
}

/// A change round and what a full run must report after it.
struct ChangeRound {
    ldif: String,
    modified: usize,
    renamed: usize,
    deleted: usize,
    added: usize,
}

/// 0.5% each: `cn` replaced, renamed (`modrdn` to `uid=<uid>r`), deleted,
/// and new users added after the last one.
fn change_round(n: usize, width: usize) -> ChangeRound {
    let each = (n / 200).max(1);
    let mut l = String::with_capacity(each * 400);
    for k in 0..each {
        let base = k * 200;
        let u = uid(base + 1, width);
        let _ = write!(l, "dn: uid={u},{BASE}\nchangetype: modify\nreplace: cn\ncn: User {u} (changed)\n\n");
        let u = uid(base + 51, width);
        let _ = write!(l, "dn: uid={u},{BASE}\nchangetype: modrdn\nnewrdn: uid={u}r\ndeleteoldrdn: 1\n\n");
        let u = uid(base + 101, width);
        let _ = write!(l, "dn: uid={u},{BASE}\nchangetype: delete\n\n");
        let add = user_ldif(n + k + 1, width);
        let _ = write!(l, "{}", add.replacen("\nobjectClass:", "\nchangetype: add\nobjectClass:", 1));
    }
    ChangeRound { ldif: l, modified: each, renamed: each, deleted: each, added: each }
}

/// The demo directory's variables, with the page size under test, and the
/// time budget and run deadline out of the way: each run is measured whole
/// (at 1,000,000 users a first sync takes longer than a hosted request may).
fn bench_variables(port: u16, page_size: u32) -> BTreeMap<String, String> {
    variables(demo_variables(port).into_iter().chain([
        ("ldap_search_page_size", page_size.to_string()),
        ("ldap_sync_time_budget_ms", "86400000".to_owned()),
        ("ldap_sync_run_timeout", "86400000".to_owned()),
    ]))
}

/// A fresh directory under `$TMPDIR`, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<Self> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("ldap-sync-bench-{}-{nanos}", std::process::id()));
        fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The floor: `ldapsearch` reading what the sync reads, paged, output discarded.
fn floor(slapd: &Slapd, page_size: u32) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let status = Command::new("ldapsearch")
            .env("LDAPNOINIT", "1")
            .args(["-x", "-LLL", "-o", "ldif-wrap=no", "-H", &slapd.url(), "-D", DEMO_SVC_DN, "-w", DEMO_SVC_PASSWORD, "-b", BASE])
            .args(["-E", &format!("pr={page_size}/noprompt"), FLOOR_FILTER])
            .args(FLOOR_ATTRS)
            .stdout(Stdio::null())
            .status()
            .context("running ldapsearch (apt-get install ldap-utils)")?;
        ensure!(status.success(), "ldapsearch failed: {status}");
        best = best.min(started.elapsed());
    }
    Ok(best)
}

/// One timed sync.
struct Run {
    name: String,
    wall: Duration,
    entries: u64,
    counts: (u64, u64, u64),
    reads: Reads,
    writes: Writes,
    memory: u64,
    phases: Value,
    report: Value,
}

impl Run {
    fn users_per_s(&self) -> f64 {
        self.entries as f64 / self.wall.as_secs_f64()
    }

    /// Keys written besides the report and the lease (`sync-lease`, its slots).
    fn data_writes(&self) -> u64 {
        self.report["phases"]["kvWriteKeys"].as_u64().unwrap_or(u64::MAX)
    }
}

/// Expected report counts: (created, updated, unchanged).
type Expect = (u64, u64, u64);

fn sync_once(rt: &tokio::runtime::Runtime, host: &Host, name: &str, entries: u64, expect: Expect) -> anyhow::Result<Run> {
    let req = ADMIN.sync_now_request()?;
    let (reads_before, writes_before) = (host.kv_store().reads(), host.kv_store().writes());
    let started = Instant::now();
    let res = rt.block_on(host.send(req)).with_context(|| format!("{name}: the host did not answer"))?;
    let wall = started.elapsed();
    let (reads, writes) = (host.kv_store().reads().since(&reads_before), host.kv_store().writes().since(&writes_before));
    ensure!(
        res.status == 200 && res.text() == SYNC_IN_PROGRESS,
        "{name}: ldap.syncNow answered {} {}{}",
        res.status,
        res.text(),
        res.error.as_deref().map(|e| format!(" (guest error: {e})")).unwrap_or_default()
    );
    let report: Value = host
        .kv_get("sync-report:last")?
        .with_context(|| format!("{name}: no sync-report:last after the run"))
        .and_then(|v| serde_json::from_slice(&v).context("sync-report:last is not JSON"))?;
    let count = |field: &str| -> anyhow::Result<u64> {
        report[field].as_u64().with_context(|| format!("{name}: sync-report:last has no {field}: {report}"))
    };
    let counts = (count("created")?, count("updated")?, count("unchanged")?);
    ensure!(
        report["outcome"] == json!("success")
            && count("failed")? == 0
            && count("skipped")? == 0
            && count("entries")? == entries
            && counts == expect
            && report.get("deactivated").is_none(),
        "{name}: the report is not what it must be (expected {entries} entries, \
         created/updated/unchanged {expect:?}, nothing failed, skipped or deactivated): {report}"
    );
    Ok(Run {
        name: name.to_owned(),
        wall,
        entries,
        counts,
        reads,
        writes,
        memory: res.guest_memory_peak,
        phases: report["phases"].clone(),
        report,
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// What one directory size gave.
struct SizeResult {
    n: usize,
    floor: Duration,
    runs: Vec<Run>,
}

fn run() -> anyhow::Result<()> {
    let Some(args) = parse_args(std::env::args().skip(1))? else {
        print!("{USAGE}");
        return Ok(());
    };
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "ldap-sync-bench: sizes {:?}, page size {}, {cores} CPU(s), host {} build, component release (target/wasm32-wasip2/release/ldap_sync.wasm)",
        args.sizes,
        args.page_size,
        if cfg!(debug_assertions) { "dev (dependencies optimised)" } else { "release" },
    );
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the tokio runtime")?;
    if args.groups {
        return groups::bench_groups(&rt, &args);
    }
    let mut results = Vec::new();
    let last = args.sizes.len().saturating_sub(1);
    for (i, &n) in args.sizes.iter().enumerate() {
        results.push(bench_size(&rt, &args, n, i == last && args.reads)?);
    }
    println!();
    targets(&results);
    Ok(())
}

fn bench_size(rt: &tokio::runtime::Runtime, args: &Args, n: usize, reads: bool) -> anyhow::Result<SizeResult> {
    let width = n.to_string().len().max(5);
    println!();
    println!("=== {n} users ===");
    let ldif = directory(n, width);
    let ldif_bytes = ldif.len();
    let started = Instant::now();
    let slapd = Slapd::start(SlapdOptions {
        suffix: SUFFIX.into(),
        // slapd's own default, written out so that paged searches are unlimited.
        size_limit: Some(500),
        ldif,
        syncprov: Some(u32::try_from(n).unwrap_or(u32::MAX)),
        unlimited: vec![DEMO_SVC_DN.to_owned()],
        ..SlapdOptions::default()
    })
    .context("starting slapd")?;
    let load = slapd.load_time().context("slapd loaded no LDIF")?;
    println!(
        "slapadd: {n} users ({:.1} MiB LDIF) in {:.2} s; slapd up {:.2} s later",
        mib(ldif_bytes as u64),
        load.as_secs_f64(),
        started.elapsed().saturating_sub(load).as_secs_f64()
    );
    let floor = floor(&slapd, args.page_size)?;
    println!(
        "floor: ldapsearch, paged by {}, {:.3} s ({:.0} users/s)",
        args.page_size,
        floor.as_secs_f64(),
        n as f64 / floor.as_secs_f64()
    );

    let state = TempDir::new()?;
    let db = state.0.join(DEFAULT_DB_FILE);
    let opts = HostOptions {
        state_dir: Some(state.0.clone()),
        variables: bench_variables(slapd.port(), args.page_size),
        ..HostOptions::default()
    };
    let opts = if args.redis {
        let server = std::sync::Arc::new(RedisServer::start()?);
        println!("store: Redis at {} (kv_batch_reads=false)", server.url());
        server.host_options(opts)?
    } else {
        opts
    };
    let mut host = Host::new(opts).context("starting the host")?;
    ADMIN.seed(&host)?;
    let n64 = n as u64;
    let mut runs = Vec::new();
    host.set_variable("ldap_sync_mode", "full")?;
    runs.push(sync_once(rt, &host, "full (first)", n64, (n64, 0, 0))?);
    runs.push(sync_once(rt, &host, "full, no change", n64, (0, 0, n64))?);
    host.set_variable("ldap_sync_mode", "syncrepl")?;
    runs.push(sync_once(rt, &host, "syncrepl, no cookie", n64, (0, 0, n64))?);
    runs.push(sync_once(rt, &host, "syncrepl, no change", 0, (0, 0, 0))?);
    let round = change_round(n, width);
    let started = Instant::now();
    slapd.modify(&round.ldif).context("ldapmodify")?;
    println!(
        "change round: {} modified, {} renamed, {} deleted, {} added, in {:.2} s",
        round.modified,
        round.renamed,
        round.deleted,
        round.added,
        started.elapsed().as_secs_f64()
    );
    let after = n64 - round.deleted as u64 + round.added as u64;
    let changed = (round.modified + round.renamed) as u64;
    let added = round.added as u64;
    runs.push(sync_once(rt, &host, "syncrepl, after changes", changed + added, (added, changed, 0))?);
    // The full read finds nothing left to do: the incremental run did it all.
    host.set_variable("ldap_sync_mode", "full")?;
    runs.push(sync_once(rt, &host, "full, after syncrepl", after, (0, 0, after))?);

    println!(
        "{:<22} {:>7} {:>9} {:>8} {:>10} {:>10} {:>7} {:>9} {:>8} {:>8} {:>9}",
        "run", "wall s", "users/s", "x floor", "keys read", "keys wrtn", "fsyncs", "mem MiB", "created", "updated", "unchanged"
    );
    for r in &runs {
        println!(
            "{:<22} {:>7.2} {:>9.0} {:>8.2} {:>10} {:>10} {:>7} {:>9.2} {:>8} {:>8} {:>9}",
            r.name,
            r.wall.as_secs_f64(),
            r.users_per_s(),
            r.wall.as_secs_f64() / floor.as_secs_f64(),
            r.reads.keys_touched(),
            r.writes.set_many_keys + r.writes.sets + r.writes.delete_many_keys + r.writes.deletes,
            r.writes.commits,
            mib(r.memory),
            r.counts.0,
            r.counts.1,
            r.counts.2
        );
    }
    println!();
    println!("phases (guest, ms):");
    const PHASES: [(&str, &str); 7] = [
        ("ldapWaitUs", "LDAP wait"),
        ("berDecodeUs", "BER decode"),
        ("mapUs", "map"),
        ("kvReadUs", "KV read"),
        ("jsonDecodeUs", "JSON decode"),
        ("planUs", "plan"),
        ("kvWriteUs", "KV write"),
    ];
    print!("{:<22}", "run");
    for (_, label) in PHASES {
        print!(" {label:>11}");
    }
    println!(" {:>11} {:>9}", "by mark", "guest ms");
    for r in &runs {
        print!("{:<22}", r.name);
        for (field, _) in PHASES {
            print!(" {:>11.0}", r.phases[field].as_u64().unwrap_or(0) as f64 / 1000.0);
        }
        println!(" {:>11} {:>9}", r.phases["unchangedByMark"].as_u64().unwrap_or(0), r.report["durationMs"].as_u64().unwrap_or(0));
    }
    match host.kv_store().redis() {
        Some(_) => println!("store: {} keys on Redis", host.kv_keys()?.len()),
        None => {
            let size = fs::metadata(&db).map_or(0, |m| m.len());
            println!("store: {} keys, {:.1} MiB SQLite file", host.kv_keys()?.len(), mib(size));
        }
    }
    if reads {
        println!();
        read_routes(rt, &host, n + round.added, width)?;
    }
    Ok(SizeResult { n, floor, runs })
}

/// Issue #10's targets, each met or not, on the largest size at or under
/// 100,000 users, and the scaling across sizes.
fn targets(results: &[SizeResult]) {
    println!("targets (issue #10):");
    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    let Some(main) = results.iter().filter(|r| r.n <= 100_000).max_by_key(|r| r.n).or(results.first()) else {
        return;
    };
    let ratio = |r: &Run| r.wall.as_secs_f64() / main.floor.as_secs_f64();
    if let Some(first) = main.runs.first() {
        println!("  full sync <= 3x floor at {}: {:.2}x, {}", main.n, ratio(first), verdict(ratio(first) <= 3.0));
    }
    if let Some(same) = main.runs.get(1) {
        let writes = same.data_writes();
        println!(
            "  no-change full scan <= 1.5x floor, 0 writes besides the report at {}: {:.2}x, {} data keys written, {}",
            main.n,
            ratio(same),
            writes,
            verdict(ratio(same) <= 1.5 && writes == 0)
        );
    }
    let find = |name: &str| main.runs.iter().find(|r| r.name == name);
    if let Some(r) = find("syncrepl, no change") {
        println!("  incremental, no change <= 5% of floor at {}: {:.1}%, {}", main.n, ratio(r) * 100.0, verdict(ratio(r) <= 0.05));
    }
    if let Some(r) = find("syncrepl, after changes") {
        println!("  incremental, one change round <= 10% of floor at {}: {:.1}%, {}", main.n, ratio(r) * 100.0, verdict(ratio(r) <= 0.10));
    }
    let peak = results.iter().flat_map(|r| r.runs.iter()).map(|r| r.memory).max().unwrap_or(0);
    println!("  guest memory <= 8 MiB at every size: peak {:.2} MiB, {}", mib(peak), verdict(peak <= MEMORY_TARGET));
    let rate = |r: &SizeResult| r.runs.first().map_or(0.0, Run::users_per_s);
    if let (Some(small), Some(big)) = (results.iter().find(|r| r.n == 100_000), results.iter().find(|r| r.n == 1_000_000)) {
        let drop = 1.0 - rate(big) / rate(small);
        println!(
            "  users/s at 1,000,000 within 20% of 100,000: {:.0} vs {:.0} ({:+.0}%), {}",
            rate(big),
            rate(small),
            -drop * 100.0,
            verdict(drop <= 0.2)
        );
    } else {
        println!("  linear to 1,000,000: not measured (run with --million)");
    }
}

/// A request through the host that is not a sync, timed, with the store
/// reads it made.
struct Call {
    name: String,
    wall: Duration,
    reads: Reads,
}

/// `GET path` as [`ADMIN`].
fn admin_get(path: &str) -> anyhow::Result<http::Request<Vec<u8>>> {
    http::Request::get(path)
        .header("x-user-id", ADMIN.id)
        .header("x-auth-token", ADMIN.login_token)
        .body(Vec::new())
        .with_context(|| format!("building GET {path}"))
}

/// Sends `GET path` as the admin `samples` times; `check` judges each
/// response. Returns the median call (by wall time).
fn time_get(
    rt: &tokio::runtime::Runtime,
    host: &Host,
    name: &str,
    path: &str,
    samples: usize,
    check: &dyn Fn(&Response) -> anyhow::Result<()>,
) -> anyhow::Result<Call> {
    let mut calls = Vec::with_capacity(samples);
    for _ in 0..samples {
        let req = admin_get(path)?;
        let before = host.kv_store().reads();
        let started = Instant::now();
        let res = rt.block_on(host.send(req)).with_context(|| format!("{name}: the host did not answer"))?;
        let wall = started.elapsed();
        let reads = host.kv_store().reads().since(&before);
        ensure!(
            res.status == 200,
            "{name}: GET {path} answered {} {}{}",
            res.status,
            res.text(),
            res.error.as_deref().map(|e| format!(" (guest error: {e})")).unwrap_or_default()
        );
        check(&res).with_context(|| format!("{name}: GET {path}"))?;
        calls.push(Call { name: name.to_owned(), wall, reads });
    }
    calls.sort_by_key(|c| c.wall);
    let median = calls.len() / 2;
    calls.into_iter().nth(median).with_context(|| format!("{name}: no samples"))
}

/// Percent-encodes everything but ASCII letters and digits (a query value).
fn query_value(text: &str) -> String {
    text.bytes().fold(String::with_capacity(text.len() * 3), |mut s, b| {
        if b.is_ascii_alphanumeric() {
            s.push(char::from(b));
        } else {
            // Writing into a String cannot fail.
            let _ = write!(s, "%{b:02X}");
        }
        s
    })
}

/// Step 4: `users.list` and `users.info?importId=` on the synced store,
/// against two floors (a whole `me` request and one host-side `get`).
fn read_routes(rt: &tokio::runtime::Runtime, host: &Host, n: usize, width: usize) -> anyhow::Result<()> {
    // Every generated user plus the admin, who has a username too.
    let total = n as u64 + 1;
    let page = |offset: u64| {
        move |res: &Response| -> anyhow::Result<()> {
            let body = res.try_json()?;
            let rows = body["users"].as_array().map_or(0, Vec::len) as u64;
            let want = total.saturating_sub(offset).min(50);
            ensure!(body["total"] == json!(total) && rows == want, "expected {want} of {total} users, got {rows} of {}", body["total"]);
            Ok(())
        }
    };
    let list = "/api/v1/users.list?count=50";
    let last_offset = total.saturating_sub(50);
    let last = format!("{list}&offset={last_offset}");
    let dn = format!("uid={},{BASE}", uid(n.div_ceil(2), width));
    let info = format!("/api/v1/users.info?importId={}", query_value(&dn));
    let holds_dn = |res: &Response| -> anyhow::Result<()> {
        let body = res.try_json()?;
        ensure!(body["user"]["importIds"].as_array().is_some_and(|ids| ids.contains(&json!(dn))), "not the user of {dn}: {body}");
        Ok(())
    };
    let is_admin = |res: &Response| -> anyhow::Result<()> {
        ensure!(res.try_json()?["username"] == json!(ADMIN.id), "not the admin: {}", res.text());
        Ok(())
    };

    let calls = [
        time_get(rt, host, "users.list, 1st (scan + index)", list, 1, &page(0))?,
        time_get(rt, host, "users.list, 2nd (index)", list, 1, &page(0))?,
        time_get(rt, host, "users.list (index), median of 5", list, 5, &page(0))?,
        time_get(rt, host, "users.list last page (index)", &last, 1, &page(last_offset))?,
        time_get(rt, host, "users.info?importId=, median of 5", &info, 5, &holds_dn)?,
        time_get(rt, host, "me (floor), median of 5", "/api/v1/me", 5, &is_admin)?,
    ];

    // The floor of floors: one get of one key, host-side, no component.
    const GETS: u32 = 1_000;
    let key = format!("user:{}", ADMIN.id);
    let started = Instant::now();
    for _ in 0..GETS {
        host.kv_get(&key)?.with_context(|| format!("{key} is missing"))?;
    }
    let get = started.elapsed() / GETS;
    let me = calls[5].wall;

    println!("read routes at {n} users (as the admin; count=50, default sort):");
    println!(
        "{:<36} {:>9} {:>10} {:>7} {:>6} {:>9} {:>10} {:>11} {:>5}",
        "call", "wall ms", "x get", "x me", "gets", "get-many", "many keys", "keys listed", "incr"
    );
    for c in &calls {
        let r = &c.reads;
        println!(
            "{:<36} {:>9.2} {:>10.0} {:>7.1} {:>6} {:>9} {:>10} {:>11} {:>5}",
            c.name,
            c.wall.as_secs_f64() * 1000.0,
            c.wall.as_secs_f64() / get.as_secs_f64(),
            c.wall.as_secs_f64() / me.as_secs_f64(),
            r.gets,
            r.get_many_calls,
            r.get_many_keys,
            r.keys_listed,
            r.increments
        );
    }
    println!();
    println!(
        "x get = wall / one host-side get of {key} ({:.1} us, mean of {GETS}); x me = wall / GET /api/v1/me \
         (the smallest authenticated request, {:.2} ms)",
        get.as_secs_f64() * 1e6,
        me.as_secs_f64() * 1000.0
    );
    Ok(())
}
