"""What a reconnect leaves resident: each mapping's Rss (/proc/self/smaps) and the thread count, snapshotted at
frames 5800/5900 (before the drop at 6000) and 9000/9100/11900 of a 12,000-frame soak, written to snaps.json beside
--out. A diagnostic, run by hand in the edge environment:

    python reconnect_smaps.py --out soak.json --model BUNDLE --clip DIR --hand-model TASK \
        --frames 12000 --sample-every 100 --warmup 1000
"""
import json
import re
import sys
from pathlib import Path

import nsl.bench.soak as soak

SNAP_AT = {5800, 5900, 9000, 9100, 11900}


def smaps() -> dict:
    maps, current = {}, None
    for line in open("/proc/self/smaps"):
        head = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$", line)
        if head:
            current = "|".join((head.group(1), head.group(2), head.group(3), head.group(5).strip()))
            maps[current] = {"size": (int(head.group(2), 16) - int(head.group(1), 16)) // 1024}
        elif line.startswith("Rss:") and current:
            maps[current]["rss"] = int(line.split()[1])
    threads = int(re.search(r"Threads:\s+(\d+)", open("/proc/self/status").read()).group(1))
    return {"threads": threads, "maps": maps}


def main(argv: list[str]) -> int:
    out = Path(argv[argv.index("--out") + 1]).with_name("snaps.json")
    snaps, record = {}, soak.MemorySampler.record

    def snapshot_record(self, rec):
        record(self, rec)
        if self.frames in SNAP_AT:
            snaps[self.frames] = smaps()
            out.write_text(json.dumps(snaps))

    soak.MemorySampler.record = snapshot_record
    return soak.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
