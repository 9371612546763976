#!/usr/bin/env bash
# scheduled-sync.sh: one scheduled LDAP sync through ldap-sync's REST API, for cron or a Kubernetes CronJob
# (docs/deploy.md, "Scheduled syncs"). Needs bash >= 4.2, curl and python3 (standard library only).
#
# Environment:
#   LDAP_SYNC_URL          base URL of the app, e.g. http://127.0.0.1:3000
#   LDAP_SYNC_USER         the dedicated sync user (username or e-mail)
#   LDAP_SYNC_PASSWORD     its password
#   LDAP_SYNC_TOTP_SECRET  its TOTP secret, base32 (the `secret` that 2fa:enable returned)
#   LDAP_SYNC_TIMEOUT      optional: curl's --max-time per request, in seconds (default 600); also how long
#                          to wait for a run that another caller started
#
# Steps: log in (POST /api/v1/login with a TOTP code), POST /api/v1/ldap.syncNow, then
# GET /api/v1/ldap.syncStatus?count=1 until no run is in progress, and judge the newest report. The session is
# always ended (POST /api/v1/logout, from the EXIT trap), so tokens do not pile up.
#
# Exit status: 0 when the newest report has outcome "success" and fullyInSync true; 1 when the run failed,
# stopped (time budget) or is not fully in sync, or another caller's run was still going at the deadline;
# 2 on a usage, HTTP or login error.
#
# One line per step goes to stderr. The password, the login token and the TOTP secret are never printed, and
# never put on a command line: python3 reads them from the environment and curl reads the login body from its
# standard input and the token from a header file in a private temporary directory.
#
# TOTP: every code is claimed once per user. The server remembers the last accepted 30 s step
# (`totp-step:<_id>`, docs/kv-schema.md) and refuses that step and every earlier one as a replay, across all
# routes, and login demands a code too when TOTP is on. So login, ldap.syncNow and each ldap.syncStatus call
# cannot share a code: before each code the script waits for a 30 s step later than the last one it used
# (up to 30 s per request, so a run takes at least about a minute more than the sync itself). A run started
# within 30 s of the previous run's end (or of the enrolment) finds its first step used: login is refused as
# `totp-invalid`, and the script tries once more with the next step's code.
set -euo pipefail

readonly STEP_SECONDS=30

log() { printf 'scheduled-sync: %s\n' "$*" >&2; }
die() {
  local code=$1
  shift
  log "$*"
  exit "$code"
}

for var in LDAP_SYNC_URL LDAP_SYNC_USER LDAP_SYNC_PASSWORD LDAP_SYNC_TOTP_SECRET; do
  [[ -n ${!var:-} ]] || die 2 "usage: $var is not set (see the comment at the top of $0)"
done
export LDAP_SYNC_USER LDAP_SYNC_PASSWORD LDAP_SYNC_TOTP_SECRET
TIMEOUT=${LDAP_SYNC_TIMEOUT:-600}
[[ $TIMEOUT =~ ^[1-9][0-9]{0,5}$ ]] || die 2 "usage: LDAP_SYNC_TIMEOUT must be a whole number of seconds"
for tool in curl python3; do
  command -v "$tool" > /dev/null || die 2 "usage: $tool is not installed"
done
BASE=${LDAP_SYNC_URL%/}/api/v1

umask 077
WORK=$(mktemp -d "${TMPDIR:-/tmp}/scheduled-sync.XXXXXX")
USER_ID=
TOKEN=
LAST_STEP=-1
CODE=
HTTP_STATUS=

# ---------------------------------------------------------------------------------------------------------
# Helpers

# http METHOD PATH [BODY] [MAX_SECONDS]: one request with the headers in $WORK/headers. BODY "-" sends
# standard input as JSON. Sets HTTP_STATUS (000 when curl got no answer); the body lands in $WORK/body.
http() {
  local method=$1 path=$2 body=${3:-} max=${4:-$TIMEOUT}
  local args=(-sS -X "$method" -o "$WORK/body" -w '%{http_code}' --max-time "$max" -H "@$WORK/headers")
  if [[ -n $body ]]; then
    args+=(-H 'content-type: application/json' --data-binary "@$body")
  fi
  : > "$WORK/body"
  HTTP_STATUS=$(curl "${args[@]}" "$BASE/$path") || HTTP_STATUS=000
}

# headers [CODE]: the header file for the next request: always Accept, the token headers once logged in,
# and x-2fa-code when a code is given. Written with builtins only, so nothing shows up in `ps`.
headers() {
  {
    printf 'accept: application/json\n'
    if [[ -n $TOKEN ]]; then
      printf 'X-User-Id: %s\nX-Auth-Token: %s\n' "$USER_ID" "$TOKEN"
    fi
    if [[ -n ${1:-} ]]; then
      printf 'x-2fa-code: %s\n' "$1"
    fi
  } > "$WORK/headers"
}

