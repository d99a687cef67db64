"""The error a user can fix: reported in one line, without a traceback."""


class UserError(Exception):
    """A mistake in the user's config or input: reported in one line, no traceback."""
