"""The one exception type that entry points turn into a one-line message and a non-zero exit."""


class UserError(Exception):
    """Bad input from the user: the message names the file or option and the fix."""
