"""The error the stack's commands report to the user in one line, with exit status 1."""

from __future__ import annotations


class StackError(Exception):
    """A failure to report to the user in one line, with exit status 1."""


class DemoError(StackError):
    """A demo step failed: the message names what to look at."""
