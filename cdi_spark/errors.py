"""One hierarchy of errors, each with a message that says what to do.

Jobs catch :class:`CdiError`, print its message and exit with its ``exit_code``; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class CdiError(Exception):
    """Base class of every error cdi-spark raises on purpose."""

    exit_code = 1


class ConfigError(CdiError, ValueError):
    """A configuration file is missing, malformed, or holds a wrong key, type or value.

    The message names the file, the key (as a dotted path), what was found and what was
    expected.
    """

    exit_code = 2

    def __init__(self, file: object, key: str, problem: str) -> None:
        self.file = str(file)
        self.key = key
        self.problem = problem
        where = f"{self.file}: {key}" if key else self.file
        super().__init__(f"{where}: {problem}")


class SessionError(CdiError, RuntimeError):
    """The SparkSession cannot be built or lacks a jar the pipeline needs."""

    exit_code = 3


class SchemaError(CdiError, ValueError):
    """A DataFrame or file does not have the columns or types a stage needs."""


class MissingColumnError(SchemaError):
    """A required column is absent; the message lists the columns that are present."""

    def __init__(self, where: str, missing: list[str] | tuple[str, ...], present: list[str]):
        self.where = where
        self.missing = list(missing)
        self.present = list(present)
        super().__init__(
            f"{where}: missing required column(s) {', '.join(self.missing)}; "
            f"present: {', '.join(self.present) or '(none)'}"
        )


class StageError(CdiError, RuntimeError):
    """A pipeline stage failed in a way the operator can act on (counts do not add up, a
    quality threshold was crossed, an input is unusable)."""

    def __init__(self, stage: str, message: str) -> None:
        self.stage = stage
        super().__init__(f"stage {stage}: {message}")
