"""Everyday FEL commands: list, version, sid, read, write, hexdump, exec, readl, writel, reset,
and sunxi-fel's others: dump, fill, clear, memmove, reset64, sid-dump, sid-registers."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence

from felboot.commands.common import (
    emit,
    log,
    open_device,
    write_output_file,
)
from felboot.errors import BootError, DeviceError, UsageError
from felboot.images import load
from felboot.units import parse_number


def hexdump_lines(address: int, data: bytes | bytearray) -> Iterator[str]:
    for offset in range(0, len(data), 16):
        row = data[offset : offset + 16]
        hex_part = " ".join(f"{byte:02x}" for byte in row).ljust(47)
        text = "".join(chr(byte) if 0x20 <= byte < 0x7F else "." for byte in row)
        yield f"{address + offset:08x}: {hex_part}  {text}"


def cmd_list(args: argparse.Namespace) -> int:
    from felboot.devices import NO_DEVICE, list_devices

    listings = list_devices()
    text = "\n".join(listing.summary() for listing in listings) or NO_DEVICE
    emit(args, {"devices": [listing.to_dict() for listing in listings]}, text)
    # No board is exit 3 like every command that finds none (sunxi-fel -l exits 1 then,
    # EXIT_FAILURE in felusb_list_devices(), with no output); the listing is still printed.
    return 0 if listings else DeviceError.exit_code


def cmd_version(args: argparse.Namespace) -> int:
    from felboot.soc import soc_label

    with open_device(args) as device:
        version = device.version()
    data = {
        "device": device.transport.description,
        "soc": soc_label(version.soc_id),
        "soc_id": version.soc_id,
        "firmware": version.firmware,
        "protocol": version.protocol,
        "scratchpad": version.scratchpad,
    }
    text = (
        f"{data['soc']} (SoC id 0x{version.soc_id:04x}) on {data['device']}: "
        f"FEL protocol {version.protocol}, firmware {version.firmware}, "
        f"scratchpad 0x{version.scratchpad:x}"
    )
    emit(args, data, text)
    return 0


def cmd_sid(args: argparse.Namespace) -> int:
    from felboot.devices import format_sid

    with open_device(args) as device:
        sid = format_sid(device.sid())
    emit(args, {"sid": sid}, sid)
    return 0


def cmd_read(args: argparse.Namespace) -> int:
    from felboot.progress import progress_bar

    address = parse_number(args.address, "address")
    length = parse_number(args.length, "length")
    if args.json and args.file == "-":
        raise UsageError("read to '-' puts the memory on stdout, where --json goes: name a file")
    with open_device(args) as device, progress_bar(length, "read", args.quiet) as progress:
        data = device.read(address, length, progress)
    write_output_file(args.file, data)
    emit(args, {"address": address, "length": len(data), "file": args.file}, None)
    return 0


def parse_address_file_pairs(words: Sequence[str]) -> list[tuple[int, str, bytes]]:
    """ADDR FILE [ADDR FILE ...] -> (address, name, contents), all read before any transfer."""
    if len(words) % 2:
        raise UsageError(
            f"'{words[-1]}' has no partner: give address and file in pairs, e.g. 0x2000 spl.bin"
        )
    pairs = []
    for address_text, name in zip(words[0::2], words[1::2], strict=True):
        address = parse_number(address_text, "address")
        pairs.append((address, name, load(name, "file")))
    return pairs


def cmd_write(args: argparse.Namespace) -> int:
    from felboot.fel import check_range
    from felboot.progress import progress_bar

    pairs = parse_address_file_pairs(args.pairs)
    for address, _name, data in pairs:
        check_range(address, len(data))
    total = sum(len(data) for _, _, data in pairs)
    with open_device(args) as device:
        for address, _name, data in pairs:  # refuse every unsafe range before sending any
            device.refuse_rom_state(address, len(data))
        with progress_bar(total, "write", args.quiet) as progress:
            for address, name, data in pairs:
                log.info("writing %s (%d bytes) to 0x%08x", name, len(data), address)
                device.write(address, data, progress)
    writes = [{"address": a, "file": name, "size": len(data)} for a, name, data in pairs]
    emit(args, {"writes": writes, "bytes": total}, None)
    return 0


def cmd_hexdump(args: argparse.Namespace) -> int:
    address = parse_number(args.address, "address")
    length = parse_number(args.length, "length")
    with open_device(args) as device:
        data = device.read(address, length)
    text = "\n".join(hexdump_lines(address, data))
    emit(args, {"address": address, "length": len(data), "data": bytes(data).hex()}, text)
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    address = parse_number(args.address, "address")
    with open_device(args) as device:
        if args.no_return:
            device.jump(address)
        else:
            device.execute(address)
            # The ROM answers an EXEC before it runs the code: one more request tells
            # whether the code came back (sunxi-fel's `exe` does not check; we do).
            device.wait_returned()
    # returned: false means not waited for (--no-return); a code that hangs is an error.
    emit(args, {"address": address, "returned": not args.no_return}, None)
    return 0


def cmd_readl(args: argparse.Namespace) -> int:
    address = parse_number(args.address, "address")
    with open_device(args) as device:
        value = device.readl(address)
    emit(args, {"address": address, "value": value}, f"0x{value:08x}")
    return 0


def cmd_writel(args: argparse.Namespace) -> int:
    address = parse_number(args.address, "address")
    value = parse_number(args.value, "value")
    if value >= 1 << 32:
        raise UsageError(f"value {args.value} does not fit in 32 bits")
    with open_device(args) as device:
        device.writel(address, value)
    emit(args, {"address": address, "value": value}, None)
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    with open_device(args) as device:
        device.reset()
    emit(
        args,
        {"reset": "watchdog"},
        "reset requested through the watchdog: the board reboots from its boot media",
    )
    return 0


# sunxi-fel's other verbs ---------------------------------------------------------------


def cmd_dump(args: argparse.Namespace) -> int:
    """sunxi-fel's `dump ADDR LEN`: the raw bytes to stdout, no progress."""
    address = parse_number(args.address, "address")
    length = parse_number(args.length, "length")
    if args.json:
        raise UsageError("dump puts the memory on stdout, where --json goes: use hexdump --json")
    with open_device(args) as device:
        data = device.read(address, length)
    write_output_file("-", data)
    return 0


