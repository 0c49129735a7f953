"""SurvivorshipConfig: the shipped file, the defaults, and errors naming file, key and fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cdi_spark.config import SURVIVABLE_FIELDS, SurvivorshipConfig, load_file
from cdi_spark.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[2] / "conf" / "survivorship.yml"


def _load(tmp_path: Path, text: str) -> SurvivorshipConfig:
    path = tmp_path / "survivorship.yml"
    path.write_text(textwrap.dedent(text))
    return load_file(SurvivorshipConfig, path)


def test_shipped_file_decides_every_field_once():
    cfg = load_file(SurvivorshipConfig, SHIPPED)
    decided = [f for _, fields in cfg.units for f in fields]
    assert sorted(decided) == sorted(SURVIVABLE_FIELDS)
    assert dict(cfg.units)["address"] == ("street", "street_number", "city", "region", "postcode", "country")
    assert cfg.rule_for("email").rule == "most_recent"
    assert cfg.rule_for("company").order == ("crm", "support", "ecommerce")


def test_fields_without_a_rule_use_source_priority_and_flags_most_restrictive():
    cfg = SurvivorshipConfig(source_priority=("crm",))
    assert cfg.rule_for("email").rule == "source_priority"
    assert cfg.rule_for("address").rule == "source_priority"
    assert cfg.rule_for("email_opt_out").rule == "most_restrictive"


def test_groups_replace_the_default_groups(tmp_path):
    cfg = _load(tmp_path, "groups: {}\nrules:\n  city: {rule: most_recent}\n")
    assert all(fields == (name,) for name, fields in cfg.units)
    assert cfg.rule_for("city").rule == "most_recent"


def test_unknown_rule_lists_the_rules(tmp_path):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "rules:\n  email: {rule: newest}\n")
    assert err.value.file.endswith("survivorship.yml")
    assert err.value.key == "rules.email.rule"
    assert "expected one of 'source_priority', 'most_recent'" in err.value.problem


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  emial: {rule: most_recent}\n", r"rules\.emial: unknown field or group; expected a field"),
        ("groups:\n  where: [city, postcode]\n  post: [postcode]\n",
         r"groups\.post: field 'postcode' is listed also in group 'where'; a field can be in one group only"),
        ("groups:\n  where: [city, citty]\n", r"groups\.where: unknown field 'citty'"),
        ("rules:\n  city: {rule: most_recent}\n",
         r"rules\.city: field 'city' is in group 'address', whose rule decides it; set the rule on rules\.address"),
        ("rules:\n  address: {rule: custom, values: [GB]}\n", r"rule custom applies to single fields"),
        ("rules:\n  email: {rule: most_restrictive}\n", r"most_restrictive applies to true/false fields"),
        ("source_priority: [crm, billing, crm]\n", r"source_priority lists a system twice"),
    ],
)
def test_wrong_fields_and_groups_are_named(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as err:
        _load(tmp_path, text)
    assert str(err.value).startswith(str(tmp_path / "survivorship.yml"))


@pytest.mark.parametrize(
    ("rule", "key", "message"),
    [
        ("{rule: custom}", "rules.country", "rule custom needs values"),
        ("{rule: most_recent, order: [crm]}", "rules.country", "order applies to rule source_priority only"),
        ("{rule: source_priority, values: [GB]}", "rules.country", "values applies to rule custom only"),
        ("{rule: source_priority, order: [crm, crm]}", "rules.country", "order lists an entry twice"),
        ("{rule: source_priority, orders: [crm]}", "rules.country.orders", "unknown key; expected one of: rule"),
    ],
)
def test_rule_settings_are_checked_with_their_key(tmp_path, rule, key, message):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, f"groups: {{}}\nrules:\n  country: {rule}\n")
    assert err.value.key == key
    assert message in err.value.problem
