"""Which cells a sample may draw from: one filter object, checked once where a user builds it, carried as it is
through the API, the wire and the engine."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from nasbench._cells import codes
from nasbench.errors import InvalidSpecError
from nasbench.lib import config


@dataclass(frozen=True)
class SampleFilter:
    """Cells passing every criterion given (None: any). Build it with ``SampleFilter.of``."""

    num_vertices: tuple[int, ...] | None = None  # allowed vertex counts
    num_edges: tuple[int, ...] | None = None  # allowed edge counts
    min_parameters: int | None = None  # inclusive bounds on trainable parameters
    max_parameters: int | None = None
    ops: frozenset[str] | None = None  # allowed interior ops: a cell passes when it uses no other op

    @classmethod
    def of(
        cls,
        *,
        num_vertices: Collection[int] | int | None = None,
        num_edges: Collection[int] | int | None = None,
        min_parameters: int | None = None,
        max_parameters: int | None = None,
        ops: Collection[str] | None = None,
    ) -> SampleFilter:
        """The filter of the API's sample keywords (a single count may be given as an int).

        Raises:
          InvalidSpecError: an empty collection (None allows any), a count that is no integer of at least 0 (a
            single count as in a collection), or an unknown op.
        """
        vertices, edges = _counts("num_vertices", num_vertices), _counts("num_edges", num_edges)
        allowed = None
        if ops is not None:
            if len(ops) == 0:
                raise InvalidSpecError("ops is empty: pass None to allow any")
            allowed = frozenset(ops)
            unknown = sorted(allowed - set(config.AVAILABLE_OPS))
            if unknown:
                raise InvalidSpecError(f"unknown op {unknown[0]!r} (available ops = {list(config.AVAILABLE_OPS)})")
        return cls(vertices, edges, min_parameters, max_parameters, allowed)

    def mask(
        self, num_vertices: np.ndarray, num_edges: np.ndarray, parameters: np.ndarray, used_ops: np.ndarray
    ) -> np.ndarray:
        """bool[cells]: the rows passing the filter, from the columns of a store (``used_ops``: uint8[cells], bit
        ``label`` set when the cell uses that op)."""
        mask = np.ones(len(num_vertices), dtype=bool)
        if self.num_vertices is not None:
            mask &= np.isin(num_vertices, np.array(self.num_vertices, dtype=np.int64))
        if self.num_edges is not None:
            mask &= np.isin(num_edges, np.array(self.num_edges, dtype=np.int64))
        if self.min_parameters is not None:
            mask &= parameters >= self.min_parameters
        if self.max_parameters is not None:
            mask &= parameters <= self.max_parameters
        if self.ops is not None:
            allowed = 0  # bit ``label`` set when the op is allowed
            for op in self.ops:  # a set: naming an op twice allows it once (bits or-ed, never summed)
                allowed |= 1 << codes.OP_LABELS[op]
            mask &= (used_ops & ~np.uint8(allowed)) == 0
        return mask


ANY = SampleFilter()


def _counts(name: str, value: Collection[int] | int | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        value = (value,)
    if len(value) == 0:
        raise InvalidSpecError(f"{name} is empty: pass None to allow any")
    counts = []
    for count in value:
        if not isinstance(count, (int, np.integer)) or count < 0:
            raise InvalidSpecError(f"{name} must hold counts (integers of at least 0), got {count!r}")
        counts.append(int(count))
    return tuple(counts)
