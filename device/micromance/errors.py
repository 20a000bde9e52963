"""One exception base, one subclass per layer, each with the exit code the CLI uses.

Expected failures (a bad config, a missing display) reach the user as one clear line and an
exit code from sysexits.h, never as a traceback.
"""

EX_USAGE = 2
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_CANTCREAT = 73
EX_CONFIG = 78


class MicromanceError(Exception):
    """Base of every expected failure; ``exit_code`` is what the CLI returns."""

    exit_code = EX_SOFTWARE


class ConfigError(MicromanceError):
    """The config file (or a file it names) is missing, unreadable or has a bad value."""

    exit_code = EX_CONFIG


class HardwareError(MicromanceError):
    """A display, GPIO chip or bus the config asks for is not there or not accessible."""

    exit_code = EX_UNAVAILABLE


class StoreError(MicromanceError):
    """The state directory or database cannot be used."""

    exit_code = EX_CANTCREAT


class LinkError(MicromanceError):
    """The partner link cannot be set up (broker settings, pairing data)."""

    exit_code = EX_UNAVAILABLE
