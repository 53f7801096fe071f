"""ARM thunks: tiny leaf functions the host uploads to the scratch area and EXECs.

Each thunk has its assembly source next to this file (``<name>.S``, with its
calling convention in the header comment) and its assembled instruction words
carried by hand into a Python module (``registers.py`` ...), one word per line
with the instruction as a comment. tests/test_thunks.py re-assembles every
source with arm-none-eabi-as and checks the shipped words still match, and runs
the thunks in unicorn to check what they do.

Pure: no I/O, no transport.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import construct as cs

SOURCE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Thunk:
    """Assembled code of one ``<name>.S``, without its parameter block."""

    name: str
    words: tuple[int, ...]

    @property
    def code(self) -> bytes:
        """The instruction words as the CPU fetches them (little-endian)."""
        return bytes(cs.Array(len(self.words), cs.Int32ul).build(self.words))

    @property
    def source(self) -> Path:
        return SOURCE_DIR / f"{self.name}.S"


@dataclass(frozen=True)
class ThunkPayload:
    """What to upload to the scratch address, and where the results come back."""

    data: bytes  # code followed by its parameter block
    result_offset: int  # from the upload address: where the host FEL-READs results
    result_size: int  # bytes to read back there (0: the thunk returns nothing)
