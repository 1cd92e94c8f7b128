"""The unmodified `chronos-python` 1.2.1 client against a Chronos-compatible server: every call the
client makes (spec chronos-api.md section 5.1) and the scenarios of the client's own itests
(itests/chronos-python.feature: list, job stats, scheduler stats, graph, metrics, search), plus
update, run, a dependent job, delete_tasks, delete, and the client's errors: ChronosAPIError for an
unknown job, MissingFieldError / OneOfViolationError before any request. Prints `ok <scenario>`
per scenario; on the first failure prints `FAIL <scenario>: <why>` and exits 1.
Run as: python chronos_scenarios.py URL [USER PASSWORD] [--no-wait-run]
(or with CHRONOS_URL, CHRONOS_USER, CHRONOS_PASSWORD in the environment). --no-wait-run skips
waiting for the manual run to succeed (for a server without agents)."""
import csv
import logging
import os
import sys
import time
import traceback
import urllib.parse

import chronos

# The client logs every failed request at ERROR before raising; the expected failures below would
# otherwise print through logging's last-resort handler.
logging.getLogger("chronos").addHandler(logging.NullHandler())

args = [a for a in sys.argv[1:] if not a.startswith("--")]
wait_run = "--no-wait-run" not in sys.argv[1:]
url = args[0] if args else os.environ.get("CHRONOS_URL", "")
user = args[1] if len(args) > 1 else os.environ.get("CHRONOS_USER")
password = args[2] if len(args) > 2 else os.environ.get("CHRONOS_PASSWORD")
if not url:
    sys.exit("usage: chronos_scenarios.py URL [USER PASSWORD] [--no-wait-run]")
parsed = urllib.parse.urlsplit(url)
proto = parsed.scheme or "http"
# chronos-python takes servers as host:port and builds "<proto>://<server><path>".
server = (parsed.netloc + parsed.path).rstrip("/")

PARENT = "chronos-python-job"
CHILD = "chronos-python-child"
# The itests' trivial job (with the 2.x-only async and epsilon a 3.x server ignores), with a
# schedule that never comes due during the test (so only the manual run runs it).
JOB = {
    "async": False,
    "command": "echo chronos-python",
    "epsilon": "PT1M",
    "name": PARENT,
    "owner": "chronos-python@example.com",
    "disabled": False,
    "schedule": "R/2030-01-01T00:00:00Z/PT24H",
}
CHILD_JOB = {
    "command": "echo chronos-python child",
    "name": CHILD,
    "owner": "chronos-python@example.com",
    "disabled": False,
    "parents": [PARENT],
}
# Histogram keys of job_stat and the scheduler_stat_* call for each.
PERCENTILES = ["99th", "98th", "95th", "75th", "median", "mean"]
FRESH_STAT = {
    "histogram": {
        "median": 0.0,
        "98thPercentile": 0.0,
        "75thPercentile": 0.0,
        "95thPercentile": 0.0,
        "99thPercentile": 0.0,
        "count": 0,
        "mean": 0.0,
    },
    "taskStatHistory": [],
}


class Failed(Exception):
    pass


def check(cond, why):
    if not cond:
        raise Failed(why)


def eventually(what, probe, timeout=10.0):
    """Polls probe() until it returns a truthy value; Chronos makes a POSTed job visible only after
    its scheduler reloads (the itests sleep 0.5 s after add)."""
    deadline = time.time() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.time() > deadline:
            raise Failed("%s: not within %.0f s" % (what, timeout))
        time.sleep(0.2)


def expect_error(exc_type, call):
    try:
        call()
    except exc_type as e:
        return e
    raise Failed("expected %s" % exc_type.__name__)


def find(jobs, name):
    matches = [j for j in jobs if j.get("name") == name]
    check(len(matches) <= 1, "%d jobs named %s" % (len(matches), name))
    return matches[0] if matches else None


