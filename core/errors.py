"""One root error type; the CLI maps each kind to an exit code and the web layer to a status."""


class NurtureError(Exception):
    """Anything Nurture reports to a person as one clear line."""

    exit_code = 1


class ConfigError(NurtureError):
    """A setting is missing or wrong; the message names the key to fix."""

    exit_code = 78  # EX_CONFIG


class InputError(NurtureError):
    """Bad input from a person: a CSV, a command argument, a definition file."""

    exit_code = 65  # EX_DATAERR


class NotFound(NurtureError):
    """A contact, campaign or message that does not exist."""

    exit_code = 66


class ValidationFailed(NurtureError):
    """A campaign or template breaks a rule; carries every problem found."""

    exit_code = 65

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))
