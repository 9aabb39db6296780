"""Entry point of the controller process: `python -m testbed.engine.osken_main`.

os-ken 4.x ships no `osken-manager`, so we configure and run its AppManager
ourselves. One process per run, listening on 127.0.0.1 only.

Apps written for Ryu run here unmodified: unless a real Ryu is installed, `ryu.*`
is aliased to `os_ken.*` in this process before any app is loaded
(controllers/ryu_alias.py). An app that is not one of the testbed's own
plan-installing apps (a user's, which writes no readiness) gets the readiness
observer beside it (controllers/readiness.py).
"""
from __future__ import annotations

import argparse
import os
import sys

READINESS_APP = "controllers.readiness"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("apps", nargs="+", help="app module names or .py paths")
    args = ap.parse_args(argv)
    # Make the repo's controllers/ package importable whatever the working directory.
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, repo)
    from controllers import ryu_alias

    aliased = ryu_alias.install()  # before any app (or controllers.compat) imports `ryu`
    from os_ken import cfg
    from os_ken.base.app_manager import AppManager
    from os_ken.lib import hub

    from controllers.plan_app import PlanApp

    cfg.CONF(args=["--ofp-listen-host", args.host, "--ofp-tcp-listen-port", str(args.port)], project="os_ken")
    mgr = AppManager.get_instance()
    mgr.load_apps(args.apps)
    apps = [mgr.applications_cls[a] for a in args.apps if a in mgr.applications_cls]  # not their dependencies
    if not apps:
        sys.exit(f"no app class (a subclass of RyuApp/OSKenApp) defined in {', '.join(args.apps)}")
    if not any(issubclass(cls, PlanApp) for cls in apps):
        os.environ["TESTBED_APP_NAMES"] = ",".join(cls.__name__ for cls in apps)
        mgr.load_apps([READINESS_APP])
    print(f"apps: {', '.join(f'{c.__module__}.{c.__name__}' for c in mgr.applications_cls.values())}; "
          f"ryu aliased to os_ken: {'yes' if aliased else 'no (a real Ryu is installed)'}", flush=True)
    # AppManager.run_apps, with the app list decided above
    contexts = mgr.create_contexts()
    services = mgr.instantiate_apps(**contexts)
    try:
        hub.joinall(services)
    finally:
        mgr.close()
        for t in services:
            t.kill()
        hub.joinall(services)


if __name__ == "__main__":
    main()
