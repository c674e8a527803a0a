"""A software prefetch for numba kernels that gather rows at random.

iALS reads, for every interaction, the other side's factor row (256 bytes at f = 64) at an
address known only from the CSR's indices, so the CPU's own prefetchers cannot guess it.
While those rows fit in the last-level cache this costs nothing; past it (ml-32m's shape:
207k user rows of 256 B, 53 MB, against a 32 MB L3 here) every gather waited for memory and a
half-step took about 1.6x as long per interaction as at 10M. Asking for the row a few
interactions ahead lets those loads overlap: about 20% off the half-step at that shape
(``benchmarks/README.md``). A prefetch is only a hint: no result changes, no address faults.
"""

from __future__ import annotations

import numba as nb
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["prefetch_at", "prefetch_row"]


njit_inline = nb.njit(inline="always", nogil=True, cache=True)


@intrinsic
def prefetch_at(typingctx, arr, row, col):
    """Ask the CPU to start loading ``arr[row, col]`` into the caches (a hint: no effect on
    results, no fault on any address)."""
    ints = isinstance(row, types.Integer) and isinstance(col, types.Integer)
    if not (isinstance(arr, types.Array) and arr.ndim == 2 and ints):
        return None
    sig = types.void(arr, row, col)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = context.cast(builder, args[1], signature.args[1], types.intp)
        col = context.cast(builder, args[2], signature.args[2], types.intp)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [idx, col], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i8p, ir.IntType(32), ir.IntType(32), ir.IntType(32)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        i32 = ir.IntType(32)
        builder.call(
            fn,
            [
                builder.bitcast(ptr, i8p),
                ir.Constant(i32, 0),
                ir.Constant(i32, 3),
                ir.Constant(i32, 1),
            ],
        )
        return context.get_dummy_value()

    return sig, codegen


@njit_inline
def prefetch_row(arr, row):
    """Prefetch every cache line (64 bytes) of the float32 row ``arr[row]``."""
    for j in range(0, arr.shape[1], 16):
        prefetch_at(arr, row, j)
