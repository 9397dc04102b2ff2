"""The NAS-Bench-101 gRPC server: a thin adapter over the engine (grpc.aio, uvloop where available)."""
