"""Ryu apps run unmodified on os-ken: `ryu.*` is aliased to `os_ken.*` in the controller process only.

Each case runs in a fresh interpreter (the alias changes sys.meta_path and sys.modules).
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "controllers" / "examples" / "ryu_l2_switch.py"


def _py(code: str, *, path: list[str] | None = None) -> subprocess.CompletedProcess:
    env_path = ":".join([*(path or []), str(REPO)])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, cwd=REPO)


def test_example_app_loads_unmodified_as_an_os_ken_app():
    r = _py(f"""
        from controllers import ryu_alias
        assert ryu_alias.install() is True
        import os_ken.base.app_manager as osken_am
        from os_ken.base.app_manager import AppManager
        cls = AppManager.get_instance().load_app({str(EXAMPLE)!r})
        assert cls is not None and cls.__name__ == "L2LearningSwitch", cls
        assert issubclass(cls, osken_am.OSKenApp)
        print("ok")
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_each_ryu_module_is_the_os_ken_module_itself():
    r = _py("""
        import sys
        from controllers import ryu_alias
        ryu_alias.install()
        import ryu.base.app_manager, ryu.controller.ofp_event, ryu.cfg, ryu.lib.hub
        from ryu.controller.handler import MAIN_DISPATCHER, set_ev_cls
        from ryu.lib.packet import packet, ethernet, arp
        from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser
        from ryu.base.app_manager import RyuApp
        from ryu.exception import RyuException
        import os_ken, os_ken.base.app_manager, os_ken.controller.ofp_event, os_ken.cfg
        from os_ken.exception import OSKenException
        assert RyuApp is os_ken.base.app_manager.OSKenApp
        assert RyuException is OSKenException
        assert ryu.controller.ofp_event.EventOFPPacketIn is os_ken.controller.ofp_event.EventOFPPacketIn
        assert ryu.cfg.CONF is os_ken.cfg.CONF
        # no second copy of any module: every ryu.X entry is the os_ken.X module
        aliased = [n for n in sys.modules if n == "ryu" or n.startswith("ryu.")]
        assert len(aliased) >= 10, aliased
        for n in aliased:
            assert sys.modules[n] is sys.modules["os_ken" + n[3:]], n
        # the os_ken modules still describe themselves
        assert os_ken.base.app_manager.__spec__.name == "os_ken.base.app_manager"
        assert os_ken.base.app_manager.__name__ == "os_ken.base.app_manager"
        # the project's compat layer takes the ryu branch and gets the same class
        from controllers.compat import AppBase
        assert AppBase is os_ken.base.app_manager.OSKenApp
        print("ok")
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_a_module_os_ken_lacks_fails_saying_why():
    r = _py("""
        from controllers import ryu_alias
        ryu_alias.install()
        try:
            import ryu.app.simple_switch_13
        except ImportError as exc:
            print(exc)
        try:  # the from-form is resolved by Python under the package's real name
            from ryu.app import simple_switch_13
        except ImportError as exc:
            print(exc)
    """)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.splitlines()
    assert "ryu.app.simple_switch_13" in first and "os-ken" in first and "no sample apps" in first
    assert "simple_switch_13" in second and "os_ken.app" in second


def test_no_alias_outside_the_controller_process():
    r = _py("""
        import controllers.compat, testbed.engine.osken_main
        try:
            import ryu
        except ImportError:
            print("absent")
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "absent"


def test_a_real_ryu_is_left_alone(tmp_path):
    fake = tmp_path / "ryu"
    fake.mkdir()
    (fake / "__init__.py").write_text("REAL = True\n")
    r = _py("""
        from controllers import ryu_alias
        assert ryu_alias.install() is False
        import ryu
        assert ryu.REAL and ryu.__name__ == "ryu"
        print("ok")
    """, path=[str(tmp_path)])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
