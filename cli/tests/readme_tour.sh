#!/usr/bin/env bash
# The README's five-minute tour, run as written and checked at every step against what the README
# says. Run by cli/tests/readme_tour.rs (as root, with the built binaries on PATH, port 5050 free);
# `gantry dev` stands for `scripts/dev`, which builds and then execs it. Prints "tour: ok" at the end.
set -euo pipefail

log=$(mktemp)
dev_pid=""
step() { echo "tour: $*"; }
fail() {
  echo "tour: FAILED: $*" >&2
  echo "--- gantry dev output ---" >&2
  cat "$log" >&2
  exit 1
}
# JSON from stdin, one Python expression of `d` on the command line.
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# Retries "$@" every 0.2 s for up to $1 seconds.
until_ok() {
  local secs=$1; shift
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.2
  done
}
start_cluster() {
  gantry dev >>"$log" 2>&1 &
  dev_pid=$!
  until_ok 30 curl -sf localhost:5050/ping || fail "gantry dev did not answer /ping"
  until_ok 30 grep -q "Press Ctrl-C" "$log" || fail "gantry dev printed no banner"
}
cleanup() {
  [ -n "$dev_pid" ] && kill -9 "$dev_pid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT
tour_pids() { # APP: the pids of APP's `sleep 3600` processes (not other ones on the machine), sorted
  for p in $(pgrep -f '^sleep 3600'); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "MARATHON_APP_ID=$1" && echo "$p"
  done | sort -n
}
none_of() { [ -z "$(tour_pids "$1")" ]; }

running() { # APP N: exactly N tasks of APP, all TASK_RUNNING
  [ "$(curl -s "localhost:5050/v2/apps/$1/tasks" | json 'sum(t["state"] == "TASK_RUNNING" for t in d["tasks"])')" = "$2" ] &&
    [ "$(curl -s "localhost:5050/v2/apps/$1/tasks" | json 'len(d["tasks"])')" = "$2" ]
}

step "start the dev cluster"
start_cluster
grep -q "API:         http://127.0.0.1:5050" "$log" || fail "the banner names the API"
grep -q "state dir:   /var/lib/gantry/dev" "$log" || fail "as root the state is in /var/lib/gantry/dev"
if grep -q "UI" "$log"; then fail "the banner promises no UI"; fi

step "create /hello with curl: 201 Created"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST localhost:5050/v2/apps -H 'Content-Type: application/json' -d '{
  "id": "/hello", "cmd": "python3 -m http.server $PORT0", "instances": 2,
  "cpus": 0.1, "mem": 64, "portDefinitions": [{"port": 0}]}')
[ "$code" = 201 ] || fail "POST /v2/apps answered $code"
until_ok 60 running hello 2 || fail "/hello did not reach 2 running tasks"
port=$(curl -s localhost:5050/v2/apps/hello/tasks | json 'd["tasks"][0]["ports"][0]')
until_ok 20 curl -sf "localhost:$port/" || fail "the http.server of /hello on port $port"

step "create /sleepy with the CLI, then look around"
gantry apps run /sleepy --cmd 'sleep 3600' --instances 3 | grep -qx "created /sleepy" || fail "gantry apps run"
until_ok 30 running sleepy 3 || fail "/sleepy did not reach 3 running tasks"
gantry apps list | grep -E '^/sleepy +3 +3 ' >/dev/null || fail "gantry apps list shows /sleepy 3 of 3: $(gantry apps list)"
[ "$(gantry tasks list | grep -c TASK_RUNNING)" = 5 ] || fail "gantry tasks list shows 5 running tasks"
gantry agents list | grep -q "127.0.0.1" || fail "gantry agents list shows the local agent"
[ "$(curl -s localhost:5050/v2/tasks | json 'len(d["tasks"])')" = 5 ] || fail "/v2/tasks"
[ "$(curl -s localhost:5050/master/state | json 'len(d["slaves"])')" = 1 ] || fail "/master/state"
curl -s localhost:5050/metrics/snapshot | json 'd["master/slaves_active"]' | grep -qx "1.0" || fail "/metrics/snapshot"

