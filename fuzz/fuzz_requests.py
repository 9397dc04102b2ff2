"""Fuzz the server's request decoding and handlers: any bytes, as a request of any method, must end in a result
or a NasbenchError (a precise gRPC status), never another exception.

    python fuzz/fuzz_requests.py -max_total_time=600 fuzz/corpus/requests
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from google.protobuf.message import DecodeError

    from nasbench._engine.engine import Engine
    from nasbench.errors import NasbenchError
    from nasbench.v1 import nasbench_pb2 as pb
    from nasbench_server import cells, servicer
    from nasbench_server.config import ServerConfig

from _store import small_store  # the script's folder is on sys.path

SERVICER = servicer.NasbenchServicer(ServerConfig(max_batch=2000, max_sample=2000))
SERVICER.attach(Engine.open(small_store()))
HANDLERS = [
    (pb.QueryRequest, SERVICER._query),
    (pb.QueryBatchRequest, SERVICER._query_batch),
    (pb.SampleRequest, SERVICER._sample),
    (pb.NeighborsRequest, SERVICER._neighbors),
    (pb.GetMetricsRequest, SERVICER._get_metrics),
    (pb.GetMetricsRequest, lambda request: cells.row_of_ref(request.cell, SERVICER.engine, SERVICER._cfg)),
]


def test_one(data: bytes) -> None:
    if not data:
        return
    request_type, handle = HANDLERS[data[0] % len(HANDLERS)]
    try:
        request = request_type.FromString(data[1:])
    except DecodeError:
        return  # the server answers INVALID_ARGUMENT naming the message type
    try:
        answer = handle(request)
        if hasattr(answer, "SerializeToString"):
            answer.SerializeToString()
    except NasbenchError:
        pass  # a precise status


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one)
    atheris.Fuzz()