def _fill(args: argparse.Namespace, value: int) -> int:
    from felboot.progress import progress_bar

    address = parse_number(args.address, "address")
    length = parse_number(args.length, "length")
    with open_device(args) as device, progress_bar(length, "fill", args.quiet) as progress:
        device.fill(address, length, value, progress)
    emit(args, {"address": address, "length": length, "value": value}, None)
    return 0


def cmd_fill(args: argparse.Namespace) -> int:
    value = parse_number(args.value, "fill value")
    if value > 0xFF:
        raise UsageError(f"fill value {args.value} is not a byte: give 0-0xff", culprit=args.value)
    return _fill(args, value)


def cmd_clear(args: argparse.Namespace) -> int:
    return _fill(args, 0)


def cmd_memmove(args: argparse.Namespace) -> int:
    dst = parse_number(args.dst, "destination")
    src = parse_number(args.src, "source")
    size = parse_number(args.size, "size")
    with open_device(args) as device:
        device.memmove(dst, src, size)
    emit(args, {"dst": dst, "src": src, "size": size}, None)
    return 0


def cmd_reset64(args: argparse.Namespace) -> int:
    """sunxi-fel's `reset64 ADDR`: RVBAR = ADDR, then an RMR warm reset into AArch64."""
    from felboot.boot import boot_soc, rvbar_register
    from felboot.fel import check_range
    from felboot.thunks.boot_thunks import build_rmr_switch

    address = parse_number(args.address, "address")
    check_range(address, 4)
    with open_device(args) as device:
        soc = boot_soc(device)
        if soc.rvbar_reg is None:
            raise BootError(
                f"the {soc.name} has no RVBAR felboot knows, so it cannot be switched to "
                "AArch64: reset64 is for the A64, H5, H6, H616 and other arm64 SoCs "
                "(see 'felboot socs'); use exec for 32-bit code"
            )
        rvbar = rvbar_register(device, soc)
        # The same thunk as the AArch64 U-Boot start (boot.start_uboot): it never returns.
        payload = build_rmr_switch(rvbar, address)
        device.write(soc.scratch_addr, payload.data)
        device.jump(soc.scratch_addr)
    emit(
        args,
        {"address": address, "rvbar": rvbar},
        f"RMR warm reset into AArch64 at 0x{address:08x}: the board has left FEL",
    )
    return 0


SID_LABEL_WIDTH = 15  # sunxi-fel's "%-15s"
SID_WORDS_PER_LINE = 8


def sid_dump_lines(sections: Sequence[tuple[str, Sequence[int]]]) -> Iterator[str]:
    """sunxi-fel's aw_fel_dump_sid() layout: the name, then eight words a line."""
    for name, words in sections:
        line = f"{name:<{SID_LABEL_WIDTH}}"
        for index, word in enumerate(words):
            if index and index % SID_WORDS_PER_LINE == 0:
                yield line
                line = " " * SID_LABEL_WIDTH
            line += f" {word:08x}"
        yield line


def cmd_sid_dump(args: argparse.Namespace) -> int:
    from felboot.soc import sid_sections

    with open_device(args) as device:
        soc = device.soc
        sections = sid_sections(soc) if soc is not None else ()
        if soc is None or soc.sid_base is None or not sections:
            name = soc.name if soc else f"unknown SoC 0x{device.version().soc_id:04x}"
            raise DeviceError(
                f"the {name} has no SID map felboot knows (sunxi-tools' soc_info.c has none): "
                "'felboot sid' reads its 128-bit key"
            )
        # One read of everything up to the end of the last section, sliced per section.
        end = max(section.offset + 4 * section.words for section in sections)
        words = device.sid_words(end // 4)
    rows = [(s.name, words[s.offset // 4 : s.offset // 4 + s.words]) for s in sections]
    data = {
        "soc": soc.name,
        "sections": [
            {"name": s.name, "offset": s.offset, "size_bits": s.size_bits, "words": list(row)}
            for s, (_, row) in zip(sections, rows, strict=True)
        ],
    }
    emit(args, data, "\n".join(sid_dump_lines(rows)))
    return 0


def cmd_sid_registers(args: argparse.Namespace) -> int:
    """sunxi-fel's `sid-registers`: the 128-bit key through SID_PRCTL on any SoC."""
    from felboot.devices import format_sid
    from felboot.thunks.registers import SID_WORDS, sid_bytes

    with open_device(args) as device:
        sid = format_sid(sid_bytes(device.sid_words(SID_WORDS, registers=True)))
    emit(args, {"sid": sid}, sid)
    return 0
