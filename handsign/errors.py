"""Errors a user can cause. The CLI prints them as one line and exits 2; nothing else is caught."""


class HandsignError(Exception):
    """A user's mistake or a bad input file: bad path, bad CSV, unknown recipe, hostile model file."""


class DataError(HandsignError):
    """A data file is missing, malformed or out of range."""


class CheckpointError(HandsignError):
    """A model file is missing, corrupt, inconsistent or not a handsign checkpoint."""


class ImageError(HandsignError):
    """An image cannot be decoded or is too large to decode safely."""
