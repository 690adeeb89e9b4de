"""One exception type for every problem the user can fix (bad file, bad preset, bad argument).

The CLI prints it as a single line and exits non-zero; the library lets it propagate.
"""


class GdoError(Exception):
    """A user-facing error: the message names the file, line, key or constraint at fault."""
