"""The status file the testbed reads ($TESTBED_STATUS), and the switch book-keeping behind it.

Written by the testbed's own apps (controllers/plan_app.py) and by the readiness
observer beside a foreign app (controllers/readiness.py); the engine waits on its
"ready" map. Plain functions, no app class: safe to import from app modules.
"""
from __future__ import annotations

import json
import os
import time


def write_status(path: str, app: str, **fields) -> None:
    """Replace the status file at once (a reader never sees half of it): pid, app, `fields`, time."""
    data = {"pid": os.getpid(), "app": app, **fields, "time": time.time()}
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def forget_switch(dp, datapaths: dict[str, object], *books: dict[str, object]) -> None:
    """A switch's connection died: drop it from `datapaths` and each of `books`, unless the switch
    has reconnected meanwhile (another datapath holds its key)."""
    key = f"{dp.id:016x}"
    if datapaths.get(key) is dp:
        del datapaths[key]
        for book in books:
            book.pop(key, None)