# jget PATH: the value at a dotted path of the last response body (list items by index), printed as text
# (objects and lists as JSON, true/false as such); nothing when absent, null or not JSON.
jget() {
  python3 - "$WORK/body" "$1" << 'PY'
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        value = json.load(f)
except (OSError, ValueError):
    sys.exit(0)
for part in sys.argv[2].split("."):
    if isinstance(value, dict):
        value = value.get(part)
    elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
        value = value[int(part)]
    else:
        value = None
    if value is None:
        sys.exit(0)
if isinstance(value, bool):
    print("true" if value else "false")
elif isinstance(value, (dict, list)):
    print(json.dumps(value, separators=(",", ":")))
else:
    print(value)
PY
}

# why: a short account of an error body (Rocket.Chat's error / errorType / message / details), at most
# 300 characters. Only ever called on error bodies, which hold no token.
why() {
  python3 - "$WORK/body" << 'PY'
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        body = json.load(f)
except (OSError, ValueError):
    print("(no JSON body)")
    sys.exit(0)
if not isinstance(body, dict):
    print("(unexpected body)")
    sys.exit(0)
parts = [str(body[k]) for k in ("error", "errorType", "message") if body.get(k)]
details = body.get("details")
if isinstance(details, dict):
    parts += [f"{k}: {details[k]}" for k in ("error", "reason", "method") if details.get(k)]
text = "; ".join(dict.fromkeys(parts)) or "(no error text)"
print(text if len(text) <= 300 else text[:297] + "...")
PY
}

# totp STEP: the RFC 6238 code (HMAC-SHA-1, 6 digits, 30 s steps) of $LDAP_SYNC_TOTP_SECRET for STEP.
# The secret is read from the environment, never from the command line.
totp() {
  python3 - "$1" << 'PY'
import base64, binascii, hashlib, hmac, os, struct, sys
secret = "".join(os.environ["LDAP_SYNC_TOTP_SECRET"].split()).rstrip("=").upper()
try:
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
except (binascii.Error, ValueError):
    sys.exit(3)
if not key:
    sys.exit(3)
mac = hmac.new(key, struct.pack(">Q", int(sys.argv[1])), hashlib.sha1).digest()
offset = mac[-1] & 0x0F
print("%06d" % ((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000))
PY
}

# next_code: sets CODE to the code of a 30 s step later than the last one used, waiting for it if need be
# (the server refuses a step it has already accepted for this user; see the comment at the top).
next_code() {
  local now step
  printf -v now '%(%s)T' -1
  step=$((now / STEP_SECONDS))
  if ((step <= LAST_STEP)); then
    log "waiting $(((LAST_STEP + 1) * STEP_SECONDS - now + 1)) s for the next TOTP step (a used step is a replay)"
    while ((step <= LAST_STEP)); do
      # In the background, so that a signal (the trap: log out, exit 2) is handled without waiting for it.
      sleep $(((LAST_STEP + 1) * STEP_SECONDS - now + 1)) &
      wait $! || true
      printf -v now '%(%s)T' -1
      step=$((now / STEP_SECONDS))
    done
  fi
  CODE=$(totp "$step") || die 2 "usage: LDAP_SYNC_TOTP_SECRET is not a base32 secret"
  LAST_STEP=$step
}

# logout: ends the session (if any). Never fails: it runs from the EXIT trap.
# shellcheck disable=SC2329 # called by cleanup, which the EXIT trap runs
logout() {
  [[ -n $TOKEN ]] || return 0
  headers
  http POST logout "" 30
  TOKEN=
  USER_ID=
  if [[ $HTTP_STATUS == 200 ]]; then
    log "logged out"
  else
    log "logout failed (HTTP $HTTP_STATUS); the session expires after accounts_loginexpiration days," \
      "and a user keeps at most 10 sessions (the 11th login ends the oldest)"
  fi
}

# shellcheck disable=SC2329 # run by the EXIT trap
cleanup() {
  local status=$?
  trap - EXIT
  logout || true
  rm -rf "$WORK" || true
  exit "$status"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 2' INT TERM HUP

# ---------------------------------------------------------------------------------------------------------
# 1. Log in

# login_request: POST /api/v1/login with the user, the password and $CODE (the body built from the
# environment by python3, sent through standard input).
login_request() {
  headers
  http POST login - < <(
    CODE=$CODE python3 -c '
import json, os
print(json.dumps({"user": os.environ["LDAP_SYNC_USER"], "password": os.environ["LDAP_SYNC_PASSWORD"],
                  "code": os.environ["CODE"]}))'
  )
}

next_code # also checks that the secret decodes before anything is sent
log "logging in to $BASE as $LDAP_SYNC_USER"
login_request
if [[ $HTTP_STATUS == 401 && $(jget error) == totp-invalid ]]; then
  # This script keeps no state between runs, so the step of its first code may be one the server has
  # accepted already: the previous run's last request or the enrolment, less than 30 s ago. Once more,
  # with a code of the next step. (With a wrong secret, a run costs two of the five attempts.)
  log "login: the TOTP code was refused; its step may be used already (by a run or the enrolment within" \
    "the last 30 s): trying again with the next step's code"
  next_code
  login_request
fi
if [[ $HTTP_STATUS != 200 || $(jget success) != true ]]; then
  case $HTTP_STATUS in
    000) die 2 "login: no answer from $BASE within $TIMEOUT s" ;;
    429) die 2 "login: rate limited: $(why)" ;;
    *) die 2 "login failed (HTTP $HTTP_STATUS): $(why)" ;;
  esac
