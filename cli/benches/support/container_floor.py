#!/usr/bin/env python3
"""The floor under any containerizer on this machine, for the batch bench's part (e): N jobs of
`true`, each in a cgroup of every v1 hierarchy Gantry's native containerizer uses and in new
pid, mount, ipc and uts namespaces (`unshare -pmiuf /bin/sh -c true`), PARALLEL at once, with no
scheduler, no bookkeeping and nothing stored. Prints one line: jobs, seconds, jobs/s, and the CPU
milliseconds per job (this process and every child, user + system).

Usage (as root): container_floor.py N PARALLEL
"""
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = "/sys/fs/cgroup"
CONTROLLERS = ["cpu", "cpuacct", "memory", "pids", "freezer", "devices", "cpuset"]


def controllers():
    have = [c for c in CONTROLLERS if os.path.isdir(f"{ROOT}/{c}")]
    if not have:
        sys.exit("container_floor: no cgroup v1 hierarchy under /sys/fs/cgroup")
    return have


def one(i, ctrls, cpus, mems):
    name = f"gantry-floor-{os.getpid()}-{i}"
    dirs = [f"{ROOT}/{c}/{name}" for c in ctrls]
    for d in dirs:
        os.mkdir(d)
    try:
        if "cpuset" in ctrls:
            with open(f"{ROOT}/cpuset/{name}/cpuset.cpus", "w") as f:
                f.write(cpus)
            with open(f"{ROOT}/cpuset/{name}/cpuset.mems", "w") as f:
                f.write(mems)
        pid = os.fork()
        if pid == 0:
            try:
                for d in dirs:
                    with open(f"{d}/cgroup.procs", "w") as f:
                        f.write(str(os.getpid()))
                os.execv("/usr/bin/unshare", ["unshare", "-pmiuf", "/bin/sh", "-c", "true"])
            finally:
                os._exit(127)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise RuntimeError(f"job {i} ended with wait status {status}")
    finally:
        for d in dirs:
            os.rmdir(d)


def main():
    n, parallel = int(sys.argv[1]), int(sys.argv[2])
    ctrls = controllers()
    cpus = mems = ""
    if "cpuset" in ctrls:
        cpus = open(f"{ROOT}/cpuset/cpuset.cpus").read()
        mems = open(f"{ROOT}/cpuset/cpuset.mems").read()
    start = time.monotonic()
    with ThreadPoolExecutor(parallel) as ex:
        list(ex.map(lambda i: one(i, ctrls, cpus, mems), range(n)))
    secs = time.monotonic() - start
    cpu = sum(
        r.ru_utime + r.ru_stime
        for r in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )
    print(f"{n} {secs:.3f} {n / secs:.1f} {cpu * 1000 / n:.2f}")


if __name__ == "__main__":
    main()
