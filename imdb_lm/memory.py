"""Keep freed CPU memory for reuse instead of handing it back to the kernel (glibc only).

torch's CPU allocator is plain `malloc`. glibc serves blocks above its mmap threshold (at most
32 MB by default) with fresh `mmap`s and returns them on `free`, so every training step that
allocates tens of MB of activations and gradients first-touches brand-new pages: measured here, a
50 MB tensor took 12 ms to fill fresh against 1 ms in reused memory, and the fused GRU's forward
pass spent more time in page faults (69 ms) than in its arithmetic (30 ms). Raising the mmap and
trim thresholds keeps such blocks in the heap, so later steps reuse them. Memory is not returned
to the system by glibc itself. The price is resident size: bucketed batches of ever-new lengths
leave holes no later block fits, so kept memory grows through an epoch, and it is handed back at
every epoch end by the callback `imdb_lm.callbacks.memory.ReleaseFreedMemory`. For memory-limited
jobs the callback can also bound it within an epoch (`max_growth_mb`: after a batch that finds
resident memory grown by more than that since the last release, malloc_trim); the next step then
faults its pages in again. Measured trade and the bf16 growth that no malloc setting removes:
docs/speed.md ("Memory"). Elsewhere (macOS, musl) this does nothing; IMDB_LM_KEEP_FREED_MEMORY=0
turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
_THRESHOLD = 1 << 30  # blocks up to 1 GB come from the reusable heap
_done: list[bool] = []
DISABLE_ENV = "IMDB_LM_KEEP_FREED_MEMORY"  # 0: leave glibc's defaults


@functools.cache
def _libc_function(function: str):
    # Cached: find_library runs `ldconfig -p` in a subprocess, too slow for a call after a batch.
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), function)
    except (OSError, AttributeError):
        return None


def _glibc(function: str):
    if not sys.platform.startswith("linux") or os.environ.get(DISABLE_ENV, "1") == "0":
        return None
    return _libc_function(function)


def keep_freed_memory() -> bool:
    """Apply the thresholds once per process; True where glibc took them."""
    if not _done:
        mallopt = _glibc("mallopt")
        _done.append(mallopt is not None
                     and bool(mallopt(M_MMAP_THRESHOLD, ctypes.c_int(_THRESHOLD)))
                     and bool(mallopt(M_TRIM_THRESHOLD, ctypes.c_int(2**31 - 1))))
    return _done[0]


def resident_bytes() -> int | None:
    """This process's resident memory (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def release_freed_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's malloc_trim)."""
    trim = _glibc("malloc_trim")
    if trim is not None and _done and _done[0]:
        trim(ctypes.c_size_t(0))


class GrowthBound:
    """Releases freed memory once resident memory has grown by more than `max_growth_bytes` since the
    last release. Resident size, not malloc's free count, is watched: pages already handed back stay
    in malloc's free count, so that count cannot tell when there is something to release again."""

    def __init__(self, max_growth_bytes: int) -> None:
        self.max_growth_bytes, self.base = max_growth_bytes, None

    def release(self) -> None:
        release_freed_memory()
        self.base = resident_bytes()

    def check(self) -> bool:
        """Release if the bound is crossed; True if it was."""
        if not (_done and _done[0]):
            return False
        resident = resident_bytes()
        if resident is None:
            return False
        if self.base is None or resident < self.base:
            self.base = resident
        if resident - self.base <= self.max_growth_bytes:
            return False
        self.release()
        return True
