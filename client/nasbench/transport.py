"""Calls to a nasbench server on the wire contract (``proto/nasbench/v1/nasbench.proto``, messages in
``nasbench.v1.nasbench_pb2``): the same transport the API uses (channel per process, token, retries, deadlines,
the dataset pinned, the project's errors), for tools that speak the protocol itself, such as the benchmarks.

Usage::

    from nasbench import transport
    from nasbench.v1 import nasbench_pb2 as pb

    server = transport.Transport("grpc://127.0.0.1:50051")
    info = server.call("GetInfo", pb.GetInfoRequest())
    server.pin(info.checksum)                           # refuse answers from any other dataset from now on
    answer = server.call("Query", pb.QueryRequest(cell=pb.CellRef(key=key), epochs=108))
"""

from __future__ import annotations

from nasbench._backends.transport import AsyncTransport, Transport

__all__ = ["AsyncTransport", "Transport"]
