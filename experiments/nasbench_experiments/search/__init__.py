"""Search spaces (encodings) and optimizers: each optimizer sees only the drop-in API."""
