"""DRAM as the model keeps it: sparse pages that exist only once something is written.

A 2 GiB board must not cost 2 GiB: untouched pages read as zeros and are not
allocated. Each page is a ctypes buffer so the emulated CPU can map the very
same bytes (at every alias) without copying.
"""

from __future__ import annotations

import ctypes

DRAM_PAGE = 64 * 1024


class SparseDram:
    """``size`` bytes of DRAM addressed by offset (the caller folds aliases into the size)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._pages: dict[int, ctypes.Array[ctypes.c_char]] = {}

    @property
    def allocated(self) -> int:
        """Bytes actually held: for tests that check the model stays sparse."""
        return len(self._pages) * DRAM_PAGE

    def page(self, index: int) -> ctypes.Array[ctypes.c_char]:
        """The buffer of page ``index``, created (zeroed) on first use."""
        buffer = self._pages.get(index)
        if buffer is None:
            buffer = ctypes.create_string_buffer(DRAM_PAGE)
            self._pages[index] = buffer
        return buffer

    def _spans(self, offset: int, length: int) -> list[tuple[int, int, int]]:
        """(page index, offset in page, length) pieces of [offset, offset+length), wrapping."""
        pieces = []
        while length > 0:
            offset %= self.size
            index, inner = divmod(offset, DRAM_PAGE)
            take = min(length, DRAM_PAGE - inner)
            pieces.append((index, inner, take))
            offset += take
            length -= take
        return pieces

    def read(self, offset: int, length: int) -> bytes:
        out = bytearray()
        for index, inner, take in self._spans(offset, length):
            buffer = self._pages.get(index)
            out += buffer.raw[inner : inner + take] if buffer is not None else bytes(take)
        return bytes(out)

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        done = 0
        for index, inner, take in self._spans(offset, len(view)):
            ctypes.memmove(
                ctypes.addressof(self.page(index)) + inner, bytes(view[done : done + take]), take
            )
            done += take
