"""Match quality against ground truth: a hand-computed answer, edge cases, CSV errors."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality

from cdi_spark.errors import CdiError, MissingColumnError, StageError
from cdi_spark.evaluate import Span, evaluate, evaluate_files, format_evaluation, read_csv_pairs

# entities A={1,2,3} B={4,5} C={6}; clusters X={1,2} Y={3,4,5} Z={6}
TRUTH = [("1", "A"), ("2", "A"), ("3", "A"), ("4", "B"), ("5", "B"), ("6", "C")]
CLUSTERS = [("1", "X"), ("2", "X"), ("3", "Y"), ("4", "Y"), ("5", "Y"), ("6", "Z")]


def _frames(spark, truth, clusters):
    return (spark.createDataFrame(truth, "record_id string, entity_id string"),
            spark.createDataFrame(clusters, "record_id string, cluster_id string"))


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_measures_match_the_hand_computed_answer(spark):
    ev = evaluate(*_frames(spark, TRUTH, CLUSTERS))
    # true pairs 3+1, predicted 1+3, correct C(2,2) in X&A + C(2,2) in Y&B
    assert (ev.true_pairs, ev.predicted_pairs, ev.correct_pairs) == (4, 4, 2)
    assert (ev.precision, ev.recall, ev.f1) == (0.5, 0.5, 0.5)
    # B-cubed: per record overlap/|cluster| = 1, 1, 1/3, 2/3, 2/3, 1 -> 14/3 over 6 records
    assert ev.bcubed_precision == pytest.approx(7 / 9)
    assert ev.bcubed_recall == pytest.approx(7 / 9)
    assert ev.bcubed_f1 == pytest.approx(7 / 9)
    # (2 - 4*4/15) / ((4+4)/2 - 4*4/15)
    assert ev.adjusted_rand == pytest.approx(7 / 22)
    assert (ev.records, ev.clusters, ev.entities, ev.largest_cluster) == (6, 3, 3, 3)
    assert ev.worst_false_merges == (Span("Y", 3, 2, 2),)
    assert ev.worst_false_splits == (Span("A", 3, 2, 2),)


def test_a_perfect_clustering_scores_one(spark):
    clusters = [(r, f"c-{e}") for r, e in TRUTH]
    ev = evaluate(*_frames(spark, TRUTH, clusters))
    assert (ev.precision, ev.recall, ev.f1, ev.bcubed_f1, ev.adjusted_rand) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert ev.worst_false_merges == ev.worst_false_splits == ()


def test_all_singletons_have_zero_recall(spark):
    ev = evaluate(*_frames(spark, TRUTH, [(r, r) for r, _ in TRUTH]))
    assert (ev.predicted_pairs, ev.correct_pairs, ev.recall, ev.f1) == (0, 0, 0.0, 0.0)
    assert ev.precision == 1.0  # no pair predicted, none wrong
    assert ev.bcubed_precision == 1.0
    assert ev.worst_false_splits[0] == Span("A", 3, 3, 3)


def test_one_giant_cluster_has_low_precision(spark):
    ev = evaluate(*_frames(spark, TRUTH, [(r, "all") for r, _ in TRUTH]))
    assert ev.recall == 1.0
    assert ev.precision == pytest.approx(4 / 15)
    assert ev.adjusted_rand == pytest.approx(0.0)
    assert (ev.largest_cluster, ev.clusters) == (6, 1)
    assert ev.worst_false_merges == (Span("all", 6, 3, 11),)


def test_csv_headers_are_matched_loosely_and_extra_columns_ignored(spark, tmp_path):
    path = _write(tmp_path / "c.csv", "\ufeff Record_ID ,score,cluster_id\n1,0.9,X\n2,0.8,X\n")
    expected = spark.createDataFrame([("1", "X"), ("2", "X")], "record_id string, cluster_id string")
    assert_df_equality(read_csv_pairs(spark, path, "record_id", "cluster_id"), expected, ignore_nullable=True)


def test_evaluate_files_reads_both_csvs(spark, tmp_path):
    truth = _write(tmp_path / "truth.csv", "record_id,entity_id,name\n" + "".join(f"{r},{e},x\n" for r, e in TRUTH))
    clusters = _write(tmp_path / "clusters.csv", "record_id,cluster_id\n" + "".join(f"{r},{c}\n" for r, c in CLUSTERS))
    ev = evaluate_files(spark, truth, clusters)
    assert (ev.precision, ev.recall, ev.records) == (0.5, 0.5, 6)
    report = format_evaluation(ev)
    assert "pairwise    precision 0.5000   recall 0.5000   F1 0.5000" in report
    assert "Y: 3 records in 2 entities, 2 wrong pairs" in report
    assert "A: 3 records in 2 clusters, 2 missed pairs" in report


def test_a_wrong_header_names_the_file_and_the_missing_column(spark, tmp_path):
    truth = _write(tmp_path / "truth.csv", "id,entity_id\n1,A\n")
    clusters = _write(tmp_path / "clusters.csv", "record_id,cluster_id\n1,X\n")
    with pytest.raises(MissingColumnError, match=r"truth\.csv \(header\): missing required column\(s\) record_id; "
                                                 r"present: id, entity_id"):
        evaluate_files(spark, truth, clusters)


def test_a_missing_file_is_a_clear_error(spark, tmp_path):
    clusters = _write(tmp_path / "clusters.csv", "record_id,cluster_id\n1,X\n")
    with pytest.raises(CdiError, match=r"nope\.csv: cannot read the CSV file"):
        evaluate_files(spark, str(tmp_path / "nope.csv"), clusters)


def test_record_ids_in_one_input_only_fail_unless_allowed(spark):
    truth, clusters = _frames(spark, TRUTH, CLUSTERS[:4] + [("7", "Q")])
    with pytest.raises(StageError, match=r"2 record ids are in truth but not in clusters \(e\.g\. 5, 6\); "
                                         r"1 are in clusters but not in truth \(e\.g\. 7\); 4 in both"):
        evaluate(truth, clusters)
    ev = evaluate(truth, clusters, allow_missing=True)
    assert (ev.records, ev.only_in_truth, ev.only_in_clusters) == (4, 2, 1)
    assert "not evaluated: 2 records only in the truth, 1 only in the clusters" in format_evaluation(ev)


def test_a_record_in_two_clusters_is_an_error(spark):
    with pytest.raises(StageError, match="1 record ids appear more than once in clusters"):
        evaluate(*_frames(spark, TRUTH, [*CLUSTERS, ("1", "Z")]))


def test_evaluate_command_prints_the_report(spark, tmp_path, capsys):
    from cdi_spark.cli import main

    truth = tmp_path / "truth.csv"
    clusters = tmp_path / "clusters.csv"
    truth.write_text("record_id,entity_id\na,1\nb,1\nc,2\n")
    clusters.write_text("record_id,cluster_id\na,x\nb,x\nc,x\n")
    assert main(["evaluate", "--truth", str(truth), "--clusters", str(clusters)]) == 0
    out = capsys.readouterr().out
    assert "precision" in out.lower() and "recall" in out.lower()


def test_evaluate_command_names_a_bad_header(spark, tmp_path, capsys):
    from cdi_spark.cli import main

    truth = tmp_path / "truth.csv"
    truth.write_text("id,entity_id\na,1\n")
    clusters = tmp_path / "clusters.csv"
    clusters.write_text("record_id,cluster_id\na,x\n")
    assert main(["evaluate", "--truth", str(truth), "--clusters", str(clusters)]) != 0
    assert "missing required column(s) record_id" in capsys.readouterr().err
