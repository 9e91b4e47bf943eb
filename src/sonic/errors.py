"""The one exception family for a user's mistake or bad input.

Anything raised as :class:`SonicError` reaches a command-line user as one sentence,
without a traceback. The message names the bad value, the file, and what would be valid.
"""


class SonicError(Exception):
    """A problem with the user's input or request (not a bug in SONIC)."""


class DataError(SonicError):
    """Listening data or an embedding table is missing, malformed or inconsistent."""


class AudioError(SonicError):
    """An audio file cannot be decoded, or holds nothing usable."""


class UnknownNameError(SonicError):
    """A name (embedder, recommender, protocol, metric) is not registered."""
