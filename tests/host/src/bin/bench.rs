//! `ldap-sync-bench`: how fast a full `ldap.syncNow` run is, end to end.
//!
//! ```text
//! cargo run -p ldap-sync-host --bin ldap-sync-bench -- [--users N] [--page-size P]
//! ```
//!
//! What it does:
//!
//! 1. Generates a directory of `N` `inetOrgPerson` users (default 10,000:
//!    `uid=u00001..`, `cn`, `sn`, `mail`) under `ou=people,dc=example,dc=org`
//!    plus the service account `cn=svc,dc=example,dc=org`, loads it into a
//!    throwaway OpenLDAP `slapd` with `slapadd` (timed on its own) and starts
//!    the server. The sync binds as `cn=svc` (not the rootdn, which no limit
//!    applies to); slapd keeps its default size limit of 500, which the fixture
//!    states explicitly with paged searches unlimited, so only the RFC 2696
//!    paged search sees everyone, as against a real server.
//! 2. Runs the real component (`target/wasm32-wasip2/release/ldap_sync.wasm`)
//!    in the test host with a **file-backed** key-value store in a fresh temp
//!    dir (`sqlite_key_value.db` under `$TMPDIR`, SQLite with its default
//!    journal and `fsync` per transaction, as Spin's default store), and an
//!    admin seeded as the e2e tests do (login token, bcrypt cost 4, second
//!    factor = SHA-256 of the password). Page size: `--page-size` (default 250,
//!    the component's default).
//! 3. Times three `POST /api/v1/ldap.syncNow` calls, each a whole HTTP request
//!    through the host (fresh instance, gate, bind, paged search, batched
//!    writes, report):
//!    * **first**: an empty store, every user is created;
//!    * **no change**: nothing changed in the directory, nothing is written
//!      but the report;
//!    * **no change + missing check**: the same with
//!      `ldap_background_sync_disable_missing_users=true`: the run also reads
//!      the last complete read's members (`sync-members` and its ~N/1,000
//!      chunks, stored by every complete read) and compares; nobody is
//!      missing, so it writes nothing more either. The switch goes off again
//!      for the next run;
//!    * **1% changed**: `cn` of every 100th user replaced with `ldapmodify`
//!      (one LDIF, timed separately), then the same call.
//! 4. Times the read routes on the synced store, as the same admin (who
//!    bypasses the rate limiter and sees the `full` listing):
//!    * `users.list?count=50` (default sort) twice: the **first** call finds
//!      no listing index, so it lists every key, reads every user and writes
//!      the index; the **second** pages through the index. Then the median
//!      of 5 more indexed calls, and one for the last page;
//!    * `users.info?importId=<dn>` of the middle user (median of 5): two
//!      reads through the `import-id:` index;
//!    * the floors they are compared with: `GET /api/v1/me` (the smallest
//!      authenticated request: a fresh instance, the token's session and the
//!      user document) and one `get` of `user:admin` straight on the store
//!      from the host (no component at all; mean of 1,000).
//!
//!    Each call's store reads are counted by the host's store
//!    ([`ldap_sync_host::kv::Reads`]): single `get`s, `get-many` calls and the
//!    keys they asked for, key listings and the keys they returned. `--skip-reads`
//!    leaves step 4 out.
//!
//! How to read the output. Per run: wall time of the request, the store
//! reads and writes it made (`get-many` calls and keys, `set-many` calls
//! and keys, counted by the host's store: [`ldap_sync_host::kv::Writes`]), `users/s` =
//! directory entries read (`entries` in `sync-report:last`) / wall seconds,
//! the component's own `durationMs` from the report, the report's
//! created/updated/unchanged counts (checked against what they must be: the
//! bench fails otherwise), the number of keys in the store and the size of the
//! SQLite file after the run. `× best peer` divides users/s by 15, the best
//! field figure of the open-source peers (`peers.md`: 1–15 users/s). The
//! first run is also compared with a design that writes one key at a time:
//! about 4 writes per user at ~1,500 `set`/s on Spin's SQLite store
//! (`spin-platform.md` §10), i.e. `4·N/1500` seconds. Peak RSS is `VmHWM` of
//! this process: the host runs the guest in-process (wasmtime, the compiled
//! component, SQLite), so it covers host and guest; slapd is a separate
//! process and not included.
//!
//! Any failure (slapd, a status other than 200, a failed run, counts that are
//! not what they must be, a listing of the wrong size) ends the bench with a
//! message and a non-zero exit.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use ldap_sync_host::demo::{DEMO_PEOPLE_BASE, DEMO_SUFFIX, demo_variables};
use ldap_sync_host::fixture::{LocalAdmin, SYNC_IN_PROGRESS, directory_root_ldif, person_ldif, variables};
use ldap_sync_host::kv::{DEFAULT_DB_FILE, Reads, Writes};
use ldap_sync_host::slapd::{Slapd, SlapdOptions};
use ldap_sync_host::{Host, HostOptions, Response};
use serde_json::{Value, json};

