from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Op(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OP_UNSPECIFIED: _ClassVar[Op]
    CONV3X3_BN_RELU: _ClassVar[Op]
    CONV1X1_BN_RELU: _ClassVar[Op]
    MAXPOOL3X3: _ClassVar[Op]

class RepeatMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPEAT_ALL: _ClassVar[RepeatMode]
    REPEAT_INDEX: _ClassVar[RepeatMode]
    REPEAT_MEAN: _ClassVar[RepeatMode]
    REPEAT_HASHED: _ClassVar[RepeatMode]
OP_UNSPECIFIED: Op
CONV3X3_BN_RELU: Op
CONV1X1_BN_RELU: Op
MAXPOOL3X3: Op
REPEAT_ALL: RepeatMode
REPEAT_INDEX: RepeatMode
REPEAT_MEAN: RepeatMode
REPEAT_HASHED: RepeatMode

class PackedSpec(_message.Message):
    __slots__ = ("num_vertices", "edges", "ops")
    NUM_VERTICES_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    num_vertices: int
    edges: int
    ops: _containers.RepeatedScalarFieldContainer[Op]
    def __init__(self, num_vertices: _Optional[int] = ..., edges: _Optional[int] = ..., ops: _Optional[_Iterable[_Union[Op, str]]] = ...) -> None: ...

class MatrixSpec(_message.Message):
    __slots__ = ("num_vertices", "adjacency", "ops")
    NUM_VERTICES_FIELD_NUMBER: _ClassVar[int]
    ADJACENCY_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    num_vertices: int
    adjacency: bytes
    ops: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, num_vertices: _Optional[int] = ..., adjacency: _Optional[bytes] = ..., ops: _Optional[_Iterable[str]] = ...) -> None: ...

