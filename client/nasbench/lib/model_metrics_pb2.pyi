from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelMetrics(_message.Message):
    __slots__ = ("evaluation_data", "trainable_parameters", "total_time")
    EVALUATION_DATA_FIELD_NUMBER: _ClassVar[int]
    TRAINABLE_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TIME_FIELD_NUMBER: _ClassVar[int]
    evaluation_data: _containers.RepeatedCompositeFieldContainer[EvaluationData]
    trainable_parameters: int
    total_time: float
    def __init__(self, evaluation_data: _Optional[_Iterable[_Union[EvaluationData, _Mapping]]] = ..., trainable_parameters: _Optional[int] = ..., total_time: _Optional[float] = ...) -> None: ...

class EvaluationData(_message.Message):
    __slots__ = ("current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy", "checkpoint_path")
    CURRENT_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TRAINING_TIME_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_PATH_FIELD_NUMBER: _ClassVar[int]
    current_epoch: float
    training_time: float
    train_accuracy: float
    validation_accuracy: float
    test_accuracy: float
    checkpoint_path: str
    def __init__(self, current_epoch: _Optional[float] = ..., training_time: _Optional[float] = ..., train_accuracy: _Optional[float] = ..., validation_accuracy: _Optional[float] = ..., test_accuracy: _Optional[float] = ..., checkpoint_path: _Optional[str] = ...) -> None: ...
