"""What the core asks of packages above it, found through entry points (group ``nasbench.plugins``) so that the
core never imports them: turning an original ``.tfrecord`` file or an official dataset name into a store is the
builder's job (``nasbench_builder.prepare``), training a cell is the network's. A plugin whose package or extra is
missing is one error naming the ``pip install`` line."""

from __future__ import annotations

from typing import Any

from nasbench.errors import ConfigurationError, NasbenchError

GROUP = "nasbench.plugins"


def load(name: str, extra: str, why: str, error: type[NasbenchError] = ConfigurationError) -> Any:
    """The object the entry point ``name`` of ``GROUP`` names.

    Raises:
      error: no such plugin, or its package cannot be imported (``why`` says what needed it).
    """
    from importlib.metadata import entry_points  # only here: reading installed metadata takes milliseconds

    found = list(entry_points(group=GROUP, name=name))
    try:
        if not found:
            raise ImportError(name)
        return found[0].load()
    except ImportError:
        raise error(f"{why}, which needs the '{extra}' extra: pip install 'nasbench-server[{extra}]'") from None
