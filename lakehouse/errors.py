"""Errors that the command line turns into one clear line instead of a stack trace."""


class LakehouseError(Exception):
    """A foreseeable problem (bad config, unreachable source, bad input) with a readable message."""


class ConfigError(LakehouseError):
    """The configuration is missing, mistyped or points at something unusable."""


class SourceError(LakehouseError):
    """A source system could not be read within the retry budget, or answered something unusable."""
