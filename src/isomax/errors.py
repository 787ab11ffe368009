"""The base of the errors isomax raises on purpose.

Every exception class of the project derives from :class:`IsoMaxError` and keeps its builtin base
(``CheckpointError`` is still a ``ValueError``, ``DatasetNotFoundError`` a ``FileNotFoundError``), so
``except IsoMaxError`` catches what isomax refused, and older ``except ValueError`` code keeps working.
This module imports nothing: every layer may use it.
"""

__all__ = ["IsoMaxError", "InputError"]


class IsoMaxError(Exception):
    """Something isomax refused or could not do, with a message that says what and, where it can, how
    to fix it (bad input, a missing or corrupt file, a run that does not match, a diverged training)."""


class InputError(IsoMaxError, ValueError):
    """A value isomax was given is wrong: a flag, an argument, a shape, a name, the content of a file.

    The message names the value and what was expected. A ``ValueError`` too, as these checks raised before.
    """
