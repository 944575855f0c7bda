"""User-facing errors.

Every problem a user can fix (bad data, bad names, bad artifacts, bad flags) is raised as a
:class:`ReprogramError` whose message says what was wrong and what to do. The command line
prints that message as one paragraph and exits non-zero; it never shows a traceback for them.
"""

from __future__ import annotations


class ReprogramError(Exception):
    """A problem the user can fix; the message says what went wrong and what to do."""


class DataError(ReprogramError):
    """The target data cannot be used as given (missing, unreadable, malformed)."""


class ArtifactError(ReprogramError):
    """An artifact directory is missing, corrupt, or does not match its source model."""


class SealedSplitError(ReprogramError):
    """The test split was read before model selection finished."""
