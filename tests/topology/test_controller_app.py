"""`controller.app` is checked when the file loads, as the engine will resolve it: a bundled app
name, a .py path relative to the topology file, or a module name found without importing it.
A bad one is `FILE:LINE controller.app: reason` (exit 2) and nothing is built."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from testbed.errors import TopologyError
from testbed.topology.loader import load

# controller.app is on line 2 in both layouts
FLOW = """\
name: ctl
controller: {app: %s}
nodes:
  - {name: s1, kind: switch}
  - {name: h1, kind: host}
  - {name: h2, kind: host}
links:
  - {endpoints: [h1, s1]}
  - {endpoints: [h2, s1]}
"""
BLOCK = """\
name: ctl
controller:
  app: %s
nodes:
  - {name: s1, kind: switch}
  - {name: h1, kind: host}
  - {name: h2, kind: host}
links:
  - {endpoints: [h1, s1]}
  - {endpoints: [h2, s1]}
"""


def _problem(path: Path):
    with pytest.raises(TopologyError) as info:
        load(path)
    assert info.value.exit_code == 2
    probs = [p for p in info.value.problems if p.field == "controller.app"]
    assert len(probs) == 1, info.value.problems
    assert probs[0].file == str(path)
    return probs[0]


@pytest.mark.parametrize("app", ["nosuch_module", "nosuch.pkg.app", "controllers.nosuch", "os.path.nosuch",
                                 "testbed.nosuch_sub.app"])
def test_missing_module_app_is_located(write_yaml, app: str) -> None:
    path = write_yaml(FLOW % app)
    p = _problem(path)
    assert p.line == 2
    assert app.split(".")[0] in p.message
    assert str(p).startswith(f"{path}:2 controller.app: ")


def test_missing_module_app_block_style(write_yaml) -> None:
    p = _problem(write_yaml(BLOCK % "nosuch_module"))
    assert p.line == 3 and "nosuch_module" in p.message


@pytest.mark.parametrize("app", ["apps/my_switch", "my-app", "'.relative'", "'a..b'", "''"])
def test_not_an_app_name(write_yaml, app: str) -> None:
    p = _problem(write_yaml(FLOW % app))
    assert p.line == 2


def test_missing_py_app_relative_to_the_topology_file(write_yaml, tmp_path: Path, monkeypatch) -> None:
    # the file exists relative to the current directory, but a topology's app is relative to the file
    cwd = tmp_path / "elsewhere"
    (cwd / "apps").mkdir(parents=True)
    (cwd / "apps" / "missing.py").write_text("")
    monkeypatch.chdir(cwd)
    sub = tmp_path / "bad"
    sub.mkdir()
    path = sub / "topo.yaml"
    path.write_text(FLOW % "apps/missing.py")
    p = _problem(path)
    assert p.line == 2
    assert str(sub / "apps" / "missing.py") in p.message


def test_missing_absolute_py_app(write_yaml, tmp_path: Path) -> None:
    p = _problem(write_yaml(FLOW % str(tmp_path / "nope.py")))
    assert p.line == 2 and str(tmp_path / "nope.py") in p.message


def test_py_app_that_is_a_directory(write_yaml, tmp_path: Path) -> None:
    (tmp_path / "dir.py").mkdir()
    assert _problem(write_yaml(FLOW % "dir.py")).line == 2


@pytest.mark.parametrize("app", ["auto", "forwarding", "slicing", "allow-all", "stateless"])
def test_bundled_apps_pass(write_yaml, app: str) -> None:
    assert load(write_yaml(FLOW % app)).controller.app == app


def test_no_controller_section_passes(write_yaml) -> None:
    text = "\n".join(line for line in (FLOW % "x").splitlines() if not line.startswith("controller"))
    assert load(write_yaml(text + "\n")).controller.app == "auto"


def test_existing_py_app_relative_to_the_topology_file(tmp_path: Path, monkeypatch) -> None:
    sub = tmp_path / "good"
    (sub / "apps").mkdir(parents=True)
    (sub / "apps" / "mine.py").write_text("raise SystemExit('must not be imported')\n")
    monkeypatch.chdir(tmp_path)  # not the file's directory
    path = sub / "topo.yaml"
    path.write_text(FLOW % "apps/mine.py")
    assert load(path).controller.app == "apps/mine.py"
    # and relative to the current directory, as the CLI is run from elsewhere
    assert load(Path("good/topo.yaml")).controller.app == "apps/mine.py"


def test_existing_absolute_py_app(write_yaml, tmp_path: Path) -> None:
    app = tmp_path / "abs_app.py"
    app.write_text("")
    assert load(write_yaml(FLOW % str(app))).controller.app == str(app)


def test_module_app_is_found_without_importing_it(write_yaml, tmp_path: Path, monkeypatch) -> None:
    pkg = tmp_path / "lib" / "sidefx_pkg"
    pkg.mkdir(parents=True)
    marker = tmp_path / "imported"
    (pkg / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (pkg / "app.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    assert load(write_yaml(FLOW % "sidefx_pkg.app")).controller.app == "sidefx_pkg.app"
    assert not marker.exists(), "checking the app imported its package"
    assert "sidefx_pkg" not in sys.modules
    p = _problem(write_yaml(FLOW % "sidefx_pkg.nosuch"))
    assert "sidefx_pkg.nosuch" in p.message
    assert not marker.exists()


def test_repo_module_app_passes(write_yaml) -> None:
    assert load(write_yaml(FLOW % "controllers.examples.ryu_l2_switch")).controller


def test_ryu_module_names_are_checked_as_the_controller_process_aliases_them(write_yaml) -> None:
    pytest.importorskip("os_ken")
    # os-ken has os_ken.base.app_manager; it ships no sample apps (ryu.app.simple_switch_13)
    assert load(write_yaml(FLOW % "ryu.base.app_manager")).controller
    p = _problem(write_yaml(FLOW % "ryu.app.simple_switch_13"))
    assert "ryu.app.simple_switch_13" in p.message


def test_ryu_alias_rule_is_the_controller_process_rule() -> None:
    from controllers import ryu_alias
    from testbed.topology import controllerapp

    for name in ("ryu", "ryu.base.app_manager", "ryuish", "os_ken.base", "my.ryu.app"):
        assert controllerapp.ryu_target(name) == ryu_alias.target_name(name), name


def test_a_remote_controller_ignores_the_app(write_yaml) -> None:
    text = FLOW.replace("{app: %s}", "{app: nosuch_module, remote: '127.0.0.1:6653'}")
    assert load(write_yaml(text)).controller.remote == "127.0.0.1:6653"


def test_other_problems_are_still_reported_with_it(write_yaml) -> None:
    path = write_yaml((FLOW % "nosuch_module").replace("[h2, s1]", "[h2, s9]"))
    with pytest.raises(TopologyError) as info:
        load(path)
    fields = {p.field for p in info.value.problems}
    assert {"controller.app", "links[1].endpoints[1]"} <= fields, info.value.problems


@pytest.mark.parametrize("app", ['"a\\0.py"', "x" * 5000 + ".py", "x" * 5000, "'" + "y/" * 3000 + "z.py'"])
def test_impossible_names_are_problems_not_tracebacks(write_yaml, app: str) -> None:
    p = _problem(write_yaml(FLOW % app))
    assert p.line == 2 and len(p.message) < 500
