"""Train a new match model version: ``python jobs/train_matcher.py --config conf/pipeline.yml``.

Learns from ``silver.match_labels`` (or bootstraps from sure pairs when there are too few
labels) over ``silver.customer_records``; the model goes to ``<lakehouse>/models/zingg/<version>``
and ``audit.match_models``. A spark-submit entry point as well. Same flags as ``cdi-spark run``.
"""

from _entry import run

if __name__ == "__main__":
    run("run", "--stages", "train_matcher")
