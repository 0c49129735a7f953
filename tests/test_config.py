"""The config loader: strict keys and types, messages naming file, key and expectation."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from cdi_spark.cli import main
from cdi_spark.config import ColumnSpec, PipelineConfig, SourceConfig, load_config, load_file, parse
from cdi_spark.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture
def conf_dir(tmp_path: Path) -> Path:
    """A copy of the shipped conf/ that a test may break."""
    target = tmp_path / "conf"
    shutil.copytree(CONF, target)
    return target


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_configuration_loads():
    cfg = load_config(CONF / "pipeline.yml")
    assert cfg.profile == "local"
    assert cfg.spark.master == "local[2]"
    assert cfg.spark.block_outbound_http is True
    assert {s.name for s in cfg.sources} >= {"crm_contacts", "marketing_contacts", "product_events"}


def test_unknown_key_is_an_error_naming_file_and_key(conf_dir):
    _write(conf_dir / "pipeline.yml", "lakehouse: lh\nlakehose_typo: x\n")
    with pytest.raises(ConfigError) as err:
        load_config(conf_dir / "pipeline.yml")
    assert err.value.key == "lakehose_typo"
    assert str(err.value).startswith(str(conf_dir / "pipeline.yml"))
    assert "unknown key; expected one of: lakehouse, raw_dir" in str(err.value)


def test_wrong_type_names_the_dotted_key_and_what_was_expected(conf_dir):
    _write(
        conf_dir / "pipeline.yml",
        """
        profiles:
          local:
            master: local[2]
            block_outbound_http: "yes"
        """,
    )
    expected = r"profiles\.local\.block_outbound_http: expected true/false, found str 'yes'"
    with pytest.raises(ConfigError, match=expected):
        load_config(conf_dir / "pipeline.yml")


def test_missing_required_value_in_a_source(conf_dir):
    _write(conf_dir / "sources" / "crm_contacts.yml", "name: crm_contacts\nsystem: crm\nformat: csv\npath: x\n")
    with pytest.raises(ConfigError) as err:
        load_config(conf_dir / "pipeline.yml")
    assert err.value.file.endswith("crm_contacts.yml")
    assert err.value.key == "primary_key"
    assert "required key is missing" in err.value.problem


def test_literal_choices_are_listed():
    data = {"name": "a", "system": "s", "format": "xlsx", "path": "p", "primary_key": ["id"]}
    expected = r"format: expected one of 'csv', 'json', 'jsonl', 'parquet', found str 'xlsx'"
    with pytest.raises(ConfigError, match=expected):
        parse(SourceConfig, data, file="a.yml")


def test_nested_list_items_are_checked_with_their_index():
    data = {"name": "a", "system": "s", "format": "csv", "path": "p", "primary_key": ["id"],
            "columns": [{"name": "id"}, {"name": "x", "type": "varchar"}]}
    with pytest.raises(ConfigError, match=r"columns\[1\]\.type: expected one of"):
        parse(SourceConfig, data, file="a.yml")


def test_cross_field_check_reports_the_problem():
    with pytest.raises(ConfigError, match="profile 'prod' is not defined; defined: local"):
        parse(PipelineConfig, {"profile": "prod"}, file="p.yml")


def test_valid_source_parses_to_frozen_typed_objects():
    data = {"name": "shop_orders", "system": "ecommerce", "format": "csv", "path": "*/shop_orders/*.csv",
            "primary_key": ["Order ID"], "columns": [{"name": "Order ID", "required": True}]}
    source = parse(SourceConfig, data, file="s.yml")
    assert source.primary_key == ("Order ID",)
    assert source.columns == (ColumnSpec("Order ID", "string", True),)
    with pytest.raises(AttributeError):
        source.name = "other"  # type: ignore[misc]


def test_yaml_syntax_error_gives_line_and_column(conf_dir):
    _write(conf_dir / "pipeline.yml", "lakehouse: [unclosed\n")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: not valid YAML"):
        load_config(conf_dir / "pipeline.yml")


def test_matching_file_is_validated_before_spark_starts(conf_dir):
    text = (conf_dir / "matching.yml").read_text()
    _write(conf_dir / "matching.yml", text.replace("max_key_frequency: 50", "max_key_frequency: 1"))
    with pytest.raises(ConfigError, match=r"matching.yml: \(top level\): max_key_frequency must be at least 2"):
        load_config(conf_dir / "pipeline.yml")


@pytest.mark.parametrize(
    ("part", "problem"),
    [
        ("prefix(family_name_key)", "is not a column or fn"),
        ("nysiis(family_name_key)", "is not a column or fn"),
        ("sorted(given_name_key, 3)", "is not a column or fn"),
    ],
)
def test_blocking_key_parts_are_checked(conf_dir, part, problem):
    text = (conf_dir / "matching.yml").read_text()
    _write(conf_dir / "matching.yml", text.replace('"sorted(given_name_key, family_name_key)"', f'"{part}"'))
    with pytest.raises(ConfigError, match=rf"matching.yml: blocking.keys\[0\]: .*{problem}"):
        load_config(conf_dir / "pipeline.yml")


def test_blocking_key_columns_are_parsed():
    from cdi_spark.config import BlockingKey

    key = BlockingKey("k", ("prefix(family_name_key, 3)", "sorted(given_name_key, family_name_key)", "postcode"))
    assert key.columns == ("family_name_key", "given_name_key", "postcode")


def test_cli_prints_a_clean_message_and_exit_code(conf_dir, capsys):
    _write(conf_dir / "pipeline.yml", "stages: [ingest, golden, resolve]\n")
    code = main(["run", "--config", str(conf_dir / "pipeline.yml")])
    err = capsys.readouterr().err
    assert code == 2
    assert "stages must be in pipeline order" in err
    assert "Traceback" not in err


def test_cli_refuses_a_stage_this_version_lacks(capsys, monkeypatch):
    # every stage name ships now; an installation without one (a trimmed build) must still refuse it clearly
    from cdi_spark import pipeline

    monkeypatch.setattr(pipeline, "STAGES", {k: v for k, v in pipeline.STAGES.items() if k != "activate"})
    code = main(["run", "--config", str(CONF / "pipeline.yml"), "--stages", "ingest,activate"])
    assert code == 2
    assert "stage 'activate' is not available in this version" in capsys.readouterr().err


def test_readme_source_example_is_a_valid_source(tmp_path):
    readme = (CONF.parent / "README.md").read_text()
    start = readme.index("name: crm_leads")
    example = _write(tmp_path / "crm_leads.yml", readme[start : readme.index("```", start)])
    source = load_file(SourceConfig, example)
    assert source.mapping is not None
    assert source.mapping.fields["street"] == ("Addr1", "Addr2")


def test_with_stages_keeps_the_loaded_sources(conf_dir):
    cfg = load_config(conf_dir / "pipeline.yml")
    other = cfg.with_stages(["ingest"])
    assert other.stages == ("ingest",)
    assert other.sources == cfg.sources and other.sources
    assert other.path == cfg.path


def test_gold_settings_are_checked_and_the_customer_360_file_is_loaded_for_the_golden_stage(conf_dir):
    cfg = load_config(conf_dir / "pipeline.yml")
    assert "golden" in cfg.stages
    assert (cfg.gold.optimize_every_runs, cfg.gold.vacuum_retention_hours) == (10, 168.0)
    text = (conf_dir / "pipeline.yml").read_text()
    _write(conf_dir / "pipeline.yml", text.replace("vacuum_retention_hours: 168", "vacuum_retention_hours: 24"))
    with pytest.raises(ConfigError, match="at least 168"):
        load_config(conf_dir / "pipeline.yml")
    _write(conf_dir / "pipeline.yml", text)
    (conf_dir / "customer_360.yml").write_text("as_of: yesterday\n")
    with pytest.raises(ConfigError, match="customer_360.yml"):
        load_config(conf_dir / "pipeline.yml")
    assert load_config(conf_dir / "pipeline.yml", stages=["ingest"]).stages == ("ingest",)
