"""The one exception of bad data. It lives below every reader (`sources` reads the files, `csvread` a
CSV file's cells) so that each can raise it; `sources` is where the rest of dlc imports it from."""


class DataError(ValueError):
    """Bad data: a one-line message naming the file and, where it applies, the row and column."""
