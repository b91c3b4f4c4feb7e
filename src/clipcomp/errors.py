"""One exception type for every user-facing problem, so the CLI can print it as one line (and a file hash
that several modules record as provenance)."""


import hashlib


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file, read in blocks (provenance of inputs, identity of weights)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


class ClipcompError(Exception):
    """A problem with the user's input or settings; the message names the file and what was expected."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self):  # survive pickling across process pools and Dask workers
        return (type(self), (self.message,))

    def __str__(self) -> str:
        return self.message
