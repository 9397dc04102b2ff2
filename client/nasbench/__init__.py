"""NAS-Bench-101 without TensorFlow: a drop-in ``nasbench.api`` over a local store or a gRPC server."""

__version__ = "0.1.0"
