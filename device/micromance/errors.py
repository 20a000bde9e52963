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
    """Base of every expected failure; ``exit_code`` is what the CLI returns.

    ``message`` says what is wrong and ``fix`` what to do about it (may be empty), kept apart
    so doctor shows them apart without parsing text; ``str()`` is the one line the CLI
    prints: "message; fix: fix".
    """

    exit_code = EX_SOFTWARE

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(*((message, fix) if fix else (message,)))  # args rebuild it (pickle)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}; fix: {self.fix}" if self.fix else self.message


class ConfigError(MicromanceError):
    """The config file (or a file it names) is missing, unreadable or has a bad value.

    ``key`` is the dotted key at fault (``"quiet_hours.start"``) when there is one, so the web
    page shows the error beside its field; "" for the file as a whole.
    """

    exit_code = EX_CONFIG

    def __init__(self, message: str, fix: str = "", *, key: str = "") -> None:
        super().__init__(message, fix)
        self.key = key


class HardwareError(MicromanceError):
    """A display, GPIO chip or bus the config asks for is not there or not accessible."""

    exit_code = EX_UNAVAILABLE


class StoreError(MicromanceError):
    """The state directory or database cannot be used.

    ``short`` says it in a few plain words for the unit's screen ("the disk is full").
    """

    exit_code = EX_CANTCREAT

    def __init__(self, message: str, fix: str = "", *, short: str = "") -> None:
        super().__init__(message, fix)
        self.short = short or "the storage fails"


class LinkError(MicromanceError):
    """The partner link cannot be set up (broker settings, pairing data)."""

    exit_code = EX_UNAVAILABLE
