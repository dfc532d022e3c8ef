"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class BenchError(Exception):
    """A user-facing error: the message is one line that names the offending thing."""
