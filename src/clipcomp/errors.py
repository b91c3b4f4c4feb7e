"""One exception type for every user-facing problem, so the CLI can print it as one line."""


class ClipcompError(Exception):
    """A problem with the user's input or settings; the message names the file and what was expected."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self):  # survive pickling across process pools and Dask workers
        return (type(self), (self.message,))

    def __str__(self) -> str:
        return self.message