def graph_rows(client):
    text = client.scheduler_graph()
    check(isinstance(text, str), "scheduler_graph returned %r, not CSV text" % type(text))
    return [row for row in csv.reader(text.splitlines()) if row]


client = None
state = {}


def s_connect():
    global client
    client = chronos.connect(server, proto=proto, username=user, password=password)
    jobs = client.list()
    check(isinstance(jobs, list), "list returned %r" % (jobs,))
    for name in (PARENT, CHILD):
        check(find(jobs, name) is None, "job %s exists before the test" % name)


def s_add():
    check(client.add(dict(JOB)) is None, "add returned a value")


def s_list():
    job = eventually("job in list()", lambda: find(client.list(), PARENT))
    # chronos-sync-jobs compares every submitted key with the server's copy: the 3.x fields
    # must come back as sent (async and epsilon are 2.x only and absent in 3.x).
    for key in ("name", "command", "owner", "disabled", "schedule"):
        check(job.get(key) == JOB[key], "%s: sent %r, listed %r" % (key, JOB[key], job.get(key)))
    check(job.get("successCount") == 0 and job.get("errorCount") == 0, "fresh job counters %r" % job)
    check(job.get("lastSuccess") == "" and job.get("lastError") == "", "fresh job last* %r" % job)


def s_search_name():
    found = client.search(name=PARENT)
    check(find(found, PARENT) is not None, "search(name=%s) lacks it: %r" % (PARENT, found))
    found = client.search(name=PARENT.upper())
    check(find(found, PARENT) is not None, "search is not case-insensitive: %r" % (found,))
    found = client.search(name="no-such-chronos-python-job")
    check(find(found, PARENT) is None, "search for another name found it")


def s_search_command():
    found = client.search(command="echo chronos-python")
    check(find(found, PARENT) is not None, "search(command=..) lacks it: %r" % (found,))
    found = client.search(name=PARENT, command="no such command")
    check(find(found, PARENT) is None, "name and command filters are not ANDed")


def s_update():
    job = dict(JOB, command="echo chronos-python updated")
    check(client.update(job) is None, "update returned a value")
    listed = eventually(
        "updated command in list()",
        lambda: (lambda j: j if j and j.get("command") == job["command"] else None)(
            find(client.list(), PARENT)
        ),
    )
    check(listed.get("owner") == JOB["owner"], "owner lost in update: %r" % listed)
    found = client.search(command="chronos-python updated")
    check(find(found, PARENT) is not None, "search finds not the updated command")


def s_job_stat():
    stat = client.job_stat(PARENT)
    check(stat == FRESH_STAT, "fresh job_stat %r" % (stat,))


def s_scheduler_graph():
    rows = graph_rows(client)
    nodes = [r for r in rows if r[0] == "node" and r[1] == PARENT]
    check(len(nodes) == 1, "graph rows for %s: %r" % (PARENT, rows))
    check(len(nodes[0]) == 4 and nodes[0][2] == "fresh", "fresh node row %r" % nodes[0])


def s_scheduler_stats():
    for p in PERCENTILES:
        stats = getattr(client, "scheduler_stat_" + p)()
        check(isinstance(stats, list), "scheduler_stat_%s returned %r" % (p, stats))
        mine = [s for s in stats if s.get("jobNameLabel") == PARENT]
        check(mine == [{"jobNameLabel": PARENT, "time": 0.0}], "scheduler_stat_%s: %r" % (p, stats))
        times = [s.get("time") for s in stats]
        check(times == sorted(times, reverse=True), "scheduler_stat_%s not by time: %r" % (p, stats))


def s_add_dependent():
    check(client.add(dict(CHILD_JOB)) is None, "add returned a value")
    job = eventually("dependent job in list()", lambda: find(client.list(), CHILD))
    check(job.get("parents") == [PARENT], "parents %r" % (job.get("parents"),))
    check("schedule" not in job, "a dependent job has a schedule: %r" % job)
    rows = graph_rows(client)
    check(["link", PARENT, CHILD] in rows, "graph lacks the link: %r" % rows)
    check(any(r[0] == "node" and r[1] == CHILD for r in rows), "graph lacks the child: %r" % rows)


