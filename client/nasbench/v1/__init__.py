"""Generated code of proto/nasbench/v1/nasbench.proto (the wire contract); regenerate with proto/generate.py."""
