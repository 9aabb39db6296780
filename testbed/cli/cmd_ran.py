"""`testbed ran status` and `testbed ran configs`: the 5G path of a running testbed, and the UERANSIM/Open5GS files."""
from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from testbed.cli import render
from testbed.cli.runs import pick_run
from testbed.errors import UsageError


@click.group("ran")
def ran_group() -> None:
    """The 5G path: UEs, PDU sessions, TEIDs and UPFs of a running testbed; backend configs."""


@ran_group.command("status")
@click.option("--run", "run_id", metavar="RUN_ID", help="Which running testbed (see `testbed status`).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(run_id: str | None, as_json: bool) -> None:
    """UEs, their PDU sessions (uesimtun, address, TEIDs, QFI), the UPF serving each, and the UPFs' drops.

    Example: testbed up -d topologies/minimal.yaml && testbed ran status
    """
    from testbed.engine.ran import ran_view
    from testbed.ran.network import prepare
    from testbed.runner import load

    m = pick_run(run_id)
    topo, plan = prepare(load(m.topology), m.run_id)
    if plan is None:
        raise UsageError(f"run {m.run_id} ({m.topology}) has no 5G path: no gNB and UE, or ran.backend off")
    view = ran_view(plan, m.dir, topo.ran.backend)
    if as_json:
        click.echo(json.dumps(view, indent=1))
        return
    con = render.console
    s = view["summary"]
    con.print(f"run {m.run_id}: PLMN {view['plmn']}, core {view['core']['name']} ({view['core']['address']}), "
              f"N2 over {view['n2_transport']}; {s['registered']}/{s['ues']} UEs registered, "
              f"{s['sessions_active']}/{s['sessions']} sessions active")
    t = Table(title="PDU sessions", title_justify="left")
    for col in ("UE", "SUPI", "gNB", "state", "reg ms", "session", "slice", "address", "TEID UL/DL", "QFI", "UPF",
                "setup ms"):
        t.add_column(col, overflow="fold", no_wrap=col in ("session", "address"))
    for ue in view["ues"]:
        first = True
        for sess in ue["sessions"] or [{}]:
            others = [g for g in ue.get("gnbs", []) if g != ue["gnb"]]  # where it would re-attach
            gnb = ue["gnb"] + (f" (else {', '.join(others)})" if others else "")
            t.add_row(*(ue["name"], ue["supi"], gnb, ue["state"], str(ue["registration_ms"] or "-"))
                      if first else ("",) * 5,
                      sess.get("tun", "-"), sess.get("slice", "-"), sess.get("address", "-"),
                      f"{sess['ul_teid']}/{sess['dl_teid']}" if sess else "-", str(sess.get("qfi", "-")),
                      sess.get("upf", "-"),
                      str(sess.get("setup_ms") or sess.get("state", "-")))
            first = False
    con.print(t)
    u = Table(title="UPFs", title_justify="left")
    for col in ("UPF", "address", "role", "sites", "slices", "sessions", "drops"):
        u.add_column(col, overflow="fold")
    for upf in view["upfs"]:
        u.add_row(upf["name"], upf["address"], upf["role"], ", ".join(upf["sites"]) or "all",
                  ", ".join(upf["slices"]) or "all", str(upf["sessions"]),
                  ", ".join(f"{k} {v}" for k, v in sorted(upf["drops"].items())) or "none")
    con.print(u)


@ran_group.command("configs")
@click.argument("topology", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Directory to write ueransim/ and open5gs/ into.")
def configs(topology: str, out_dir: str) -> None:
    """Write the UERANSIM (nr-gnb, nr-ue) and Open5GS (amf, smf, upf, subscribers) files for TOPOLOGY's 5G plan."""
    from testbed.ran.configs import file_set
    from testbed.ran.network import prepare
    from testbed.runner import load

    topo, plan = prepare(load(topology))
    if plan is None:
        raise UsageError(f"{topology} has no 5G path: no gNB and UE, or ran.backend off")
    for rel, text in sorted(file_set(plan).items()):
        path = Path(out_dir) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        click.echo(str(path))


def register(cli: click.Group) -> None:
    cli.add_command(ran_group)