def s_metrics():
    metrics = client.metrics()
    check(isinstance(metrics, dict), "metrics returned %r" % type(metrics))
    for key in ("version", "gauges"):
        check(key in metrics, "metrics lack %r: %r" % (key, sorted(metrics)))


def s_run():
    check(client.run(PARENT) is None, "run returned a value")
    if not wait_run:
        return
    job = eventually(
        "a successful run (successCount 1)",
        lambda: (lambda j: j if j and j.get("successCount", 0) >= 1 else None)(
            find(client.list(), PARENT)
        ),
        timeout=60.0,
    )
    check(job.get("lastSuccess", "") > job.get("lastError", ""), "lastSuccess %r" % job)
    stat = client.job_stat(PARENT)
    check(stat["histogram"]["count"] >= 1, "job_stat after a run: %r" % (stat,))


def s_delete_tasks():
    check(client.delete_tasks(PARENT) is None, "delete_tasks returned a value")


def s_delete():
    check(client.delete(CHILD) is None, "delete returned a value")
    check(client.delete(PARENT) is None, "delete returned a value")
    eventually(
        "both jobs gone from list()",
        lambda: all(find(client.list(), n) is None for n in (PARENT, CHILD)),
    )
    # No graph check here: an empty graph is an empty 200 body, which the client raises on.


def s_error_unknown():
    # Any 4xx/5xx makes the client try the next server, then raise this (spec 5.1).
    expect_error(chronos.ChronosAPIError, lambda: client.delete("no-such-chronos-python-job"))
    expect_error(chronos.ChronosAPIError, lambda: client.run("no-such-chronos-python-job"))
    expect_error(chronos.ChronosAPIError, lambda: client.job_stat("no-such-chronos-python-job"))


def s_error_missing_field():
    for key in ("command", "name", "owner", "disabled"):
        job = dict(JOB)
        del job[key]
        expect_error(chronos.MissingFieldError, lambda: client.add(job))
    job = dict(JOB)
    del job["schedule"]
    expect_error(chronos.MissingFieldError, lambda: client.add(job))
    expect_error(chronos.OneOfViolationError, lambda: client.add(dict(JOB, parents=[PARENT])))
    # Client-side: nothing reached the server.
    check(find(client.list(), PARENT) is None, "a rejected job was created")


def s_error_credentials():
    if not (user and password):
        return
    wrong = chronos.connect(server, proto=proto, username=user, password=password + "-wrong")
    expect_error(chronos.ChronosAPIError, wrong.list)
    anonymous = chronos.connect(server, proto=proto)
    expect_error(chronos.ChronosAPIError, anonymous.list)


SCENARIOS = [
    ("connect", s_connect),
    ("add", s_add),
    ("list", s_list),
    ("search_name", s_search_name),
    ("search_command", s_search_command),
    ("update", s_update),
    ("job_stat", s_job_stat),
    ("scheduler_graph", s_scheduler_graph),
    ("scheduler_stats", s_scheduler_stats),
    ("add_dependent", s_add_dependent),
    ("metrics", s_metrics),
    ("run", s_run),
    ("delete_tasks", s_delete_tasks),
    ("delete", s_delete),
    ("error_unknown_job", s_error_unknown),
    ("error_missing_field", s_error_missing_field),
    ("error_credentials", s_error_credentials),
]

for name, scenario in SCENARIOS:
    try:
        scenario()
    except Failed as e:
        print("FAIL %s: %s" % (name, e), flush=True)
        sys.exit(1)
    except Exception as e:  # the client's own errors and anything unexpected
        print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
        traceback.print_exc()
        sys.exit(1)
    print("ok %s" % name, flush=True)
print("chronos-python client: ok")
