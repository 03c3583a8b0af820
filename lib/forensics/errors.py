"""Every error type of the project, under one root so callers can catch ``ForensicsError``."""

import errno


class ForensicsError(Exception):
    """Root of every error raised on purpose by this package."""

    exit_code = 1


class ParamsError(ForensicsError):
    """A parameters file (environment or incident YAML) is invalid. One line, exit 2."""

    exit_code = 2

    def __init__(self, path, message):
        self.path = str(path) if path is not None else None
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)

    def __reduce__(self):  # crosses process boundaries (parallel notebooks)
        return (type(self), (self.path, self.message))


class WindowError(ForensicsError):
    """An incident window that cannot be used (end before start, beyond retention...)."""

    exit_code = 2


class SourceError(ForensicsError):
    """A source (AWS API, PostgreSQL, HTTP) failed: unreachable, throttled, timed out, malformed."""

    def __init__(self, source, message):
        self.source = source
        self.message = message
        super().__init__(f"{source}: {message}")

    def __reduce__(self):
        return (type(self), (self.source, self.message))


class ReadOnlyViolation(ForensicsError):
    """A call that could change production was attempted through a forensic client."""


class RecordError(ForensicsError):
    """An evidence record cannot be written or read (exists already, not a record...)."""


class SandboxError(ForensicsError):
    """The embedded sandbox cannot start (no PostgreSQL binaries, port in use...)."""


class QueryError(ForensicsError, ValueError):
    """A query file that is malformed, or a call that does not fit its parameters. One line, exit 2."""

    exit_code = 2


class RecordBusy(RecordError):
    """Another run holds the incident's folder (its lock) and the caller asked not to wait. One line, exit 2."""

    exit_code = 2


class ObjectError(ForensicsError):
    """One S3 object could not be read (not gzip, not JSON, truncated...): recorded, the others go on."""


class ShortLine(ForensicsError, ValueError):
    """An access-log line with fewer fields than the format."""


class DiskFull(RecordError):
    """The disk (or quota) filled while a record was written: one line naming the path; the ``.partial``
    folder is left as it was."""

    #: the errno values of a full disk or quota
    ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class RunStopped(ForensicsError):
    """A run stopped by SIGINT or SIGTERM (exit 128 + the signal's number)."""

    def __init__(self, signum: int, message: str):
        self.exit_code = 128 + signum
        super().__init__(message)
