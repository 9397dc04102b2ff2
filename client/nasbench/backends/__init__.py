"""Where the data comes from: a local store opened in-process, or a remote server (one interface)."""
