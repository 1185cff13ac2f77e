# The kopf contender of the side-by-side benchmark (bench/peers.ts): an on.event handler on the
# namespace's ConfigMaps. Prints {"phase":"synced"} once the initial listing (events of type None)
# covered BENCH_OBJECTS objects, then counts BENCH_EVENTS updates (MODIFIED) and prints
# {"phase":"done",p50,p99,ms} (send → receipt latency from data.sent; first counted → last, ms).
import json
import os
import resource
import sys
import time

import kopf

OBJECTS = int(os.environ["BENCH_OBJECTS"])
EVENTS = int(os.environ["BENCH_EVENTS"])
initial = set()
latencies = []
state = {"synced": False, "first": 0.0, "cpu": 0.0}


def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def say(line):
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.posting.enabled = False
    if os.environ.get("BENCH_REPLAY"):
        # The replay (bench/replay.ts) never echoes a write: kopf would wait for the patched
        # resourceVersion (5 s each) instead of handling the events that follow.
        settings.persistence.consistency_timeout = 0


def updated(body):
    if len(latencies) >= EVENTS:
        return
    now = time.time() * 1000
    if not latencies:
        state["first"] = time.perf_counter()
        state["cpu"] = cpu()
    latencies.append(now - float((body.get("data") or {}).get("sent", "0")))
    if len(latencies) == EVENTS:
        ordered = sorted(latencies)
        at = lambda q: ordered[int(q * (len(ordered) - 1))]
        say({"phase": "done", "count": len(ordered), "p50": at(0.5), "p99": at(0.99), "ms": (time.perf_counter() - state["first"]) * 1000, "cpuMicros": (cpu() - state["cpu"]) * 1e6})
        # stay: the harness reads this process's memory and CPU, then kills it


if os.environ.get("BENCH_MODE") == "handlers":
    # on.create and on.update (progress and the diff base in annotations). Synced: every
    # existing object handled as created.
    last = {}
    calls = []

    # Handlers may fold several changes of an object into one call: done when every object was
    # handled at its last change (seq >= events - objects); CPU is still counted per change made.
    def handled(name, body):
        data = body.get("data") or {}
        if not calls:
            state["first"] = time.perf_counter()
            state["cpu"] = cpu()
        calls.append(time.time() * 1000 - float(data.get("sent", "0")))
        seq = int(data.get("seq", "-1"))
        if seq >= EVENTS - OBJECTS:
            last[name] = seq
        if len(last) == OBJECTS:
            ordered = sorted(calls)
            at = lambda q: ordered[int(q * (len(ordered) - 1))]
            say({"phase": "done", "count": EVENTS, "calls": len(calls), "p50": at(0.5), "p99": at(0.99), "ms": (time.perf_counter() - state["first"]) * 1000, "cpuMicros": (cpu() - state["cpu"]) * 1e6})
            last.clear()

    # Live, every change after the sync is an update. In the replay the replayed objects carry no
    # diff base, so each change after the sync is handled as a create.
    @kopf.on.create("", "v1", "configmaps")
    def created(name, body, **_):
        if state["synced"]:
            handled(name, body)
            return
        initial.add(name)
        if len(initial) == OBJECTS:
            state["synced"] = True
            say({"phase": "synced"})

    @kopf.on.update("", "v1", "configmaps")
    def update(name, body, **_):
        handled(name, body)


else:
    @kopf.on.event("", "v1", "configmaps")
    def event(type, name, body, **_):
        if type is None:
            initial.add(name)
            if len(initial) == OBJECTS and not state["synced"]:
                state["synced"] = True
                say({"phase": "synced"})
            return
        if type == "MODIFIED":
            updated(body)
