"""An unmodified pymesos 0.3.15 framework against a Gantry master (cli/tests/frameworks_v1.rs):
subscribes with HTTP Basic credentials, accepts one offer, launches one command task carrying the
test's marker, declines every other offer, waits for TASK_FINISHED, tears down and exits 0.

Usage: pymesos_framework.py HOST:PORT PRINCIPAL SECRET MARKER
"""

import logging
import os
import socket
import sys
import threading
import uuid

from pymesos import MesosSchedulerDriver, Scheduler

TIMEOUT_SECS = 90


def scalar(resources, name):
    return sum(r["scalar"]["value"] for r in resources if r["name"] == name)


class OneTask(Scheduler):
    def __init__(self, marker):
        self.marker = marker
        self.task_id = "pymesos-" + uuid.uuid4().hex[:8]
        self.launched = False
        self.states = []
        self.outcome = None
        self.done = threading.Event()

    def registered(self, driver, framework_id, master_info):
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
                    "value": "echo hi from pymesos",
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

    def statusUpdate(self, driver, update):
        state = update["state"]
        print("update", update["task_id"]["value"], state, "uuid" in update, flush=True)
        if update["task_id"]["value"] != self.task_id:
            return
        self.states.append(state)
        if state == "TASK_FINISHED":
            self.outcome = 0
            self.done.set()
        elif state in ("TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED"):
            print("task ended badly:", update.get("message"), flush=True)
            self.outcome = 1
            self.done.set()

    def error(self, driver, message):
        print("error:", message, flush=True)
        self.outcome = 1
        self.done.set()


def main():
    master, principal, secret, marker = sys.argv[1:5]
    logging.basicConfig(level=logging.INFO)
    sched = OneTask(marker)
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
        print("framework:", driver.framework_id, flush=True)
        print("pymesos framework: ok", flush=True)
    sys.exit(sched.outcome)


if __name__ == "__main__":
    main()