step "kill -9 a task: TASK_FAILED, lastTaskFailure, a replacement"
victim=$(tour_pids /sleepy | head -n 1)
[ -n "$victim" ] || fail "no sleep 3600 process of /sleepy"
kill -9 "$victim"
until_ok 30 sh -c 'curl -s localhost:5050/v2/apps/sleepy | grep -q lastTaskFailure' || fail "no lastTaskFailure"
curl -s localhost:5050/v2/apps/sleepy | json 'd["app"]["lastTaskFailure"]["state"]' | grep -qx TASK_FAILED ||
  fail "lastTaskFailure is TASK_FAILED"
until_ok 30 running sleepy 3 || fail "no replacement after the backoff"

step "kill -9 the whole cluster, start it again: same tasks, same processes"
ids_before=$(curl -s localhost:5050/v2/apps/sleepy/tasks | json 'sorted(t["id"] for t in d["tasks"])')
pids_before=$(tour_pids /sleepy)
kill -9 "$dev_pid"
wait "$dev_pid" 2>/dev/null || true
[ "$(tour_pids /sleepy | wc -l)" -ge 3 ] || fail "tasks survive the cluster's death"
start_cluster
until_ok 30 running sleepy 3 || fail "/sleepy re-adopted"
ids_after=$(curl -s localhost:5050/v2/apps/sleepy/tasks | json 'sorted(t["id"] for t in d["tasks"])')
[ "$ids_before" = "$ids_after" ] || fail "task ids changed: $ids_before -> $ids_after"
[ "$pids_before" = "$(tour_pids /sleepy)" ] || fail "the same processes run"
until_ok 30 running hello 2 || fail "/hello re-adopted"

step "too big to fit: accepted, waits, and says why"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST localhost:5050/v2/apps -H 'Content-Type: application/json' \
  -d '{"id": "/big", "cmd": "sleep 3600", "cpus": 64, "mem": 64}')
[ "$code" = 201 ] || fail "the oversized app is accepted ($code)"
until_ok 20 sh -c 'curl -s localhost:5050/v2/queue | grep -q "\"/big\""' || fail "/big is not in /v2/queue"
curl -s localhost:5050/v2/queue | json '[i for i in d["queue"] if i["app"]["id"] == "/big"][0]["processedOffersSummary"]["rejectSummaryLastOffers"][0]["reason"]' |
  grep -q cpus || fail "the queue says cpus fall short"
gantry apps list | grep -E '^/big ' | grep -q cpus || fail "gantry apps list says why /big waits: $(gantry apps list)"

step "a batch job: 204, runs once now, succeeds with exit code 0"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST localhost:5050/v1/scheduler/iso8601 -H 'Content-Type: application/json' -d \
  '{"name": "hello-job", "command": "echo hello from a job", "owner": ""}')
[ "$code" = 204 ] || fail "the job is accepted with 204 ($code)"
until_ok 20 sh -c '[ "$(curl -s localhost:5050/v1/scheduler/job/hello-job | python3 -c "import json,sys; print(json.load(sys.stdin)[\"successCount\"])")" = 1 ]' ||
  fail "hello-job succeeded once: $(curl -s localhost:5050/v1/scheduler/job/hello-job)"
[ "$(curl -s localhost:5050/v1/scheduler/job/hello-job/runs | json 'd["runs"][0]["exitCode"]')" = 0 ] ||
  fail "the run's exit code is 0"

step "cleanup: gantry apps rm deletes at once and waits until the tasks are killed"
gantry apps rm /sleepy | grep -q "^deleted /sleepy: deployment .* finished$" || fail "gantry apps rm /sleepy"
gantry apps rm /hello >/dev/null
gantry apps rm /big >/dev/null
[ "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE localhost:5050/v1/scheduler/job/hello-job)" = 204 ] ||
  fail "the job is deleted"
until_ok 30 none_of /sleepy || fail "/sleepy's processes are gone"
[ "$(curl -s localhost:5050/v2/apps | json 'len(d["apps"])')" = 0 ] || fail "no app is left"
until_ok 30 sh -c '[ "$(curl -s localhost:5050/v2/tasks | python3 -c "import json,sys; print(len(json.load(sys.stdin)[\"tasks\"]))")" = 0 ]' ||
  fail "no task is left"
kill -INT "$dev_pid"
wait "$dev_pid" 2>/dev/null || true
dev_pid=""
echo "tour: ok"
