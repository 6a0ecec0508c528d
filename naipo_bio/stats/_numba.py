"""The one place that sets numba options for every kernel in the package.

``cache=True`` stores compiled kernels next to the module (or in
``NUMBA_CACHE_DIR``), so only the first run on a machine pays the compile time.
numba invalidates that cache when the kernel's own source file changes, not
when this file does: after changing an option here, delete the ``*.nbi`` and
``*.nbc`` files under ``naipo_bio/``.
``fastmath`` stays off: reassociating sums would change results in the last
digits between runs and between thread counts.
"""

from __future__ import annotations

import numba

JIT_OPTIONS = {
    "nogil": True,
    "cache": True,
    "fastmath": False,
    # Division by zero gives inf/NaN as in NumPy instead of raising; the Newton
    # step halving rejects a non-finite log-likelihood.
    "error_model": "numpy",
}


def kernel(func=None, *, parallel: bool = False):
    """Compile ``func`` with the package's numba options."""

    def decorate(f):
        return numba.njit(parallel=parallel, **JIT_OPTIONS)(f)

    if func is None:
        return decorate
    return decorate(func)


def set_threads(threads: int | None) -> None:
    """Limit the kernels to ``threads`` threads (``None`` keeps numba's default)."""
    if threads is None:
        return
    threads = max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
