#!/usr/bin/env bash
# drisk's two set-up commands (CONTRACT §1), for a fresh Debian 12 machine:
#   ./drisk.sh demo   build, simulate a shipment history into drisk.db, train and evaluate
#   ./drisk.sh test   build with -Werror and run the ctest suite
# Each installs the Debian packages it is missing first (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")"

BUILD_PACKAGES=(gcc make cmake pkg-config libopenblas-dev libsvm-dev libsqlite3-dev
                libcjson-dev libmicrohttpd-dev)
TEST_PACKAGES=(sqlite3)

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
    install_missing "${BUILD_PACKAGES[@]}" sqlite3
    say "building"
    build build
    DB=${DRISK_DB:-drisk.db}
    N=${DRISK_DEMO_SHIPMENTS:-100000}
    rm -f "$DB" "$DB-wal" "$DB-shm"
    say "simulating $N shipments over 2024-2025 into $DB (drisk simulate; same seed, same history)"
    ./build/drisk simulate --db "$DB" --shipments "$N" --seed 42 --start 2024-01-01 --days 730
    say "what $DB holds (drisk stats)"
    ./build/drisk stats --db "$DB"
    for target in late lost eta; do
      say "training $target on shipments created before 2025-07-01 (drisk train)"
      ./build/drisk train --db "$DB" --target "$target" --until 2025-07-01
      say "evaluating $target on the shipments created after (drisk eval)"
      ./build/drisk eval --db "$DB" --target "$target"
    done
    cat >&2 <<MSG

Try next:
  ./build/drisk --help
  ./build/drisk models --db $DB list
  ./build/drisk eval --db $DB --target late --predictions late_predictions.csv
  ./build/drisk simulate --db my.db --shipments 5000 --export ./history   # interchange CSVs
  ./build/drisk import --db olist.db --shipments ../shared/datasets/olist/shipments.csv \\
                       --scans ../shared/datasets/olist/scans.csv
  sqlite3 $DB 'SELECT carrier, count(*) FROM shipments GROUP BY carrier'
MSG
    ;;
  test)
    install_missing "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    say "building with -Werror"
    build build -DDRISK_WERROR=ON
    say "running the test suite (ctest, all labels but slow)"
    ctest --test-dir build --output-on-failure -LE slow -j"$(jobs)"
    ;;
  *)
    echo "usage: $0 demo|test" >&2
    exit 2
    ;;
esac
