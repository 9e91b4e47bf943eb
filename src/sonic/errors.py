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


class BrokenAudioError(AudioError):
    """An audio file that exists but cannot be read whole; ``problem`` says how.

    ``problem`` is ``"empty"`` (no bytes, or no audio frames), ``"undecodable"`` (not audio, or
    damaged) or ``"truncated"`` (decoding ends well before the length its header declares).
    """

    def __init__(self, message: str, problem: str) -> None:
        super().__init__(message)
        self.problem = problem

    def __reduce__(self):  # keeps ``problem`` when the error crosses to another process
        return type(self), (str(self), self.problem)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, caught where the work stopped, with one sentence on what was kept and how to continue
    (``3 of 8 shards of mfcc_104 are kept in 'out'; run the same command again to continue``)."""
