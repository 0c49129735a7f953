"""Erase a person (GDPR): ``python jobs/erase.py --email ... | --customer-id ... | --source-id ...``.

Removes the person from bronze, quarantine, silver, gold, the labels and the match model's
training data, appends a tombstone (``audit.erasure_tombstones``) and an ``audit.erasures``
row without personal data, and prints the VACUUM that removes the old versions (``--vacuum``
runs it). Needs the salt in ``CDI_SPARK_PII_SALT``. A spark-submit entry point as well; same
flags as ``cdi-spark erase``; see docs/privacy.md.
"""

from _entry import run

if __name__ == "__main__":
    run("erase")
