"""The notebooks in ``notebooks/`` are stored clean and run top to bottom, headless, on the demo data.

Each notebook runs in a fresh Jupyter kernel (nbclient), one at a time, with its parameters in
environment variables: the lakehouse and data folders of a copy of the session's demo
lakehouse, ``CDI_SPARK_LABEL_ANSWERS=truth`` so that labelling answers from the ground truth,
and ``CDI_SPARK_CONF`` to keep the kernel's Spark (a second JVM beside the tests') small. A
cell that raises fails the test with the cell and its traceback; the executed notebook is kept
under the test's temporary folder for a look.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from lakehouse_copies import ROOT, copy_demo, day2_copy
from nbclient import NotebookClient
from pyspark.sql import functions as F

from cdi_spark import delta_io

NOTEBOOKS = ROOT / "notebooks"
KERNEL_SPARK = ",".join([
    "spark.driver.memory=2g",
    "spark.sql.shuffle.partitions=2",
    "spark.default.parallelism=2",
    "spark.sql.adaptive.enabled=false",
    "spark.ui.enabled=false",
    "spark.databricks.delta.snapshotPartitions=2",
])
CELL_TIMEOUT = 1800  # seconds; the label notebook's training cell is the slowest (a few minutes)


def _execute(name: str, out_dir: Path, **params: str) -> nbformat.NotebookNode:
    """Run ``notebooks/<name>`` in a new kernel with ``params`` as ``CDI_SPARK_*`` variables."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    # The kernel starts its own JVM: nothing of this process's Spark gateway may leak into it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_GATEWAY")}
    env.update({f"CDI_SPARK_{key.upper()}": value for key, value in params.items()})
    env["CDI_SPARK_CONF"] = KERNEL_SPARK
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute(env=env)
    finally:
        nbformat.write(notebook, out_dir / name)
    return notebook


def _outputs(notebook: nbformat.NotebookNode, kind: str) -> list[str]:
    """Every output of ``kind`` (``text/plain``, ``text/html``, ``image/png``, or ``stream``)."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if kind == "stream" and output.get("output_type") == "stream":
                found.append(output["text"])
            elif kind in output.get("data", {}):
                found.append(output["data"][kind])
    return found


def _succeeded_resolve_runs(spark, lakehouse: Path) -> int:
    """How many runs in ``audit.runs`` ran the resolve stage and succeeded."""
    runs = delta_io.read(spark, str(lakehouse / "audit" / "runs"))
    return runs.filter(F.array_contains("stages", "resolve") & (F.col("status") == "succeeded")).count()


def test_notebooks_are_stored_without_outputs():
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert [p.name for p in paths] == ["audit.ipynb", "explore.ipynb", "label.ipynb"]
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        for i, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} cell {i} has outputs"
        assert notebook.metadata.kernelspec.name == "python3", path.name


def test_notebooks_build_their_session_with_the_project_builder():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert "lakehouse_session(" in source, path.name
        for copied in ("SparkSession.builder", "spark.jars", "configure_spark_with_delta_pip", "getOrCreate"):
            assert copied not in source, f"{path.name} sets Spark up itself ({copied})"


@pytest.mark.e2e
@pytest.mark.slow
def test_explore_notebook_follows_one_customer_through_the_layers(demo, tmp_path):
    base, _ = demo
    lakehouse, data = copy_demo(base, tmp_path / "copy")
    notebook = _execute("explore.ipynb", tmp_path, lakehouse=str(lakehouse), data_dir=str(data))
    text = "\n".join(_outputs(notebook, "text/plain") + _outputs(notebook, "stream"))
    assert "edges:" in text  # explain_cluster
    assert "blocking keys shared:" in text or "has a single record" in text  # explain_pair
    assert _outputs(notebook, "image/png"), "the quality chart"


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.zingg
def test_label_notebook_saves_labels_retrains_and_shows_metrics_before_and_after(spark, demo, tmp_path):
    base, _ = demo
    lakehouse, data = copy_demo(base, tmp_path / "copy")
    labels = str(lakehouse / "silver" / "match_labels")
    models = str(lakehouse / "audit" / "match_models")
    labels_before, models_before = delta_io.read(spark, labels).count(), delta_io.read(spark, models).count()
    resolve_runs_before = _succeeded_resolve_runs(spark, lakehouse)
    notebook = _execute("label.ipynb", tmp_path, lakehouse=str(lakehouse), data_dir=str(data),
                        label_answers="truth", label_pairs="30")
    assert delta_io.read(spark, labels).count() > labels_before
    assert delta_io.read(spark, models).count() == models_before + 1
    html = "\n".join(_outputs(notebook, "text/html"))
    assert "before" in html and "after" in html and "precision" in html
    assert _outputs(notebook, "image/png"), "the before / after chart"
    assert _succeeded_resolve_runs(spark, lakehouse) == resolve_runs_before + 1  # the notebook's own run


@pytest.mark.e2e
@pytest.mark.slow
def test_audit_notebook_shows_time_travel_id_events_change_feed_and_charts(spark, demo, tmp_path, tmp_path_factory):
    base, _ = demo
    lakehouse, data = day2_copy(spark, base, tmp_path_factory)
    notebook = _execute("audit.ipynb", tmp_path, lakehouse=str(lakehouse), data_dir=str(data))
    shown = "\n".join(_outputs(notebook, "text/plain") + _outputs(notebook, "stream"))
    assert "customers whose field changed" in shown  # diff_runs
    assert "old_value" in shown and "new_value" in shown  # profile_history
    assert "merged_into" in shown and "was merged into" in shown  # the bridged customers' merge
    assert "update_postimage" in shown  # the Change Data Feed
    assert len(_outputs(notebook, "image/png")) >= 3
