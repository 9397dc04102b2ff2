"""Every error this project raises, in one tree.

::

    NasbenchError(Exception)
    ├── OutOfDomainError                  the original name (api.OutOfDomainError), original messages
    │   └── TooManyVerticesError(TypeError)  >7 vertices: the original raised TypeError here
    ├── InvalidSpecError(ValueError)      malformed matrix or ops; ``except ValueError`` still works
    ├── UnknownCellError(KeyError)        a hash or key absent from the data; args == (hash,)
    ├── StoreError
    │   ├── StoreNotFoundError            no store at the path
    │   ├── StoreSchemaError              written by an unknown schema version
    │   └── StoreCorruptError             a checksum or an invariant does not hold
    ├── SourceError                       a dataset file that cannot be read or trusted (path, record index)
    ├── DownloadError                     a dataset file that could not be fetched or verified (network, HTTP
    │                                     status, truncated body, checksum, full disk); nothing left at the target
    ├── CifarError                        the CIFAR-10 files for training are missing, damaged or not CIFAR-10
    ├── ConfigurationError(ValueError)    a setting that cannot work (e.g. a server exposed unprotected)
    └── RemoteError
        ├── ServiceUnavailableError       no server answered (after retries) or the deadline passed
        ├── RequestRejectedError          the server refused the request (limits, malformed message)
        ├── NotAuthorizedError            a missing or wrong token
        ├── DatasetMismatchError          a server answering from another dataset than the one the client pinned
        └── UsageError(RuntimeError)      a client used where it cannot work: closed, another event loop, a fork

Subclassing the builtin that the original raised keeps old ``except`` clauses working.
"""

from __future__ import annotations


class NasbenchError(Exception):
    """Base of every error raised on purpose by this project."""


class OutOfDomainError(NasbenchError):
    """The requested graph is outside of the search domain."""


class TooManyVerticesError(OutOfDomainError, TypeError):
    """A pruned spec with more vertices than the space allows.

    The original API meant to raise OutOfDomainError but raised ``TypeError`` (its message formatting indexed
    a module); this error is both, so code written against either behaviour keeps working.
    """


class InvalidSpecError(NasbenchError, ValueError):
    """A matrix or ops list that cannot describe a cell at all."""


class UnknownCellError(NasbenchError, KeyError):
    """A hash or canonical key that is not in the dataset; ``args[0]`` is the missing hash, as in the original."""


class StoreError(NasbenchError):
    """A store that cannot be opened or trusted."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """There is no store at the given path."""


class StoreSchemaError(StoreError):
    """The store was written with a schema version this code does not read."""


class StoreCorruptError(StoreError):
    """A checksum or an invariant of the store does not hold."""


class SourceError(NasbenchError):
    """A dataset file that cannot be read or trusted; names the file and the record index."""

    def __init__(self, message: str, *, path: str | None = None, record: int | None = None) -> None:
        where = []
        if path is not None:
            where.append(str(path))
        if record is not None:
            where.append(f"record {record}")
        super().__init__(f"{': '.join(where)}: {message}" if where else message)
        self.path = path
        self.record = record
        self.reason = message


class DownloadError(NasbenchError):
    """A dataset file that could not be fetched or verified; the message names the URL or file, what went wrong,
    and what to do (resume, a mirror, or download elsewhere and ``nasbench build``)."""


class CifarError(NasbenchError):
    """The CIFAR-10 files are missing, damaged or not what they should be; the message says which and where."""


class ConfigurationError(NasbenchError, ValueError):
    """A setting that cannot work: a server exposed beyond loopback unprotected, workers without a port."""


class RemoteError(NasbenchError):
    """A failure talking to a nasbench server."""


class ServiceUnavailableError(RemoteError, ConnectionError):
    """No server answered in time (after retries), or the deadline passed."""


class RequestRejectedError(RemoteError):
    """The server refused the request: it was malformed or exceeded a limit."""


class NotAuthorizedError(RemoteError, PermissionError):
    """The server wants a token (or another one): pass ``token=`` to NASBench."""


class DatasetMismatchError(RemoteError):
    """A server holds another dataset than the one this client is pinned to (a replica serving another store, a
    server restarted onto another store): no answer of it is used, and the message names both datasets."""


class UsageError(RemoteError, RuntimeError):
    """A client used where it cannot work: after ``close()``, from another event loop than the one it connected
    in, or in a child process after ``fork`` (connect again there)."""
