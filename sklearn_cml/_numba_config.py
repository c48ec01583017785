"""Numba compilation settings shared by every kernel module.

Kernels are cached on disk so that a second process skips compilation.  Set
the environment variable ``SKLEARN_CML_NUMBA_CACHE=0`` to turn the on-disk
cache off (for example to time compilation, or on a read-only install where
Numba cannot find a writable cache directory).
"""

import os

NUMBA_CACHE = os.environ.get("SKLEARN_CML_NUMBA_CACHE", "1") != "0"

# Kernels also use error_model="numpy": division by zero gives inf instead of
# raising, which removes the branch that stops loops from vectorising.

# Fast-math flags for the hot loops: allow reassociation (so reductions
# vectorize) and contraction, but keep NaN/inf semantics so that a diverging
# model is still detected by the finiteness check after each epoch.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
#
# With reassociation, LLVM may compile a loop that sums while it stores
# through another array twice, and pick the vector or the scalar loop at run
# time from the arrays' addresses; the two sum in different orders.  So the
# kernels sum in loops that store nothing, and a result does not depend on
# where the allocator put the arrays.

# Placing new users (fold-in) without reassociation: with it, the inlined
# steps of a fold-in came out in one of two roundings depending on where the
# allocator had put the buffers, so that a one-thread transform was not
# bitwise reproducible once other Python threads had run kernels
# (tests/test_threads.py).  Fold-in is a small share of the time.
FOLD_IN_FASTMATH = FASTMATH - {"reassoc"}
