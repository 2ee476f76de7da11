#!/usr/bin/env bash
# drisk's two set-up commands (CONTRACT §1), for a fresh Debian 12 machine:
#   ./drisk.sh demo   build, simulate a shipment history into drisk.db, train and evaluate,
#                     then run the scoring server on 127.0.0.1:8080 with curl examples
#   ./drisk.sh test   build with -Werror and run the ctest suite
# Each installs the Debian packages it is missing first (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")"

BUILD_PACKAGES=(gcc make cmake pkg-config libopenblas-dev libsvm-dev libsqlite3-dev
                libcjson-dev libmicrohttpd-dev libcurl4-openssl-dev libpq-dev)
# python3: tests/demo_port.sh holds a port with it; chromium: tests/report_render.sh;
# python3-jsonschema, python3-yaml: tests/spec_check.py validates API responses
TEST_PACKAGES=(sqlite3 python3 chromium python3-jsonschema python3-yaml)

say() { printf '==> %s\n' "$*" >&2; }

install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  say "installing missing Debian packages: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "drisk.sh: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

jobs() { nproc 2>/dev/null || echo 2; }

build() { # build DIR [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$dir" -j"$(jobs)"
}

case "${1:-}" in
  demo)
    DB=${DRISK_DB:-drisk.db}
    LISTEN=${DRISK_LISTEN:-127.0.0.1:8080}
    # before anything is built or deleted: is the address free?
    if (exec 3<>"/dev/tcp/${LISTEN%:*}/${LISTEN##*:}") 2>/dev/null; then
      echo "drisk.sh demo: $LISTEN is already in use, so the server could not start; $DB was" \
           "left as it is. Stop what listens there, or pick another address:" \
           "DRISK_LISTEN=127.0.0.1:8090 ./drisk.sh demo" >&2
      exit 2
    fi
    install_missing "${BUILD_PACKAGES[@]}" sqlite3 curl
    say "building"
    build build
    N=${DRISK_DEMO_SHIPMENTS:-100000}
    START=$(date -u -d "-730 days" +%Y-%m-%d)
    UNTIL=$(date -u -d "-180 days" +%Y-%m-%d)
    rm -f "$DB" "$DB-wal" "$DB-shm"
    say "simulating $N shipments over the last two years ($START to today) into $DB (drisk simulate)"
    ./build/drisk simulate --db "$DB" --shipments "$N" --seed 42 --start "$START" --days 730
    say "what $DB holds (drisk stats)"
    ./build/drisk stats --db "$DB"
    for target in late lost eta; do
      say "training $target on shipments created before $UNTIL (drisk train)"
      ./build/drisk train --db "$DB" --target "$target" --until "$UNTIL"
      say "evaluating $target on the shipments created after (drisk eval)"
      ./build/drisk eval --db "$DB" --target "$target"
    done
    say "creating an API key for the merchant acme-outdoor (drisk keys)"
    KEY=$(./build/drisk keys --db "$DB" create --merchant acme-outdoor | tail -1)
    SID=$(sqlite3 "$DB" "SELECT s.shipment_key FROM shipments s JOIN merchants m ON m.id = s.merchant_id
                         WHERE m.name = 'acme-outdoor' AND s.outcome IS NULL ORDER BY s.created_at DESC LIMIT 1")
    LOC=$(sqlite3 "$DB" "SELECT l.code FROM scans c JOIN locations l ON l.id = c.location_id
                         JOIN shipments s ON s.id = c.shipment_id WHERE s.shipment_key = '$SID'
                         ORDER BY c.ts DESC LIMIT 1")
    NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    URL=http://$LISTEN
    cat >&2 <<MSG

The scoring server starts now on $URL (Ctrl-C stops it). In another terminal:

  KEY=$KEY
  curl -s -w "\\n" $URL/healthz
  curl -s -w "\\n" -H "Authorization: Bearer \$KEY" $URL/v1/shipments/$SID
  curl -s -w "\\n" -H "Authorization: Bearer \$KEY" -d '{"scans":[{"shipment_id":"$SID","ts":"$NOW","event":"exception","reason":"weather_delay","location":"${LOC:-R01-HUB}"}]}' $URL/v1/scans
  curl -s -w "\\n" -H "Authorization: Bearer \$KEY" -d '{"carrier":"unipost","service":"standard","origin":"R01","destination":"R05","declared_value":120}' $URL/v1/score
  curl -s -w "\\n" -H "Authorization: Bearer \$KEY" "$URL/v1/alerts?limit=5"
  curl -s -w "\\n" -H "Authorization: Bearer \$KEY" "$URL/v1/recommendations?limit=5"
  curl -s -w "\\n" -H "Authorization: Bearer \$KEY" $URL/v1/settings
  curl -s $URL/metrics | grep drisk_http_requests_total

More: ./build/drisk --help, ./build/drisk models --db $DB list, api/openapi.yaml (every route),
docs/POLICY.md (alerts and recommendations).
MSG
    exec ./build/drisk serve --db "$DB" --listen "$LISTEN"
    ;;
  test)
    install_missing "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    # tests/openapi_lint.sh runs Redocly CLI through npx: Debian's npm when no npx is there
    # (a NodeSource node brings its own npx; Debian's npm would conflict with it)
    command -v npx >/dev/null || install_missing npm
    say "building with -Werror"
    build build -DDRISK_WERROR=ON
    say "running the test suite (ctest)"
    ctest --test-dir build --output-on-failure -j"$(jobs)"
    ;;
  *)
    echo "usage: $0 demo|test" >&2
    exit 2
    ;;
esac
