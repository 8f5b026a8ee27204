"""Errors a user can cause.

Anything raised as :class:`UserError` reaches the terminal as one line on stderr and exit status 2
(see :mod:`tinydiffusion.cli.main`); everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in what the user asked for: a bad flag, missing data, a wrong checkpoint.

    The message must say what is wrong and, where it can, what to do instead, in one line.
    """


class ScheduleWarning(UserWarning):
    """A noise schedule that will train or sample badly (for example ᾱ_T far from 0)."""


class DataWarning(UserWarning):
    """A data problem that was worked around (a skipped unreadable file, a resized image, …)."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped training after the state was saved; the exit status is 128 + ``signum``."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
