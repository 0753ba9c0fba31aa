"""tinker's ``TensorData``: mint_async's, with ``.data`` reading like tinker's Python list.

tinker's ``TensorData.data`` is a ``list`` of Python numbers and tinker code
relies on it (``sum(td.data)`` logged as JSON, ``int(td.data[-1])``...).
mint_async keeps ``data`` as a numpy array (no per-element objects). This
subclass keeps the array but views it as :class:`PyScalarArray`, which iterates
and indexes to Python ``int``/``float``; every numpy operation, and the wire
encoding, still see a plain 1-D array.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mint_async.types import TensorData as WireTensorData

__all__ = ["PyScalarArray", "TensorData"]


class PyScalarArray(np.ndarray[Any, Any]):
    """A 1-D ndarray whose iteration and scalar indexing give Python numbers."""

    def __iter__(self) -> Any:
        return iter(self.tolist())

    def __getitem__(self, key: Any) -> Any:
        out = super().__getitem__(key)
        return out.item() if isinstance(out, np.generic) else out


class TensorData(WireTensorData, eq=False, kw_only=True):
    """A flat array with a dtype and an optional shape; ``data`` reads like tinker's list."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.data = np.asarray(self.data).view(PyScalarArray)
