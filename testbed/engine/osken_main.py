"""Entry point of the controller process: `python -m testbed.engine.osken_main`.

os-ken 4.x ships no `osken-manager`, so we configure and run its AppManager
ourselves. One process per run, listening on 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("apps", nargs="+", help="app module names or .py paths")
    args = ap.parse_args(argv)
    # Make the repo's controllers/ package importable whatever the working directory.
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, repo)
    from os_ken import cfg
    from os_ken.base.app_manager import AppManager

    cfg.CONF(args=["--ofp-listen-host", args.host, "--ofp-tcp-listen-port", str(args.port)], project="os_ken")
    AppManager.run_apps(args.apps)


if __name__ == "__main__":
    main()
