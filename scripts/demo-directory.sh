#!/bin/sh
# Serves the demo LDAP directory (OpenLDAP slapd, ldap://127.0.0.1:3389 by
# default) and prints the SPIN_VARIABLE_* lines that point ldap-sync at it.
# Arguments go to ldap-sync-demo-directory (--port PORT, --help).
# Press Enter to stop.
set -eu
if [ ! -x /usr/sbin/slapd ]; then
    echo "slapd not found (/usr/sbin/slapd): install it with: apt-get install slapd ldap-utils" >&2
    exit 1
fi
cd "$(dirname "$0")/.."
exec cargo run -q -p ldap-sync-host --bin ldap-sync-demo-directory -- "$@"