class CellRef(_message.Message):
    __slots__ = ("key", "hash", "hash_hex", "packed", "matrix")
    KEY_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_HEX_FIELD_NUMBER: _ClassVar[int]
    PACKED_FIELD_NUMBER: _ClassVar[int]
    MATRIX_FIELD_NUMBER: _ClassVar[int]
    key: int
    hash: bytes
    hash_hex: str
    packed: PackedSpec
    matrix: MatrixSpec
    def __init__(self, key: _Optional[int] = ..., hash: _Optional[bytes] = ..., hash_hex: _Optional[str] = ..., packed: _Optional[_Union[PackedSpec, _Mapping]] = ..., matrix: _Optional[_Union[MatrixSpec, _Mapping]] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("cell", "epochs", "stop_halfway", "repeat", "repeat_index", "seed", "request_id")
    CELL_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    STOP_HALFWAY_FIELD_NUMBER: _ClassVar[int]
    REPEAT_FIELD_NUMBER: _ClassVar[int]
    REPEAT_INDEX_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    cell: CellRef
    epochs: int
    stop_halfway: bool
    repeat: RepeatMode
    repeat_index: int
    seed: int
    request_id: int
    def __init__(self, cell: _Optional[_Union[CellRef, _Mapping]] = ..., epochs: _Optional[int] = ..., stop_halfway: _Optional[bool] = ..., repeat: _Optional[_Union[RepeatMode, str]] = ..., repeat_index: _Optional[int] = ..., seed: _Optional[int] = ..., request_id: _Optional[int] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy")
    TRAINING_TIME_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    training_time: float
    train_accuracy: float
    validation_accuracy: float
    test_accuracy: float
    def __init__(self, training_time: _Optional[float] = ..., train_accuracy: _Optional[float] = ..., validation_accuracy: _Optional[float] = ..., test_accuracy: _Optional[float] = ...) -> None: ...

class CellData(_message.Message):
    __slots__ = ("key", "hash", "representative", "trainable_parameters", "epochs", "repeats", "metrics")
    KEY_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    REPRESENTATIVE_FIELD_NUMBER: _ClassVar[int]
    TRAINABLE_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    key: int
    hash: bytes
    representative: int
    trainable_parameters: int
    epochs: _containers.RepeatedScalarFieldContainer[int]
    repeats: int
    metrics: bytes
    def __init__(self, key: _Optional[int] = ..., hash: _Optional[bytes] = ..., representative: _Optional[int] = ..., trainable_parameters: _Optional[int] = ..., epochs: _Optional[_Iterable[int]] = ..., repeats: _Optional[int] = ..., metrics: _Optional[bytes] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "kind", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    kind: str
    message: str
    def __init__(self, code: _Optional[int] = ..., kind: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("cell", "runs", "request_id", "error")
    CELL_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    cell: CellData
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    request_id: int
    error: Error
    def __init__(self, cell: _Optional[_Union[CellData, _Mapping]] = ..., runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., request_id: _Optional[int] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class QueryBatchRequest(_message.Message):
    __slots__ = ("keys", "cells", "epochs", "stop_halfway", "repeat", "repeat_index", "seed")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    STOP_HALFWAY_FIELD_NUMBER: _ClassVar[int]
    REPEAT_FIELD_NUMBER: _ClassVar[int]
    REPEAT_INDEX_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[int]
    cells: _containers.RepeatedCompositeFieldContainer[CellRef]
    epochs: int
    stop_halfway: bool
    repeat: RepeatMode
    repeat_index: int
    seed: int
    def __init__(self, keys: _Optional[_Iterable[int]] = ..., cells: _Optional[_Iterable[_Union[CellRef, _Mapping]]] = ..., epochs: _Optional[int] = ..., stop_halfway: _Optional[bool] = ..., repeat: _Optional[_Union[RepeatMode, str]] = ..., repeat_index: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class QueryBatchResponse(_message.Message):
    __slots__ = ("count", "found", "keys", "representatives", "trainable_parameters", "epochs", "repeats", "values", "metrics", "hashes")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    REPRESENTATIVES_FIELD_NUMBER: _ClassVar[int]
    TRAINABLE_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    count: int
    found: bytes
    keys: bytes
    representatives: bytes
    trainable_parameters: bytes
    epochs: _containers.RepeatedScalarFieldContainer[int]
    repeats: int
    values: int
    metrics: bytes
    hashes: bytes
    def __init__(self, count: _Optional[int] = ..., found: _Optional[bytes] = ..., keys: _Optional[bytes] = ..., representatives: _Optional[bytes] = ..., trainable_parameters: _Optional[bytes] = ..., epochs: _Optional[_Iterable[int]] = ..., repeats: _Optional[int] = ..., values: _Optional[int] = ..., metrics: _Optional[bytes] = ..., hashes: _Optional[bytes] = ...) -> None: ...

class SampleRequest(_message.Message):
    __slots__ = ("k", "seed", "num_vertices", "num_edges", "min_parameters", "max_parameters", "ops")
    K_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    NUM_VERTICES_FIELD_NUMBER: _ClassVar[int]
    NUM_EDGES_FIELD_NUMBER: _ClassVar[int]
    MIN_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    MAX_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    k: int
    seed: int
    num_vertices: _containers.RepeatedScalarFieldContainer[int]
    num_edges: _containers.RepeatedScalarFieldContainer[int]
    min_parameters: int
    max_parameters: int
    ops: _containers.RepeatedScalarFieldContainer[Op]
    def __init__(self, k: _Optional[int] = ..., seed: _Optional[int] = ..., num_vertices: _Optional[_Iterable[int]] = ..., num_edges: _Optional[_Iterable[int]] = ..., min_parameters: _Optional[int] = ..., max_parameters: _Optional[int] = ..., ops: _Optional[_Iterable[_Union[Op, str]]] = ...) -> None: ...

class NeighborsRequest(_message.Message):
    __slots__ = ("cell",)
    CELL_FIELD_NUMBER: _ClassVar[int]
    cell: CellRef
    def __init__(self, cell: _Optional[_Union[CellRef, _Mapping]] = ...) -> None: ...

class CellsResponse(_message.Message):
    __slots__ = ("cells",)
    CELLS_FIELD_NUMBER: _ClassVar[int]
    cells: _containers.RepeatedCompositeFieldContainer[CellData]
    def __init__(self, cells: _Optional[_Iterable[_Union[CellData, _Mapping]]] = ...) -> None: ...

class GetMetricsRequest(_message.Message):
    __slots__ = ("cell",)
    CELL_FIELD_NUMBER: _ClassVar[int]
    cell: CellRef
    def __init__(self, cell: _Optional[_Union[CellRef, _Mapping]] = ...) -> None: ...

class ListCellsRequest(_message.Message):
    __slots__ = ("chunk_size", "start")
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    chunk_size: int
    start: int
    def __init__(self, chunk_size: _Optional[int] = ..., start: _Optional[int] = ...) -> None: ...

class ListCellsResponse(_message.Message):
    __slots__ = ("start", "hashes")
    START_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    start: int
    hashes: bytes
    def __init__(self, start: _Optional[int] = ..., hashes: _Optional[bytes] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Info(_message.Message):
    __slots__ = ("epochs", "cells", "repeats", "schema_version", "checksum", "manifest_json", "server_version", "requests_served", "max_batch", "max_sample", "synthetic", "pid")
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_JSON_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_SERVED_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    MAX_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    SYNTHETIC_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    epochs: _containers.RepeatedScalarFieldContainer[int]
    cells: int
    repeats: int
    schema_version: int
    checksum: str
    manifest_json: str
    server_version: str
    requests_served: int
    max_batch: int
    max_sample: int
    synthetic: bool
    pid: int
    def __init__(self, epochs: _Optional[_Iterable[int]] = ..., cells: _Optional[int] = ..., repeats: _Optional[int] = ..., schema_version: _Optional[int] = ..., checksum: _Optional[str] = ..., manifest_json: _Optional[str] = ..., server_version: _Optional[str] = ..., requests_served: _Optional[int] = ..., max_batch: _Optional[int] = ..., max_sample: _Optional[int] = ..., synthetic: _Optional[bool] = ..., pid: _Optional[int] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetOptimaRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Optimum(_message.Message):
    __slots__ = ("epochs", "validation_accuracy", "validation_hash", "test_accuracy", "test_hash")
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_HASH_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TEST_HASH_FIELD_NUMBER: _ClassVar[int]
    epochs: int
    validation_accuracy: float
    validation_hash: bytes
    test_accuracy: float
    test_hash: bytes
    def __init__(self, epochs: _Optional[int] = ..., validation_accuracy: _Optional[float] = ..., validation_hash: _Optional[bytes] = ..., test_accuracy: _Optional[float] = ..., test_hash: _Optional[bytes] = ...) -> None: ...

class GetOptimaResponse(_message.Message):
    __slots__ = ("optima",)
    OPTIMA_FIELD_NUMBER: _ClassVar[int]
    optima: _containers.RepeatedCompositeFieldContainer[Optimum]
    def __init__(self, optima: _Optional[_Iterable[_Union[Optimum, _Mapping]]] = ...) -> None: ...
