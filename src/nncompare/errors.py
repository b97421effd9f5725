"""Errors that reach the user as one line, never as a traceback."""


class NNCompareError(Exception):
    """A failure the user can act on; the CLI prints it as one line and exits non-zero."""

    exit_code = 1


class UsageError(NNCompareError):
    """Bad input (flag, file, directory): exit code 2, like a command-line usage error."""

    exit_code = 2


class DataError(UsageError):
    """A dataset file is missing, corrupt, truncated or does not match its checksum."""


class EngineError(NNCompareError):
    """An engine could not start, lost its workers, or failed mid-training."""
