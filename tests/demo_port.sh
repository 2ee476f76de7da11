#!/usr/bin/env bash
# drisk.sh demo when its address is taken: exit 2 with a message naming the address, and
# the database it would have rebuilt left untouched (it used to be deleted first).
set -u
DRISK_SH=$1 SCRATCH=$2
mkdir -p "$SCRATCH"
DB=$SCRATCH/demo.db
echo "precious" > "$DB"
# take a free port with a listener of our own
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $PORT)); s.listen(8); time.sleep(30)" &
HOLDER=$!
trap 'kill $HOLDER 2>/dev/null' EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
OUT=$(DRISK_DB="$DB" DRISK_LISTEN="127.0.0.1:$PORT" "$DRISK_SH" demo 2>&1)
RC=$?
fail=0
[ "$RC" -eq 2 ] || { echo "FAIL: exit $RC, want 2"; fail=1; }
case "$OUT" in *"127.0.0.1:$PORT is already in use"*) ;; *) echo "FAIL: message: $OUT"; fail=1 ;; esac
[ "$(cat "$DB" 2>/dev/null)" = precious ] || { echo "FAIL: $DB was touched"; fail=1; }
[ $fail -eq 0 ] && echo "demo_port: ok"
exit $fail
