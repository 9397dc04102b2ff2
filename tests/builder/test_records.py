"""Record payloads: the fast and the general parser agree, every malformed field gets a precise message, and
the hand-written encoder writes what protobuf writes."""

from __future__ import annotations

import base64
import binascii
import json
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nasbench import canonical
from nasbench.lib.model_metrics_pb2 import EvaluationData, ModelMetrics
from nasbench_builder import records

HASH = "28cfc7874f6d200472e1a9dcd8650aa0"
CHAIN = "010001000"
CHAIN_OPS = "input,conv3x3-bn-relu,output"


def _metrics(points: int = 3, value: float = 0.5) -> str:
    message = ModelMetrics(trainable_parameters=1234, total_time=99.0)
    for i in range(points):
        message.evaluation_data.add(
            current_epoch=float(i),
            training_time=10.0 * i,
            train_accuracy=value,
            validation_accuracy=value,
            test_accuracy=value,
            checkpoint_path="",
        )
    return base64.b64encode(message.SerializeToString()).decode()


def _payload(*fields: object) -> bytes:
    return json.dumps(list(fields)).encode()


def test_fast_path_matches_json() -> None:
    payload = _payload(HASH, 108, CHAIN, CHAIN_OPS, _metrics())
    assert records._FAST_PAYLOAD.fullmatch(payload) is not None
    assert records.split_payload(payload) == records.Payload(*json.loads(payload))


