"""audit.runs: the row run_pipeline writes for a succeeded and a failed run; the config hash."""

from __future__ import annotations

import pytest

from cdi_spark import delta_io, pipeline, runs
from cdi_spark.config import PipelineConfig
from cdi_spark.errors import StageError
from cdi_spark.pipeline import StageReport
from cdi_spark.tables import table_path


@pytest.fixture
def cfg(tmp_path):
    """A configuration read from files (their text is hashed, not parsed by these tests)."""
    conf = tmp_path / "conf"
    (conf / "sources").mkdir(parents=True)
    (conf / "pipeline.yml").write_text("lakehouse: lake\nstages: [ingest, resolve]\n")
    (conf / "sources" / "crm.yml").write_text("name: crm\n")
    (conf / "matching.yml").write_text("fields: []\n")
    (conf / "survivorship.yml").write_text("rates: rates.yml\n")  # a file named inside another
    (conf / "rates.yml").write_text("EUR: 1.0\n")
    config = PipelineConfig(lakehouse=str(tmp_path / "lake"), stages=("ingest", "resolve"))
    object.__setattr__(config, "path", str(conf / "pipeline.yml"))
    return config


def _fake_stages(monkeypatch):
    """Stages that write tiny Delta tables (commits carry the run id from the session)."""

    def ingest(spark, cfg, run_id):
        path = table_path(cfg.lakehouse, "bronze", "t")
        delta_io.append(spark, spark.createDataFrame([(run_id,)], "run string"), path)
        return StageReport("ingest", {"rows": 1})

    def standardize(spark, cfg, run_id):
        delta_io.append(spark, spark.createDataFrame([(1,)], "n int"), table_path(cfg.lakehouse, "silver", "s"))
        raise StageError("standardize", "bad input")

    def resolve(spark, cfg, run_id):
        path = table_path(cfg.lakehouse, "silver", "clusters")
        for n in range(2):  # two commits: the run's version is the last
            delta_io.append(spark, spark.createDataFrame([(n,)], "n int"), path)
        return StageReport("resolve", {"records": 4, "clusters": 2})

    monkeypatch.setattr(pipeline, "STAGES", {"ingest": ingest, "standardize": standardize, "resolve": resolve})


def test_config_hash_is_stable_and_changes_with_any_yaml_it_names(cfg):
    names = {p.relative_to(cfg.base_dir).as_posix() for p in runs.config_files(cfg)}
    # quality.yml is a default the pipeline file does not name; rates.yml is named in survivorship.yml.
    assert names >= {"pipeline.yml", "sources/crm.yml", "matching.yml", "survivorship.yml", "quality.yml", "rates.yml"}
    before = runs.config_hash(cfg)
    assert runs.config_hash(cfg) == before and len(before) == 64
    rates = cfg.base_dir / "rates.yml"
    rates.write_text("EUR: 1.1\n")
    assert runs.config_hash(cfg) != before
    rates.write_text("EUR: 1.0\n")
    (cfg.base_dir / "sources" / "shop.yml").write_text("name: shop\n")
    assert runs.config_hash(cfg) != before


def test_succeeded_and_failed_runs_are_recorded(spark, cfg, monkeypatch):
    _fake_stages(monkeypatch)
    pipeline.run_pipeline(spark, cfg, run_id="run-ok")
    ok = runs.read_run(spark, cfg.lakehouse, "run-ok")
    assert (ok.status, ok.error, ok.stages) == ("succeeded", None, ("ingest", "resolve"))
    assert ok.versions == {"bronze.t": 0, "silver.clusters": 1}
    assert ok.counts == {"ingest": {"rows": 1}, "resolve": {"records": 4, "clusters": 2}}
    assert ok.metrics == {"records": 4.0, "clusters": 2.0}
    assert ok.config_hash == runs.config_hash(cfg) and ok.started_at <= ok.ended_at

    with pytest.raises(StageError, match="bad input"):
        pipeline.run_pipeline(spark, cfg.with_stages(["ingest", "standardize"]), run_id="run-bad")
    bad = runs.read_run(spark, cfg.lakehouse, "run-bad")
    assert (bad.status, bad.error) == ("failed", "StageError: stage standardize: bad input")
    assert bad.versions == {"bronze.t": 1, "silver.s": 0} and bad.counts == {"ingest": {"rows": 1}}
    assert bad.config_hash == ok.config_hash  # same files, same hash
    assert delta_io.read(spark, runs.runs_path(cfg.lakehouse)).count() == 2
    assert spark.conf.get(delta_io.USER_METADATA_CONF, None) is None


def _set_checkpoint_dir(spark, value: str | None) -> None:
    """Set (or clear, with None) the context's checkpoint folder as Spark holds it."""
    jvm, sc = spark.sparkContext._jvm, spark.sparkContext._jsc.sc()
    option = jvm.scala.Option.apply(value) if value else jvm.scala.Option.empty()
    getattr(sc, "checkpointDir_$eq")(option)


def test_a_run_without_a_checkpoint_folder_gets_one_of_its_own_and_deletes_it(spark, cfg, tmp_path):
    kept = spark.sparkContext.getCheckpointDir()
    _set_checkpoint_dir(spark, None)
    try:
        with pipeline.run_checkpoints(spark, cfg, "r1") as folder:
            assert folder == f"{cfg.lakehouse}/_checkpoints/r1"
            assert spark.sparkContext.getCheckpointDir().startswith(f"file:{folder}/")
            spark.range(5).checkpoint(eager=True)
            assert any((tmp_path / "lake" / "_checkpoints" / "r1").rglob("part-*"))
        assert not (tmp_path / "lake" / "_checkpoints" / "r1").exists()
        # The next run in the same session names its own folder again.
        with pipeline.run_checkpoints(spark, cfg, "r2") as folder:
            assert folder.endswith("/_checkpoints/r2")
        assert not (tmp_path / "lake" / "_checkpoints" / "r2").exists()
    finally:
        _set_checkpoint_dir(spark, kept)


def test_a_checkpoint_folder_someone_else_set_is_kept(spark, cfg):
    kept = spark.sparkContext.getCheckpointDir()
    with pipeline.run_checkpoints(spark, cfg, "r1") as folder:
        assert folder == kept
    assert spark.sparkContext.getCheckpointDir() == kept
