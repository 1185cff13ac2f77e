# The kopf side of the handler benchmark: the same no-op create handler as
# bench/handlers-worker.ts, printing "H <name> <epoch ms>" per invocation.
import sys
import time

import kopf


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.posting.enabled = False  # kubeloop's worker posts no events either


@kopf.on.create("bench.kubeloop.dev", "v1", "benchitems")
def created(name, **_):
    sys.stdout.write(f"H {name} {int(time.time() * 1000)}\n")
    sys.stdout.flush()