const USAGE: &str = "\
usage: ldap-sync-bench [--users N] [--page-size P] [--skip-reads]

  --users N      users in the generated directory (default 10000)
  --page-size P  ldap_search_page_size, the RFC 2696 page size (default 250)
  --skip-reads   do not time users.list and users.info after the syncs

Times a first, an unchanged (also with the missing-users check) and a 1%-changed
ldap.syncNow run against a local slapd,
then users.list (count=50, first call and indexed) and users.info?importId= on the result.
";

// The demo directory's layout and service account, so its variables apply.
const SUFFIX: &str = DEMO_SUFFIX;
const BASE: &str = DEMO_PEOPLE_BASE;
/// The caller of every run, seeded as the e2e tests seed theirs.
const ADMIN: LocalAdmin = LocalAdmin { id: "admin", password: "bench-admin-pw", login_token: "bench-login-token" };

/// Best field throughput of the open-source peers (peers.md §2: 1–15 users/s).
const BEST_PEER_USERS_PER_S: f64 = 15.0;
/// Single-key `set`s per second on Spin 4's SQLite store (spin-platform.md §10).
const SINGLE_SETS_PER_S: f64 = 1_500.0;
/// Key writes per created user in a one-key-at-a-time design (spin-platform.md §10).
const WRITES_PER_USER: f64 = 4.0;

#[derive(Debug)]
struct Args {
    users: usize,
    page_size: u32,
    reads: bool,
}

/// Parses the command line; `Ok(None)` means `--help` was asked for.
fn parse_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Args>> {
    let mut out = Args { users: 10_000, page_size: 250, reads: true };
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
            "--users" => {
                let v = value("--users")?;
                out.users = v.replace('_', "").parse().with_context(|| format!("--users {v:?} is not a number"))?;
                ensure!(out.users >= 1, "--users must be at least 1");
            }
            "--page-size" => {
                let v = value("--page-size")?;
                out.page_size = v.parse().with_context(|| format!("--page-size {v:?} is not a number"))?;
            }
            _ => bail!("unknown argument {arg:?}\n\n{USAGE}"),
        }
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

/// The directory: suffix, service account, `ou=people` and `n` users.
fn directory(n: usize, width: usize) -> String {
    let mut l = directory_root_ldif();
    l.reserve(n * 160);
    for i in 1..=n {
        let u = uid(i, width);
        l.push_str(&person_ldif(&format!("uid={u}"), &u, &format!("User {u}"), &u, &[&format!("{u}@example.org")]));
    }
    l
}

/// `ldapmodify` records replacing `cn` of every 100th user (at least one).
fn modifications(n: usize, width: usize) -> (usize, String) {
    let count = (n / 100).max(1);
    let step = n / count;
    let mut l = String::with_capacity(count * 120);
    for k in 1..=count {
        let u = uid(k * step, width);
        // Writing into a String cannot fail.
        let _ = write!(l, "dn: uid={u},{BASE}\nchangetype: modify\nreplace: cn\ncn: User {u} (renamed)\n\n");
    }
    (count, l)
}

