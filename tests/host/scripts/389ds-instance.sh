#!/bin/bash
# 389ds-instance.sh DIR PORT -- a throwaway 389 Directory Server (Debian 12's 389-ds-base 2.3) with
# RFC 4533 Content Synchronization, everything under DIR, LDAP on 127.0.0.1:PORT, root DN
# "cn=Directory Manager" / $DS_ROOT_PW, suffix $DS_SUFFIX. Creates the instance, then execs ns-slapd in
# the foreground: the caller owns the process, polls for readiness (the root DSE announcing the Sync
# Request control: dscreate briefly runs a server of its own on PORT) and kills it when done.
# Used by tests/host/src/ds389.rs; needs `apt-get install --no-install-recommends 389-ds-base`.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 DIR PORT" >&2; exit 2; }
DIR=$(realpath -m "$1"); PORT=$2
NAME=${DS_NAME:-test}                      # instance name (letters, digits, _ -)
PW=${DS_ROOT_PW:-Secret123}                # >= 8 chars
SUFFIX=${DS_SUFFIX:-dc=example,dc=org}
CONF=$DIR/etc/dirsrv/slapd-$NAME
[ -e "$DIR/etc" ] && { echo "start.sh: $DIR already holds an instance" >&2; exit 1; }

# 1. A private "prefix": lib389 reads $PREFIX/share/dirsrv/inf/defaults.inf and finds instances at
#    $PREFIX/etc/dirsrv/slapd-NAME, so every path (and with_systemd=0) is redirected into DIR.
mkdir -p "$DIR"/{share/dirsrv/inf,etc/dirsrv,run,lock,log,var,tmp,inst}
cp -r /etc/dirsrv/schema /etc/dirsrv/config "$DIR/etc/dirsrv/"
sed -e "s#^with_systemd = .*#with_systemd = 0#" \
    -e "s#^sysconf_dir = .*#sysconf_dir = $DIR/etc#" -e "s#^initconfig_dir = .*#initconfig_dir = $DIR/etc/default#" \
    -e "s#= /etc/dirsrv/#= $DIR/etc/dirsrv/#" -e "s#= /run/dirsrv#= $DIR/run#" -e "s#= /run/slapd-#= $DIR/run/slapd-#" \
    -e "s#= /run/lock/dirsrv/#= $DIR/lock/#" -e "s#= /var/log/dirsrv/#= $DIR/log/#" -e "s#= /var/lib/dirsrv/#= $DIR/var/#" \
    -e "s#= /dev/shm/#= $DIR/var/shm-#" -e "s#^local_state_dir = .*#local_state_dir = $DIR/var#" \
    -e "s#^tmp_dir = .*#tmp_dir = $DIR/tmp#" -e "s#^tmpfiles_d = .*#tmpfiles_d = $DIR/tmpfiles.d#" \
    -e "s#^inst_dir = .*#inst_dir = $DIR/inst/slapd-{instance_name}#" \
    /usr/share/dirsrv/inf/defaults.inf > "$DIR/share/dirsrv/inf/defaults.inf"

# ns-slapd rejects an ldapi path of >= 104 chars even with ldapi off; dscreate needs ldapi on.
LDAPI=$DIR/run/ldapi; [ ${#LDAPI} -lt 100 ] || LDAPI=$(mktemp -u /tmp/389ldapi.XXXXXX)
cat > "$DIR/instance.inf" <<EOF
[general]
full_machine_name = localhost
start = False
strict_host_checking = False
selinux = False
systemd = False
[slapd]
instance_name = $NAME
port = $PORT
; never bound (TLS stays off); set to PORT so dscreate's "is 636 free?" check cannot fail
secure_port = $PORT
user = $(id -un)
group = $(id -gn)
root_dn = cn=Directory Manager
root_password = $PW
self_sign_cert = False
ldapi = $LDAPI
[backend-userroot]
suffix = $SUFFIX
create_suffix_entry = True
EOF
# dscreate briefly runs the server (all interfaces, PORT) to configure it, then stops it.
PREFIX=$DIR DEBUGGING=${DS_DEBUG:-} /usr/sbin/dscreate from-file "$DIR/instance.inf" > "$DIR/dscreate.log" 2>&1 \
  || { rm -f "$LDAPI"; echo "start.sh: dscreate failed, see $DIR/dscreate.log" >&2; tail -5 "$DIR/dscreate.log" >&2; exit 1; }

rm -f "$LDAPI"
# 2. Offline dse.ldif edits (server is stopped).
/usr/bin/python3 - "$CONF/dse.ldif" <<'PY'
import os, sys
p = sys.argv[1]
R, A = "replace", "add"
EDITS = [
  ("cn=config", "nsslapd-listenhost", "127.0.0.1", R),
  ("cn=config", "nsslapd-ldapilisten", "off", R),
  ("cn=config", "nsslapd-accesslog-logbuffering", "off", R),
  ("cn=Retro Changelog Plugin,cn=plugins,cn=config", "nsslapd-pluginEnabled", "on", R),
  ("cn=Retro Changelog Plugin,cn=plugins,cn=config", "nsslapd-attribute", "nsuniqueid:targetUniqueId", A),
  ("cn=Retro Changelog Plugin,cn=plugins,cn=config", "nsslapd-attribute", "entryuuid:targetEntryUUID", A),
  ("cn=Content Synchronization,cn=plugins,cn=config", "nsslapd-pluginEnabled", "on", R),
  ("cn=Content Synchronization,cn=plugins,cn=config", "syncrepl-allow-openldap", "on", R),
  ("cn=bdb,cn=config,cn=ldbm database,cn=plugins,cn=config", "nsslapd-cache-autosize", "0", R),
  ("cn=bdb,cn=config,cn=ldbm database,cn=plugins,cn=config", "nsslapd-dbcachesize", "16777216", R),
]
lines = []
for ln in open(p, encoding="utf-8").read().split("\n"):      # unfold continuation lines
    if ln.startswith(" ") and lines: lines[-1] += ln[1:]
    else: lines.append(ln)
blocks, cur = [], []
for ln in lines + [""]:
    if ln: cur.append(ln)
    elif cur: blocks.append(cur); cur = []
key = lambda s: s.replace(" ", "").lower()
for dn, attr, val, mode in EDITS:
    b = next((b for b in blocks if key(b[0]) == key("dn:" + dn)), None)
    if b is None: sys.exit("dse edit: missing entry " + dn)
    if mode == R: b[:] = [l for l in b if not l.lower().startswith(attr.lower() + ":")]
    if f"{attr}: {val}".lower() not in (l.lower() for l in b): b.append(f"{attr}: {val}")
open(p + ".new", "w", encoding="utf-8").write("".join("\n".join(b) + "\n\n" for b in blocks))
os.replace(p + ".new", p)
PY

# 3. Run. -d <level> keeps ns-slapd from detaching; 266354688 is the default error-log level
#    (-d 0 would silence the error log completely). Log also goes to stderr.
CMD=(/usr/sbin/ns-slapd -D "$CONF" -i "$DIR/run/ns-slapd.pid" -d 266354688)
exec "${CMD[@]}"
