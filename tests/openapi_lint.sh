#!/usr/bin/env bash
# api/openapi.yaml must lint with no errors and no warnings under Redocly CLI's
# recommended rules (from the npm registry, pinned; npx caches it after the first run).
set -u
SPEC=$1
command -v npx >/dev/null || { echo "FAIL: npx is not installed (drisk.sh test installs npm)"; exit 1; }
OUT=$(timeout 300 npx --yes @redocly/cli@1.25.0 lint --format=stylish "$SPEC" 2>&1)
RC=$?
echo "$OUT" | tail -20
[ $RC -eq 0 ] || { echo "FAIL: redocly lint exit $RC"; exit 1; }
if echo "$OUT" | grep -qE "(error|warning) +[a-z]"; then
  echo "FAIL: the spec has lint warnings"; exit 1
fi
echo "ok: $SPEC lints clean"