@given(
    st.sampled_from([HASH]),
    st.integers(1, 10**6),
    st.sampled_from([CHAIN, "0100", "0110010000000"]),
    st.text(max_size=40),
    st.text(alphabet="ABCxyz019+/=", max_size=40),
    st.sampled_from([", ", ","]),
)
def test_fast_and_general_paths_agree(
    module_hash: str, epochs: int, adjacency: str, operations: str, metrics: str, separator: str
) -> None:
    """Whatever the strings hold (escapes, unicode, other separators), both paths read the same fields."""
    payload = json.dumps([module_hash, epochs, adjacency, operations, metrics], separators=(separator, ":")).encode()
    assert records.split_payload(payload) == records.Payload(module_hash, epochs, adjacency, operations, metrics)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param(b'["abc", 108', "not valid JSON", id="bad-json"),
        pytest.param(b"\xff\xfe", "not UTF-8|not valid JSON", id="not-utf8"),
        pytest.param(b'{"a": 1}', "a JSON list of 5 fields, got dict", id="object"),
        pytest.param(_payload(HASH, 108, CHAIN, CHAIN_OPS), "a JSON list of 5 fields, got a list of 4", id="4-fields"),
        pytest.param(_payload(HASH[:-1], 108, CHAIN, CHAIN_OPS, "x"), "32 lowercase hex", id="short-hash"),
        pytest.param(_payload(HASH.upper(), 108, CHAIN, CHAIN_OPS, "x"), "32 lowercase hex", id="upper-hash"),
        pytest.param(_payload(HASH, "108", CHAIN, CHAIN_OPS, "x"), r"epochs\) must be a positive integer", id="str-ep"),
        pytest.param(_payload(HASH, 108.0, CHAIN, CHAIN_OPS, "x"), "positive integer, got 108.0", id="float-ep"),
        pytest.param(_payload(HASH, True, CHAIN, CHAIN_OPS, "x"), "positive integer, got True", id="bool-epochs"),
        pytest.param(_payload(HASH, 0, CHAIN, CHAIN_OPS, "x"), "positive integer, got 0", id="zero-epochs"),
        pytest.param(_payload(HASH, 108, 10, CHAIN_OPS, "x"), r"field 3 \(adjacency\) must be a string", id="adj"),
        pytest.param(
            _payload(HASH, 108, CHAIN, ["a"], "x"), r"field 4 \(operations\) must be a string, got list$", id="ops"
        ),
        pytest.param(b'["\xff"]', r"^payload is not UTF-8 \(invalid start byte at byte 2\)$", id="not-utf8-whole"),
        pytest.param(b"[" * 100_000, "^payload is not a record: its JSON nests too deeply to decode$", id="deep"),
        pytest.param(_payload(HASH, 108, CHAIN, CHAIN_OPS, None), r"field 5 \(metrics\) must be a string", id="met"),
    ],
)
def test_malformed_payloads(payload: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        records.split_payload(payload)


def test_cell_code_of_strings() -> None:
    code = records.cell_code(CHAIN, CHAIN_OPS)
    matrix, ops = canonical.decode(code)
    np.testing.assert_array_equal(matrix, [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert ops == CHAIN_OPS.split(",")


@pytest.mark.parametrize(
    ("adjacency", "operations", "message"),
    [
        pytest.param("01000100", CHAIN_OPS, "square number of 0/1", id="not-square"),
        pytest.param("010002000", CHAIN_OPS, "square number of 0/1", id="digit-2"),
        pytest.param("01000100x", CHAIN_OPS, "square number of 0/1", id="letter"),
        pytest.param(CHAIN, "input,output", "name 2 ops for a 3x3 adjacency", id="ops-count"),
        pytest.param(CHAIN, "conv3x3-bn-relu,conv3x3-bn-relu,output", "start with 'input'", id="no-input"),
        pytest.param(CHAIN, "input,conv3x3-bn-relu,conv1x1-bn-relu", "end with 'output'", id="no-output"),
        pytest.param(CHAIN, "input,conv5x5,output", "unknown operation 'conv5x5'", id="unknown-op"),
        pytest.param("010101000", CHAIN_OPS, "not upper triangular", id="lower"),
        pytest.param("1" * 64, ",".join(["input"] + ["maxpool3x3"] * 6 + ["output"]), "8 vertices", id="8x8"),
    ],
)
def test_malformed_cells(adjacency: str, operations: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        records.cell_code(adjacency, operations)


def test_metrics_of_reads_halfway_and_final() -> None:
    parameters, values = records.metrics_of(_metrics(points=3, value=0.25))
    assert parameters == 1234
    assert values == (10.0, 0.25, 0.25, 0.25, 20.0, 0.25, 0.25, 0.25)


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        pytest.param("not base64!", "not valid base64", id="bad-base64"),
        pytest.param(base64.b64encode(b"\x0a\xff\xff").decode(), "not a ModelMetrics message", id="bad-proto"),
        pytest.param(_metrics(points=2), "2 evaluation points, need 3", id="two-points"),
        pytest.param(_metrics(points=0), "0 evaluation points, need 3", id="no-points"),
    ],
)
def test_malformed_metrics(encoded: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        records.metrics_of(encoded)


_VALID_BASE64 = st.binary(max_size=12).map(lambda raw: base64.b64encode(raw).decode())
_SPLICE = st.sampled_from(["", "=", "==", "A", "AB", "A=", "=A", " ", "\n", "-", "é"])


@pytest.mark.skipif(
    not (3, 11) <= sys.version_info < (3, 13),
    reason="compares with strict_mode as in Python 3.11 and 3.12 (new in 3.11; 3.13 refuses more)",
)
@given(
    st.one_of(
        st.text(alphabet="AB+/=", max_size=16),
        st.builds(lambda a, b, c: a + b + c, _VALID_BASE64, _SPLICE, _VALID_BASE64),
        st.text(max_size=8),
    )
)
def test_base64_check_of_python_3_10_refuses_what_strict_mode_refuses(encoded: str) -> None:
    try:
        expected = binascii.a2b_base64(encoded, strict_mode=True)
    except (binascii.Error, ValueError):
        with pytest.raises((binascii.Error, ValueError)):
            records._b64decode_by_pattern(encoded)
    else:
        assert records._b64decode_by_pattern(encoded) == expected


def test_first_non_finite() -> None:
    values = np.zeros((4, 8))
    assert records.first_non_finite(values) is None
    values[2, 6] = np.nan
    values[3, 1] = np.inf
    assert records.first_non_finite(values) == (2, "metric final_validation_accuracy is not finite (nan)")


@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=False),
            st.floats(allow_nan=False),
            st.floats(allow_nan=False),
            st.floats(allow_nan=False),
            st.floats(allow_nan=False),
            st.text(max_size=20),
        ),
        max_size=4,
    ),
    st.integers(-(2**31), 2**31 - 1),
    st.floats(allow_nan=False),
)
def test_hand_encoding_equals_protobuf(evaluations, parameters: int, total_time: float) -> None:
    encoded = records.encode_metrics([records.encode_evaluation(*e) for e in evaluations], parameters, total_time)
    message = ModelMetrics(trainable_parameters=parameters, total_time=total_time)
    for epoch, time, train, validation, test, path in evaluations:
        message.evaluation_data.append(
            EvaluationData(
                current_epoch=epoch,
                training_time=time,
                train_accuracy=train,
                validation_accuracy=validation,
                test_accuracy=test,
                checkpoint_path=path,
            )
        )
    assert encoded == message.SerializeToString()


def test_synthetic_mark_is_the_marked_checkpoint_path() -> None:
    """Synthetic records carry the mark in a checkpoint path; real ones (empty or other paths) and unreadable
    metrics give None."""
    marked = ModelMetrics.FromString(base64.b64decode(_metrics(points=3)))
    marked.evaluation_data[1].checkpoint_path = "gs://bucket/model.ckpt-100"
    marked.evaluation_data[2].checkpoint_path = f"{records.SYNTHETIC_MARK} (seed 7)"
    encoded = base64.b64encode(marked.SerializeToString()).decode()
    assert records.synthetic_mark(encoded) == f"{records.SYNTHETIC_MARK} (seed 7)"
    assert records.synthetic_mark(_metrics(points=3)) is None
    assert records.synthetic_mark("not base64!") is None
