"""The on-disk store: layout shared by writer and reader, and the read-only reader."""
