#!/usr/bin/env bash
# drisk report comparing three learners, rendered by headless Chromium as an analyst's
# browser would: every inline SVG must be well-formed XML, the page must load without a
# console error and show its sections, and the screenshot is kept (SCRATCH/report.png).
set -u
DRISK=$1 SCRATCH=$2
mkdir -p "$SCRATCH"
DB=$SCRATCH/report.db
PAGE=$SCRATCH/report.html
rm -f "$DB" "$DB"-wal "$DB"-shm "$PAGE" "$SCRATCH/report.png"
fail() { echo "FAIL: $*"; exit 1; }
"$DRISK" --quiet simulate --db "$DB" --shipments 6000 --seed 5 --days 90 2>/dev/null || fail simulate
for m in gbdt logreg mlp; do
  "$DRISK" --quiet train --db "$DB" --target late --until 2025-03-10 --model "$m" --hidden 16,8 \
    --members 2 2>/dev/null >/dev/null || fail "train $m"
done
"$DRISK" --quiet report --db "$DB" --target late --models 1,2,3 --out "$PAGE" 2>"$SCRATCH/report.err" ||
  fail "report: $(cat "$SCRATCH/report.err")"
python3 - "$PAGE" <<'PY' || exit 1
import re, sys, xml.etree.ElementTree as ET
page = open(sys.argv[1], encoding="utf-8").read()
svgs = re.findall(r"<svg.*?</svg>", page, re.S)
if len(svgs) < 3:
    sys.exit(f"FAIL: {len(svgs)} inline SVG plots, want ROC, PR and reliability")
for s in svgs:
    try:
        root = ET.fromstring(s)
    except ET.ParseError as e:
        sys.exit(f"FAIL: an SVG is not well-formed: {e}")
    ticks = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text") if t.text] or \
            [t.text for t in root.iter("text") if t.text]
    if not {"0.0", "0.2", "1.0"} <= set(ticks):
        sys.exit("FAIL: a plot without its axis ticks")
    if sum("model" in t for t in ticks) < 3:
        sys.exit("FAIL: a plot's legend does not name the three models")
for want in ("ROC curve", "Precision-recall curve", "Reliability (10 bins)", "Threshold sweep",
             "When alerts come", "Money: the claim policy backtested", "Slices", "by lane",
             "by week", "Feature importance", "Drift</h2>", "model 3 (mlp)"):
    if want not in page:
        sys.exit(f"FAIL: the page lacks {want!r}")
if re.search(r"<script|src=\"http|href=\"http", page):
    sys.exit("FAIL: the page is not self-contained")
PY
BROWSER=$(command -v chromium || command -v chromium-browser) || fail "chromium is not installed (drisk.sh test installs it)"
FLAGS=(--headless --no-sandbox --disable-gpu --hide-scrollbars --enable-logging=stderr --v=0)
timeout 120 "$BROWSER" "${FLAGS[@]}" --dump-dom "file://$PAGE" >"$SCRATCH/dom.html" 2>"$SCRATCH/chromium.log" ||
  fail "chromium could not load the page: $(tail -3 "$SCRATCH/chromium.log")"
grep -q "<h1>drisk report: late, 3 models</h1>" "$SCRATCH/dom.html" || fail "the rendered DOM lacks the title"
if grep -E "CONSOLE|Uncaught|ERR_FILE|net::ERR" "$SCRATCH/chromium.log" | grep -v "dbus" ; then
  fail "the page logged errors while loading"
fi
timeout 120 "$BROWSER" "${FLAGS[@]}" --window-size=1200,2600 --screenshot="$SCRATCH/report.png" \
  "file://$PAGE" >/dev/null 2>>"$SCRATCH/chromium.log" || fail "no screenshot"
SIZE=$(stat -c %s "$SCRATCH/report.png" 2>/dev/null || echo 0)
[ "$SIZE" -gt 20000 ] || fail "the screenshot is $SIZE bytes: a blank page?"
echo "ok: report rendered, screenshot $SCRATCH/report.png ($SIZE bytes)"
