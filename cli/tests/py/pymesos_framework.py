"""An unmodified pymesos 0.3.15 framework against a Gantry master (cli/tests/frameworks_v1.rs):
subscribes with HTTP Basic credentials, accepts one offer, launches one command task carrying the
test's marker, declines every other offer, waits for TASK_FINISHED, tears down and exits 0.

With `failover DIR`: the task runs `sleep 3600`; once it runs, DIR/running is written and the test
kills the master (-9) and starts it again. pymesos re-subscribes with its framework id by itself;
the framework then reconciles (implicitly), must hear TASK_RUNNING, waits for DIR/agents (the agent
is back), kills the task, waits for TASK_KILLED, tears down and exits 0.

Usage: pymesos_framework.py HOST:PORT PRINCIPAL SECRET MARKER [failover DIR]
"""

import logging
import os
import socket
import sys
import threading
import time
import uuid

from pymesos import MesosSchedulerDriver, Scheduler

TIMEOUT_SECS = 90


def scalar(resources, name):
    return sum(r["scalar"]["value"] for r in resources if r["name"] == name)


class OneTask(Scheduler):
    def __init__(self, marker, failover_dir=None):
        self.marker = marker
        self.failover_dir = failover_dir
        self.reregistered_at = None
        self.framework_id = None
        self.task_id = "pymesos-" + uuid.uuid4().hex[:8]
        self.launched = False
        self.states = []
        self.outcome = None
        self.done = threading.Event()

    def registered(self, driver, framework_id, master_info):
        self.framework_id = framework_id["value"]
        print("registered", framework_id["value"], master_info.get("version"), flush=True)

    def resourceOffers(self, driver, offers):
        for offer in offers:
            fits = scalar(offer["resources"], "cpus") >= 0.1 and scalar(offer["resources"], "mem") >= 32
            if self.launched or not fits:
                driver.declineOffer([offer["id"]], filters={"refuse_seconds": 60})
                continue
            self.launched = True
            task = {
                "task_id": {"value": self.task_id},
                "agent_id": offer["agent_id"],
                "name": "hello",
                "command": {
                    "value": "sleep 3600" if self.failover_dir else "echo hi from pymesos",
                    "environment": {
                        "variables": [{"name": "GANTRY_TEST_MARKER", "value": self.marker}]
                    },
                },
                "resources": [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
                ],
            }
            print("launching", self.task_id, "on", offer["agent_id"]["value"], flush=True)
            driver.launchTasks([offer["id"]], [task])

    def reregistered(self, driver, master_info):
        print("reregistered", master_info, flush=True)
        self.reregistered_at = time.time()
        driver.reconcileTasks([])

    def statusUpdate(self, driver, update):
        state = update["state"]
        print("update", update["task_id"]["value"], state, update.get("reason"), flush=True)
        if update["task_id"]["value"] != self.task_id:
            return
        self.states.append(state)
        if self.failover_dir and state == "TASK_RUNNING":
            if self.reregistered_at is None:
                open(os.path.join(self.failover_dir, "running"), "w").close()
            elif update.get("reason") == "REASON_RECONCILIATION":
                threading.Thread(target=self.kill_when_agent_is_back, args=(driver,)).start()
            return
        if self.failover_dir and state == "TASK_KILLED" and self.reregistered_at:
            self.outcome = 0
            self.done.set()
            return
        if state == "TASK_FINISHED" and not self.failover_dir:
            self.outcome = 0
            self.done.set()
        elif state in ("TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED"):
            print("task ended badly:", update.get("message"), flush=True)
            self.outcome = 1
            self.done.set()

    def kill_when_agent_is_back(self, driver):
        agents = os.path.join(self.failover_dir, "agents")
        while not os.path.exists(agents):
            time.sleep(0.1)
        print("killing", self.task_id, flush=True)
        driver.killTask({"value": self.task_id})

    def error(self, driver, message):
        print("error:", message, flush=True)
        self.outcome = 1
        self.done.set()


def main():
    master, principal, secret, marker = sys.argv[1:5]
    failover_dir = sys.argv[6] if len(sys.argv) > 6 and sys.argv[5] == "failover" else None
    logging.basicConfig(level=logging.INFO)
    sched = OneTask(marker, failover_dir)
    framework = {"user": "root", "name": "pymesos-one-task", "hostname": socket.gethostname()}
    driver = MesosSchedulerDriver(sched, framework, master, principal=principal, secret=secret)
    driver.start()
    if not sched.done.wait(TIMEOUT_SECS):
        print("timed out; states seen:", sched.states, flush=True)
        os._exit(2)
    driver.stop()  # without failover: TEARDOWN
    driver.join()
    if sched.outcome == 0:
        print("states:", " ".join(sched.states), flush=True)
        print("framework:", sched.framework_id, flush=True)
        print("pymesos framework: ok", flush=True)
    sys.exit(sched.outcome)


if __name__ == "__main__":
    main()
