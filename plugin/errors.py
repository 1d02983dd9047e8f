"""The one exception type radiofind raises for problems a user can fix (bad input, bad options).

The CLI turns it into a one-line ``radiofind: error: ...`` message and exit status 1; anything
else escaping is a bug and keeps its traceback.
"""


class RadiofindError(Exception):
    """A user-facing error: bad input file, bad parameter value, missing tool."""
