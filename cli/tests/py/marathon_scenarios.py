"""The unmodified `marathon` 0.13.0 client through the scenarios of its own itests (spec
marathon-api.md section 4.3: itests/*.feature, steps/marathon_steps.py): ping, info, the trivial
app of 5 instances and its one deployment, its tasks once the deployment is over, kill_task with
scale, kill_given_tasks, the complex Docker app (accepted, never run: its image is fake), the event
stream (with --events), the client's group calls (beyond the itests), and the itests' teardown
(delete every app with force, wait until no deployment is left). Prints `ok <scenario>` per scenario; on the first failure prints
`FAIL <scenario>: <why>` and exits 1.
Run as: python marathon_scenarios.py URL USER PASSWORD MARKER_ENV_JSON [--events]"""
import collections
import collections.abc
import json
import sys
import threading
import time
import traceback

# marathon 0.13.0 imports these from `collections` (removed in Python 3.10): spec section 4.2's shim.
for name in ("Iterable", "Mapping", "MutableMapping", "Sequence", "Callable"):
    setattr(collections, name, getattr(collections.abc, name))

import requests  # noqa: E402
from marathon import MarathonApp, MarathonClient  # noqa: E402
from marathon.models.container import (  # noqa: E402
    MarathonContainer,
    MarathonContainerPortMapping,
    MarathonContainerVolume,
    MarathonDockerContainer,
)
from marathon.models.app import MarathonHealthCheck  # noqa: E402

args = [a for a in sys.argv[1:] if not a.startswith("--")]
url, user, password, marker = args[0], args[1], args[2], json.loads(args[3])
with_events = "--events" in sys.argv[1:]
client = MarathonClient(url, username=user, password=password)
TRIVIAL = "test-trivial-app"
COMPLEX = "test-complex-app"


def scenario(name, fn):
    try:
        fn()
    except Exception:  # noqa: BLE001 - every failure is reported the same way
        print("FAIL %s: %s" % (name, traceback.format_exc()))
        sys.exit(1)
    print("ok " + name)


def until(what, fn, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.25)
    raise AssertionError("timed out waiting for " + what)


def ping():
    r = requests.get(url + "/ping", auth=(user, password), timeout=10)
    assert r.status_code == 200, r.status_code


def info():
    assert client.get_info()


def trivial_app():
    app = MarathonApp(cmd="sleep 3600", mem=16, cpus=0.1, instances=5, env=marker)
    client.create_app(TRIVIAL, app)
    # Right after the create: exactly one deployment (spec section 4.3, scenario 4).
    deployments = client.list_deployments()
    assert len(deployments) == 1, deployments
    assert client.get_app(TRIVIAL).instances == 5


def tasks_after_deployment():
    until("the create deployment to end", lambda: not client.get_app(TRIVIAL, embed_tasks=True).deployments)
    tasks = client.list_tasks(TRIVIAL)
    assert len(tasks) == client.get_app(TRIVIAL).instances == 5, tasks


def kill_task_with_scale():
    task = client.get_app(TRIVIAL, embed_tasks=True).tasks[0]
    client.kill_task(TRIVIAL, task.id, scale=True)
    until("4 instances", lambda: client.get_app(TRIVIAL).instances == 4)


def kill_given_tasks():
    until("no deployment on the app", lambda: not client.get_app(TRIVIAL).deployments)
    tasks = until("4 tasks", lambda: (lambda t: t if len(t) == 4 else None)(client.list_tasks(TRIVIAL)))
    killed = [t.id for t in tasks[:3]]
    assert client.kill_given_tasks(killed) is True
    # Without scale the app keeps its 4 instances: the killed ones are replaced.
    until("3 replacements", lambda: len({t.id for t in client.list_tasks(TRIVIAL)} - set(killed)) == 4)


def complex_app():
    container = MarathonContainer(
        type="DOCKER",
        docker=MarathonDockerContainer(
            image="localhost/fake_docker_url",
            network="BRIDGE",
            port_mappings=[MarathonContainerPortMapping(container_port=8888, host_port=0, name="myport")],
            parameters=[{"key": "add-host", "value": "google-public-dns-a.google.com:8.8.8.8"}],
        ),
        volumes=[MarathonContainerVolume(container_path="/etc/hosts", host_path="/etc/hosts", mode="RO")],
    )
    app = MarathonApp(
        cmd="sleep 3600",
        mem=16,
        cpus=0.1,
        instances=1,
        container=container,
        uris=["http://example.com/fake.tgz"],
        backoff_factor=1.5,
        health_checks=[MarathonHealthCheck(protocol="HTTP", path="/", port_index=0)],
        env=marker,
    )
    client.create_app(COMPLEX, app)
    got = client.get_app(COMPLEX)
    assert got.container.docker.image == "localhost/fake_docker_url", got.container
    assert got.backoff_factor == 1.5, got.backoff_factor


def event_stream():
    events = []

    def read():
        try:
            for e in client.event_stream():
                events.append(e)
        except Exception as e:  # noqa: BLE001 - the stream ends when the process does
            events.append(e)

    threading.Thread(target=read, daemon=True).start()
    time.sleep(1)
    client.create_app("test-events-app", MarathonApp(cmd="sleep 3600", mem=16, cpus=0.1, instances=1, env=marker))
    until("the events app's deployment to end", lambda: not client.get_app("test-events-app").deployments)
    task = client.get_app("test-events-app", embed_tasks=True).tasks[0]
    client.kill_task("test-events-app", task.id)
    until("an event", lambda: any(not isinstance(e, Exception) for e in events))
    errors = [e for e in events if isinstance(e, Exception)]
    assert not errors, errors


def groups():
    # Beyond the itests: the client's group calls against /v2/groups.
    from marathon.models.group import MarathonGroup

    app = MarathonApp(id="web", cmd="sleep 3600", mem=16, cpus=0.1, instances=1, env=marker)
    client.create_group(MarathonGroup(id="/test-group", apps=[app]))
    assert [g.id for g in client.list_groups()] == ["/test-group"], client.list_groups()
    group = client.get_group("test-group")
    assert [a.id for a in group.apps] == ["/test-group/web"], group.apps
    # (The complex Docker app's deployment never ends: only this group's counts.)
    mine = lambda: [d for d in client.list_deployments() if "/test-group/web" in d.affected_apps]  # noqa: E731
    until("the group's deployment to end", lambda: not mine())
    client.scale_group("test-group", 2)
    until("the group scaled", lambda: client.get_app("/test-group/web").instances == 2)
    client.delete_group("test-group", force=True)
    until("the group gone", lambda: not client.list_groups())


def teardown():
    def delete_all():
        apps = client.list_apps()
        for a in apps:
            client.delete_app(a.id, force=True)
        return not apps or not client.list_apps()

    until("no app", delete_all)
    until("no deployment", lambda: not client.list_deployments())


scenario("ping", ping)
scenario("get_info", info)
scenario("trivial app and its one deployment", trivial_app)
scenario("its tasks once deployed", tasks_after_deployment)
scenario("kill_task with scale", kill_task_with_scale)
scenario("kill_given_tasks", kill_given_tasks)
scenario("complex docker app", complex_app)
if with_events:
    scenario("event stream", event_stream)
scenario("groups", groups)
scenario("teardown", teardown)
