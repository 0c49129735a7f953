"""Match labels: the Delta table, a steward's CSV, ground truth, choosing pairs, labelling by hand."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality

from cdi_spark import delta_io
from cdi_spark.errors import CdiError
from cdi_spark.resolve.labels import (
    LABEL_SCHEMA,
    LabelsError,
    _quotas,
    import_labels_csv,
    label_interactively,
    labels_from_answers,
    pairs_to_label,
    read_generated_truth,
    read_labels,
    read_labels_csv,
    read_truth_csv,
    save_labels,
    truth_labels,
)

LABELS = "left_key string, right_key string, is_match boolean"
KEYS = ("a", "b", "c", "d", "e")


def _labels(spark, rows):
    return spark.createDataFrame(rows, LABELS)


def _save(spark, path, rows, origin="console"):
    return save_labels(spark, path, _labels(spark, rows), origin=origin, labelled_by="ann", run_id="r0")


def _answers(spark, path):
    return read_labels(spark, path).select("left_key", "right_key", "is_match")


def _csv(tmp_path, text, name="labels.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def test_saved_labels_are_ordered_pairs_and_the_newest_answer_wins(spark, tmp_path):
    path = str(tmp_path / "silver" / "match_labels")
    first = _labels(spark, [("b", "a", True), ("a", "c", False), ("x", "x", True), ("c", "a", False)])
    assert save_labels(spark, path, first, origin="console", labelled_by="ann", run_id="run-1") == 2
    assert_df_equality(
        _answers(spark, path), _labels(spark, [("a", "b", True), ("a", "c", False)]), ignore_row_order=True
    )
    newer = _labels(spark, [("b", "a", False)])
    assert save_labels(spark, path, newer, origin="csv", labelled_by="f.csv", run_id="run-2") == 1
    now = read_labels(spark, path)
    assert now.columns == list(LABEL_SCHEMA.fieldNames())
    assert_df_equality(
        _answers(spark, path), _labels(spark, [("a", "b", False), ("a", "c", False)]), ignore_row_order=True
    )
    row = now.filter("left_key = 'a' and right_key = 'b'").first()
    assert (row.origin, row.labelled_by, row.run_id) == ("csv", "f.csv", "run-2") and row.labelled_at is not None
    # the older answer stays in Delta history, and each version names its run
    assert delta_io.read_as_of(spark, path, 0).filter("right_key = 'b'").first().is_match is True
    assert {r.version: r.userMetadata for r in delta_io.history(spark, path).collect()} == {0: "run-1", 1: "run-2"}


def test_read_labels_without_a_table_is_empty_with_the_schema(spark, tmp_path):
    labels = read_labels(spark, str(tmp_path / "none"))
    assert labels.schema == LABEL_SCHEMA and labels.count() == 0


def test_save_labels_refuses_a_pair_answered_both_ways_and_writes_nothing(spark, tmp_path):
    path = str(tmp_path / "labels")
    with pytest.raises(LabelsError, match="1 pair labelled both as a match and as a non-match"):
        _save(spark, path, [("a", "b", True), ("b", "a", False)])
    with pytest.raises(LabelsError, match="1 label with an empty left_key, right_key or is_match"):
        _save(spark, path, [("a", None, True), ("a", "c", False)])
    with pytest.raises(LabelsError, match="origin 'person' is not one of"):
        _save(spark, path, [("a", "b", True)], origin="person")
    assert not delta_io.exists(spark, path)


# --------------------------------------------------------------------------------------------
# A steward's CSV
# --------------------------------------------------------------------------------------------


def test_csv_import_takes_odd_headers_and_yes_no_answers(spark, tmp_path):
    lines = [" Note , RIGHT_ID,Left_Id ,  IS_MATCH", "x,b,a,Yes", "", 'y,"c",a, n ', "z, d , c ,TRUE\r", "w,a,b,1"]
    path = _csv(tmp_path, "\n".join([*lines, "v,e,d,0"]) + "\n")  # a blank line, a Windows line end, a repeat
    table = str(tmp_path / "labels")
    assert import_labels_csv(spark, path, table, run_id="import-1", known_keys=_keys(spark)) == 4
    expected = _labels(spark, [("a", "b", True), ("a", "c", False), ("c", "d", True), ("d", "e", False)])
    assert_df_equality(_answers(spark, table), expected, ignore_row_order=True)
    assert {r.origin for r in read_labels(spark, table).collect()} == {"csv"}
    assert read_labels(spark, table).first().labelled_by == path


def _keys(spark):
    return spark.createDataFrame([(k,) for k in KEYS], "record_key string")


MALFORMED = {
    "bad_is_match": ("left_id,right_id,is_match\na,b,yes\nb,c,maybe\n", 3, "is_match", "'maybe' is not one of"),
    "empty_id": ("left_id,right_id,is_match\na,b,yes\nb,c,no\n ,c,no\n", 4, "left_id", "empty"),
    "missing_column": ("left_id,rightid,is_match\na,b,yes\n", 1, "right_id", "column missing; the header has"),
    "self_pair": (
        "left_id,right_id,is_match\na,a,yes\n",
        2,
        "right_id",
        "'a' is the left_id too: a record paired with itself",
    ),
    "contradiction": (
        "left_id,right_id,is_match\na,b,yes\nc,d,no\nb,a,no\n",
        4,
        "is_match",
        "the pair (a, b) is labelled no here and yes on line 2",
    ),
    "unknown_id": ("left_id,right_id,is_match\na,b,yes\nb,zz,no\n", 3, "right_id", "'zz' is not the record_key"),
}


@pytest.fixture(scope="module")
def existing_labels(spark, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("labels") / "match_labels")
    _save(spark, path, [("a", "e", True)])
    return path


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_csv_names_file_line_and_field_and_leaves_the_table_as_it_was(spark, tmp_path, existing_labels, case):
    text, line, field, what = MALFORMED[case]
    path = _csv(tmp_path, text)
    version = delta_io.current_version(spark, existing_labels)
    with pytest.raises(LabelsError) as caught:
        import_labels_csv(spark, path, existing_labels, run_id="bad", known_keys=_keys(spark))
    message = str(caught.value)
    assert message.startswith(f"{path}: 1 problem in the labels file, nothing was imported: ")
    assert f"line {line}, {field}: {what}" in message, message
    assert isinstance(caught.value, CdiError) and caught.value.problems[0][:2] == (line, field)
    assert delta_io.current_version(spark, existing_labels) == version
    assert _answers(spark, existing_labels).collect() == [("a", "e", True)]


def test_csv_error_shows_the_first_problems_in_line_order_and_the_total_and_creates_no_table(spark, tmp_path):
    self_pairs = "".join(f"k{i},k{i},no\n" for i in range(12)).encode()  # lines 3..14
    path = tmp_path / "labels.csv"
    path.write_bytes(b"left_id,right_id,is_match\na,b,yes\n" + self_pairs + b"c,d,perhaps\n\xff\xfe,e,no\n")
    table = str(tmp_path / "match_labels")
    with pytest.raises(LabelsError) as caught:
        import_labels_csv(spark, str(path), table, run_id="bad")
    error = caught.value
    assert error.total == 14 and [p[0] for p in error.problems] == list(range(3, 13))
    assert str(error).count("line ") == 11 and "; and 4 more." in str(error)  # 10 shown, and "line 1 is the header"
    assert not delta_io.exists(spark, table)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("left_id,right_id,is_match\nJosé,e,no\n".encode("latin-1"))
    with pytest.raises(LabelsError) as caught:
        read_labels_csv(spark, str(latin))
    assert "line 2, encoding: bytes that are not UTF-8" in str(caught.value)
    long = _csv(tmp_path, "left_id,right_id,is_match\na,b," + "x" * 100 + "\n", "long.csv")
    with pytest.raises(LabelsError, match="line 2, is_match: 'x{39}…' is not one of"):
        read_labels_csv(spark, long)


def test_csv_that_is_missing_or_empty_is_a_clear_error(spark, tmp_path):
    with pytest.raises(LabelsError, match="cannot read the labels file"):
        read_labels_csv(spark, str(tmp_path / "nope.csv"))
    with pytest.raises(LabelsError, match="expected one CSV file with a header line left_id,right_id,is_match"):
        read_labels_csv(spark, _csv(tmp_path, ""))


# --------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------


def test_truth_labels_answer_pairs_whose_records_both_have_truth(spark):
    pairs = spark.createDataFrame([("a", "b"), ("a", "c"), ("c", "x"), ("d", "b")], "left_key string, right_key string")
    truth = spark.createDataFrame(
        [("a", "1"), ("b", "1"), ("c", "2"), ("d", "1")], "record_key string, entity_id string"
    )
    expected = _labels(spark, [("a", "b", True), ("a", "c", False), ("d", "b", True)])
    assert_df_equality(truth_labels(pairs, truth), expected, ignore_row_order=True, ignore_nullable=True)


def test_truth_readers_give_record_keys_and_entities(spark, tmp_path):
    csv_truth = read_truth_csv(spark, _csv(tmp_path, "Record_ID,entity_id,extra\ncrm:1,p1,x\n", "truth.csv"))
    assert [tuple(r) for r in csv_truth.collect()] == [("crm:1", "p1")]
    person_records = spark.createDataFrame(
        [("crm_contacts", "003A", 7)], "source string, record_id string, person_id long"
    )
    person_records.write.parquet(str(tmp_path / "truth" / "person_records"))
    generated = read_generated_truth(spark, str(tmp_path / "truth"))
    assert [tuple(r) for r in generated.collect()] == [("crm_contacts:003A", "7")]
    with pytest.raises(LabelsError, match="run cdi-spark generate first"):
        read_generated_truth(spark, str(tmp_path / "elsewhere"))


# --------------------------------------------------------------------------------------------
# Choosing pairs to label
# --------------------------------------------------------------------------------------------


def test_quotas_give_a_small_bin_s_share_to_the_others():
    assert _quotas({0: 50, 5: 2, 9: 50}, 12) == {5: 2, 0: 5, 9: 5}
    assert _quotas({0: 1, 1: 1}, 10) == {0: 1, 1: 1}
    assert sum(_quotas({b: 100 for b in range(10)}, 25).values()) == 25


def _candidates(spark):
    # 40 sure non-matches (0.0-0.1), 2 uncertain (0.5-0.6), 40 sure matches (0.9-1.0), one self-pair
    rows = [(f"n{i:02}", f"m{i:02}", 0.05) for i in range(40)]
    rows += [("u1", "u2", 0.55), ("u4", "u3", 0.5), ("s", "s", 0.5)]
    rows += [(f"y{i:02}", f"x{i:02}", 0.95 + i / 1000) for i in range(40)]
    return spark.createDataFrame(rows, "left_key string, right_key string, similarity double")


def test_pairs_to_label_spread_over_bins_and_do_not_depend_on_partitioning(spark):
    candidates = _candidates(spark)
    chosen = pairs_to_label(candidates, 12, seed=7)
    rows = chosen.collect()
    bins = [min(int(r.similarity * 10), 9) for r in rows]
    assert sorted(bins) == [0] * 5 + [5] * 2 + [9] * 5
    assert bins[:3] == [9, 5, 0]  # one of each bin first, most similar first
    assert all(r.left_key < r.right_key for r in rows)
    again = pairs_to_label(candidates.repartition(5, "similarity"), 12, seed=7).collect()
    assert again == rows
    assert pairs_to_label(candidates, 12, seed=8).collect() != rows
    assert pairs_to_label(candidates, 0, seed=7).count() == 0


# --------------------------------------------------------------------------------------------
# Labelling by hand
# --------------------------------------------------------------------------------------------


def _scripted(replies):
    prompts, shown = [], []
    replies = iter(replies)

    def ask(prompt):
        prompts.append(prompt)
        return next(replies)

    return ask, shown.append, prompts, shown


def _people(spark):
    rows = [
        ("r1", "Anna", "Smith"),
        ("r2", "Anna", "Smyth"),
        ("r3", "Bob", None),
        ("r4", "Rob", None),
        ("r5", "Cy", "Lee"),
        ("r6", "Cy", "Lee"),
    ]
    return spark.createDataFrame(rows, "record_key string, given_name string, family_name string")


def test_interactive_labelling_keeps_yes_and_no_skips_unsure_and_stops_on_quit(spark):
    pairs = spark.createDataFrame(
        [("r1", "r2"), ("r3", "r4"), ("r5", "r6"), ("r1", "r9"), ("r2", "r3")], "left_key string, right_key string"
    )
    ask, show, prompts, shown = _scripted(["Y", "maybe", "n", "u", "q"])
    answers = label_interactively(pairs, _people(spark), ["given_name", "family_name"], ask=ask, show=show)
    assert answers == [("r1", "r2", True), ("r3", "r4", False)]
    assert len(prompts) == 5 and "[y]es / [n]o / [u]nsure / [q]uit" in prompts[0]
    pages = [s for s in shown if s.startswith("\npair")]
    assert len(pages) == 4  # r1-r9 is skipped: r9 is not a record
    assert pages[2].startswith("\npair 3 of 4 · 1 match, 1 non-match so far")
    assert "= given_name  | Anna  | Anna" in pages[0] and "  family_name | Smith | Smyth" in pages[0]
    assert "please answer y, n, u or q" in shown
    assert shown[-1] == "\n3 of 4 pairs answered: 1 match, 1 non-match, 1 unsure"
    assert_df_equality(labels_from_answers(spark, answers), _labels(spark, answers))


def test_interactive_labelling_stops_at_the_limit_and_at_end_of_input(spark):
    pairs = spark.createDataFrame([("r1", "r2"), ("r3", "r4"), ("r5", "r6")], "left_key string, right_key string")
    ask, show, _, _ = _scripted(["y", "y", "y"])
    assert len(label_interactively(pairs, _people(spark), ["given_name"], ask=ask, show=show, limit=2)) == 2

    def closed(prompt):
        raise EOFError

    assert label_interactively(pairs, _people(spark), ["given_name"], ask=closed, show=lambda s: None) == []