/// The demo directory's variables, with the page size under test.
fn bench_variables(port: u16, page_size: u32) -> BTreeMap<String, String> {
    variables(demo_variables(port).into_iter().chain([("ldap_search_page_size", page_size.to_string())]))
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

/// One timed sync.
struct Run {
    name: &'static str,
    wall: Duration,
    guest_ms: u64,
    entries: u64,
    created: u64,
    updated: u64,
    unchanged: u64,
    keys: usize,
    db_bytes: u64,
    peak_rss_kib: u64,
    reads: Reads,
    writes: Writes,
}

impl Run {
    fn users_per_s(&self) -> f64 {
        self.entries as f64 / self.wall.as_secs_f64()
    }
}

/// Expected report counts: (created, updated, unchanged).
type Expect = (u64, u64, u64);

fn sync_once(rt: &tokio::runtime::Runtime, host: &Host, db: &Path, name: &'static str, n: usize, expect: Expect) -> anyhow::Result<Run> {
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
    let run = Run {
        name,
        wall,
        guest_ms: count("durationMs")?,
        entries: count("entries")?,
        created: count("created")?,
        updated: count("updated")?,
        unchanged: count("unchanged")?,
        keys: host.kv_keys()?.len(),
        db_bytes: fs::metadata(db).with_context(|| format!("reading the size of {}", db.display()))?.len(),
        peak_rss_kib: peak_rss_kib()?,
        reads,
        writes,
    };
    ensure!(
        report["outcome"] == json!("success")
            && count("failed")? == 0
            && count("skipped")? == 0
            && run.entries == n as u64
            && (run.created, run.updated, run.unchanged) == expect
            && report.get("deactivated").is_none()
            && report.get("offboarding").is_none(),
        "{name}: the report is not what it must be (expected {n} entries, \
         created/updated/unchanged {expect:?}, nothing failed, skipped or deactivated): {report}"
    );
    Ok(run)
}

/// `VmHWM` of this process (peak resident set), KiB.
fn peak_rss_kib() -> anyhow::Result<u64> {
    let status = fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM line in /proc/self/status")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn run() -> anyhow::Result<()> {
    let Some(args) = parse_args(std::env::args().skip(1))? else {
        print!("{USAGE}");
        return Ok(());
    };
    let n = args.users;
    let width = n.to_string().len().max(5);
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "ldap-sync-bench: {n} users, page size {}, {cores} CPU(s), {} build",
        args.page_size,
        if cfg!(debug_assertions) { "dev (debug host, optimised deps)" } else { "release" }
    );

    // 1. The directory.
    let ldif = directory(n, width);
    let ldif_bytes = ldif.len();
    let started = Instant::now();
    let slapd = Slapd::start(SlapdOptions {
        suffix: SUFFIX.into(),
        // slapd's own default, written out so that paged searches are unlimited
        // (without it the paged total is capped at 500 too, see slapd.conf(5)).
        size_limit: Some(500),
        ldif,
        ..SlapdOptions::default()
    })
    .context("starting slapd")?;
    let slapd_total = started.elapsed();
    let load = slapd.load_time().context("slapd loaded no LDIF")?;
    println!(
        "slapadd: {n} users ({:.1} MiB LDIF) in {:.2} s ({:.0} entries/s); slapd up {:.2} s later",
        mib(ldif_bytes as u64),
        load.as_secs_f64(),
        (n + 3) as f64 / load.as_secs_f64(),
        slapd_total.saturating_sub(load).as_secs_f64()
    );

    // 2. The host, with a file-backed store.
    let state = TempDir::new()?;
    let db = state.0.join(DEFAULT_DB_FILE);
    let started = Instant::now();
    let mut host = Host::new(HostOptions {
        state_dir: Some(state.0.clone()),
        variables: bench_variables(slapd.port(), args.page_size),
        ..HostOptions::default()
    })
    .context("starting the host")?;
    println!("host: component compiled in {:.2} s; store {}", started.elapsed().as_secs_f64(), db.display());
    ADMIN.seed(&host)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the tokio runtime")?;

    // 3. Three runs.
    let mut runs = Vec::new();
    runs.push(sync_once(&rt, &host, &db, "first (all new)", n, (n as u64, 0, 0))?);
    runs.push(sync_once(&rt, &host, &db, "no change", n, (0, 0, n as u64))?);
    host.set_variable("ldap_background_sync_disable_missing_users", "true")?;
    runs.push(sync_once(&rt, &host, &db, "+ missing check", n, (0, 0, n as u64))?);
    host.set_variable("ldap_background_sync_disable_missing_users", "false")?;
    let (changed, mods) = modifications(n, width);
    let started = Instant::now();
    slapd.modify(&mods).context("ldapmodify")?;
    println!("ldapmodify: {changed} cn changes in {:.2} s", started.elapsed().as_secs_f64());
    let c = changed as u64;
    runs.push(sync_once(&rt, &host, &db, "1% changed", n, (0, c, n as u64 - c))?);

    // 4. The table and the ratios.
    println!();
    println!(
        "{:<16} {:>8} {:>9} {:>10} {:>9} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8}",
        "run", "wall s", "guest s", "users/s", "x peer", "created", "updated", "unchanged", "KV keys", "DB MiB", "RSS MiB"
    );
    for r in &runs {
        println!(
            "{:<16} {:>8.2} {:>9.2} {:>10.0} {:>9.0} {:>8} {:>8} {:>9} {:>8} {:>8.1} {:>8.0}",
            r.name,
            r.wall.as_secs_f64(),
            r.guest_ms as f64 / 1000.0,
            r.users_per_s(),
            r.users_per_s() / BEST_PEER_USERS_PER_S,
            r.created,
            r.updated,
            r.unchanged,
            r.keys,
            mib(r.db_bytes),
            r.peak_rss_kib as f64 / 1024.0
        );
    }
    println!();
    println!("x peer = users/s / {BEST_PEER_USERS_PER_S:.0} (best open-source peer, peers.md: 1-15 users/s)");
    println!();
    println!(
        "{:<16} {:>6} {:>9} {:>10} {:>9} {:>10} {:>7} {:>12}",
        "store per run", "gets", "get-many", "many keys", "set-many", "keys set", "incr", "keys deleted"
    );
    for r in &runs {
        let (rd, wr) = (&r.reads, &r.writes);
        println!(
            "{:<16} {:>6} {:>9} {:>10} {:>9} {:>10} {:>7} {:>12}",
            r.name,
            rd.gets,
            rd.get_many_calls,
            rd.get_many_keys,
            wr.set_many_calls,
            wr.set_many_keys + wr.sets,
            rd.increments,
            wr.delete_many_keys + wr.deletes
        );
    }
    let (plain, checked) = (&runs[1], &runs[2]);
    let members = host.kv_keys()?.iter().filter(|k| k.starts_with("sync-members")).count();
    println!(
        "missing-users check at {n} users: {:.2} s against {:.2} s unchanged ({:+.2} s); +{} get-many calls, +{} keys read, \
         +{} keys written; the members baseline is {members} keys (sync-members and its chunks of 1,000 ids), read by \
         every complete run, switch on or off",
        checked.wall.as_secs_f64(),
        plain.wall.as_secs_f64(),
        checked.wall.as_secs_f64() - plain.wall.as_secs_f64(),
        checked.reads.get_many_calls.saturating_sub(plain.reads.get_many_calls),
        checked.reads.keys_touched().saturating_sub(plain.reads.keys_touched()),
        (checked.writes.set_many_keys + checked.writes.sets).saturating_sub(plain.writes.set_many_keys + plain.writes.sets),
    );
    let first = &runs[0];
    let estimate = WRITES_PER_USER * n as f64 / SINGLE_SETS_PER_S;
    println!(
        "first sync vs one key per set: {:.2} s measured, ~{estimate:.1} s estimated for \
         {WRITES_PER_USER:.0} x {n} single sets at ~{SINGLE_SETS_PER_S:.0}/s \
         (spin-platform.md section 10): {:.1}x faster",
        first.wall.as_secs_f64(),
        estimate / first.wall.as_secs_f64()
    );
    println!(
        "peak RSS (VmHWM): {:.0} MiB, host and guest together (the guest runs in-process in \
         wasmtime); slapd is a separate process, not counted",
        peak_rss_kib()? as f64 / 1024.0
    );
    if args.reads {
        println!();
        read_routes(&rt, &host, n, width)?;
    }
    Ok(())
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