fi
USER_ID=$(jget data.userId)
TOKEN=$(jget data.authToken)
[[ -n $USER_ID && -n $TOKEN ]] || die 2 "login: the answer has no data.userId/data.authToken"
if [[ $(jget data.me.services.totp.enabled) != true ]]; then
  # Without TOTP, ldap.syncNow would demand the password's SHA-256 instead and count this code as a wrong one.
  die 2 "login: $LDAP_SYNC_USER has no TOTP enrolled (README, \"TOTP enrolment\"; docs/deploy.md)"
fi
log "logged in"

# ---------------------------------------------------------------------------------------------------------
# 2. Sync

next_code
headers "$CODE"
log "calling ldap.syncNow (the answer comes when the run ends; at most $TIMEOUT s)"
http POST ldap.syncNow
case $HTTP_STATUS in
  200)
    [[ $(jget message) == Sync_in_progress ]] || die 2 "ldap.syncNow: unexpected answer: $(why)"
    log "ldap.syncNow answered Sync_in_progress (this run ended, or another caller's run holds the lease)"
    ;;
  000) die 2 "ldap.syncNow: no answer within $TIMEOUT s (the run may go on in the app; raise LDAP_SYNC_TIMEOUT)" ;;
  *)
    if [[ $(jget error) == LDAP_Sync_failed ]]; then
      log "the sync failed: $(jget details.error)"
      exit 1
    fi
    if [[ $(jget details.method) == password ]]; then
      die 2 "ldap.syncNow refused (HTTP $HTTP_STATUS): $(why) (no TOTP: the password was asked for)"
    fi
    die 2 "ldap.syncNow refused (HTTP $HTTP_STATUS): $(why)"
    ;;
esac

# ---------------------------------------------------------------------------------------------------------
# 3. Status: wait while another caller's run is in progress, then judge the newest report

printf -v started '%(%s)T' -1
while :; do
  next_code
  headers "$CODE"
  http GET 'ldap.syncStatus?count=1'
  if [[ $HTTP_STATUS != 200 || $(jget success) != true ]]; then
    [[ $HTTP_STATUS == 000 ]] && die 2 "ldap.syncStatus: no answer within $TIMEOUT s"
    die 2 "ldap.syncStatus failed (HTTP $HTTP_STATUS): $(why)"
  fi
  [[ -z $(jget inProgress) ]] && break
  running="run $(jget inProgress.runId), phase $(jget inProgress.phase), $(jget inProgress.pages) pages"
  printf -v now '%(%s)T' -1
  if ((now - started >= TIMEOUT)); then
    log "another run is still in progress after $TIMEOUT s ($running); its outcome is unknown"
    exit 1
  fi
  log "another run is in progress ($running); asking again"
done

[[ -n $(jget reports.0.outcome) ]] || die 2 "ldap.syncStatus: no sync report yet"
summary=$(
  python3 - "$WORK/body" << 'PY'
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    r = json.load(f)["reports"][0]
n = lambda k: r.get(k, 0)
line = (f"run {r.get('runId', '?')}: {r.get('outcome')}, mode {r.get('mode') or '?'}, {n('entries')} entries, "
        f"{n('created')} created, {n('updated')} updated, {n('unchanged')} unchanged, {n('failed')} failed, "
        f"{n('deactivated')} deactivated, {n('durationMs')} ms, "
        f"fully in sync: {'yes' if r.get('fullyInSync') else 'no'}")
if r.get("modeNote"):
    line += f" ({r['modeNote']})"
if r.get("error"):
    error = str(r["error"])
    line += ": " + (error if len(error) <= 300 else error[:297] + "...")
print(line)
PY
)
outcome=$(jget reports.0.outcome)
if [[ $outcome == success && $(jget reports.0.fullyInSync) == true ]]; then
  log "$summary"
  exit 0
fi
case $outcome in
  stopped) log "$summary; the time budget (ldap_sync_time_budget_ms) ran out, the next call goes on" ;;
  *) log "$summary" ;;
esac
exit 1
