#!/usr/bin/env bash
# Runs a command beside a private PostgreSQL server: initdb in a temporary folder, pg_ctl
# listening on a Unix socket in that folder only (no TCP port, no system service), and
# the server stopped and the folder removed when the command ends, however it ends.
# The command sees DRISK_TEST_PG (the socket folder) and DRISK_TEST_PG_BIN (the server's
# binaries); tests/store_target.h turns them into a fresh database per test store.
# Exits 77, which ctest reports as skipped, when PostgreSQL's server binaries are missing
# (Debian: apt-get install -y postgresql; .ci/run installs it).
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ] || [ ! -x "$bin/pg_ctl" ]; then
  echo "skipped: PostgreSQL's server binaries (initdb, pg_ctl) are not installed:" \
       "apt-get install -y postgresql" >&2
  exit 77
fi
dir=$(mktemp -d /tmp/drisk-pg.XXXXXX)
as=()
if [ "$(id -u)" = 0 ]; then # initdb refuses root: the server runs as Debian's postgres user
  chown postgres "$dir"
  as=(runuser -u postgres --)
fi
stop() {
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
"${as[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
  { cat "$dir/initdb.log" >&2; exit 1; }
# fsync off: a test server's data does not outlive the test (benchmarks set
# DRISK_PG_FSYNC=on: durable commits, as in production)
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=${DRISK_PG_FSYNC:-off} -c max_connections=300 ${DRISK_PG_OPTIONS:-}" \
  start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
set +e
DRISK_TEST_PG="$dir" DRISK_TEST_PG_BIN="$bin" "$@"
rc=$?
set -e
exit $rc
