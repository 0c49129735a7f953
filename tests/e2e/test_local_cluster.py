"""The pipeline on a real Spark standalone cluster (a master and two workers on this machine),
submitted with spark-submit as the README tells cluster users, gives the local-mode run's tables.

``scripts/local_cluster.sh check`` seeds a lakehouse with only the demo lakehouse's labels and
match model (Zingg training is not deterministic), runs every stage on the cluster over the
demo's raw files and compares the two lakehouses (``scripts/compare_lakehouses.py``).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(ROOT / "scripts" / "local_cluster.sh")


def _alive(pid: int) -> bool:
    """The process runs (a zombie that nobody reaped yet has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _script(state: Path, *args: str, timeout: float) -> tuple[int, str, str]:
    """Run the script in its own process group: on a timeout the group (spark-submit and its
    driver JVM too) is killed, not only the shell. Returns (exit code, stdout, stderr)."""
    env = {**os.environ, "CDI_LOCAL_CLUSTER_DIR": str(state)}
    proc = subprocess.Popen([SCRIPT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\n(killed after {timeout:.0f} s)"
    return proc.returncode, out, err


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.e2e
def test_a_standalone_cluster_run_gives_the_local_runs_tables(demo, tmp_path):
    base, _ = demo
    state = tmp_path / "local-cluster"
    pids: list[int] = []
    try:
        code, _, err = _script(state, "start", timeout=180)
        assert code == 0, err
        pids = [int(p.read_text()) for p in sorted((state / "pids").glob("*.pid"))]
        assert len(pids) == 3 and all(_alive(p) for p in pids), err
        begun = time.monotonic()
        # 12 minutes on a 2-core machine busy with another test run; the timeout leaves room.
        code, out, err = _script(state, "check", "--local-lakehouse", str(base / "lakehouse"),
                                 "--raw-dir", str(base / "data" / "raw"), timeout=1500)
        print(out, f"check took {time.monotonic() - begun:.0f} s", sep="\n")
        assert code == 0, f"{out}\n{err[-4000:]}"
        assert "the lakehouses are equal" in out
        assert "master=spark://127.0.0.1:" in err  # the driver ran on the cluster
        for worker in ("worker-1", "worker-2"):  # and both workers ran an executor of it
            assert list((state / "work" / worker).glob("app-*/*/stderr")), f"{worker} ran no executor"
    finally:
        stopped, _, err = _script(state, "stop", timeout=120)
    assert stopped == 0, err
    assert not [p for p in pids if _alive(p)], "master or worker still running after stop"
    assert not list((state / "pids").glob("*.pid"))


def test_the_comparison_names_a_moved_record_and_a_changed_field(capsys):
    spec = importlib.util.spec_from_file_location("compare_lakehouses", ROOT / "scripts" / "compare_lakehouses.py")
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    cmp = compare.Comparison()
    rows = [{"record_key": k, "customer_id": c} for k, c in (("a:1", "C1"), ("a:2", "C1"), ("b:1", "C2"))]
    moved = [{**r, "customer_id": "C2"} if r["record_key"] == "a:2" else r for r in rows]
    groups = compare.partition(rows, "customer_id")
    compare.compare_partition(cmp, "xref", groups, compare.partition(list(rows), "customer_id"))
    assert cmp.failed == 0
    compare.compare_partition(cmp, "xref", groups, compare.partition(moved, "customer_id"))
    assert cmp.failed == 1
    expected = {"a:1": compare.content({"city": "Oslo", "run_id": "r1", "emails": ["x", "y"]})}
    same = {"a:1": compare.content({"city": "Oslo", "run_id": "r2", "emails": ["x", "y"]})}
    changed = {"a:1": compare.content({"city": "Bergen", "run_id": "r1", "emails": ["x", "y"]})}
    assert compare.keyed_diff(expected, same, "record") == []  # the run id is bookkeeping
    assert compare.keyed_diff(expected, changed, "record") == ["record a:1: city differ"]  # names, no values
    assert "DIFFERENT  xref" in capsys.readouterr().out
