"""trim_heap returns freed heap pages to the OS (glibc), so a long-running node's RSS does not creep."""

from __future__ import annotations

from pathlib import Path

from eps3d_ros.process.heap import trim_heap


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_freed_small_blocks_go_back_to_the_os() -> None:
    blocks = [bytearray(4000) for _ in range(50_000)]  # ~200 MB of small blocks: below mmap's threshold
    for b in blocks[::1]:
        b[0] = 1
    keep = blocks[-1]
    del blocks
    before = _rss_kb()
    assert trim_heap()
    after = _rss_kb()
    assert before - after > 100_000, (before, after)  # > 100 MB returned
    assert keep[0] == 1
