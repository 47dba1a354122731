"""Exceptions with messages that name the thing at fault and the fix."""


class DigError(Exception):
    """Base class for every error dig raises on purpose (the CLI prints these without a traceback)."""


class UnknownNameError(DigError, KeyError):
    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class DuplicateNameError(DigError):
    pass


class PluginError(DigError):
    pass


class DataError(DigError):
    pass


class TrainingError(DigError):
    pass
