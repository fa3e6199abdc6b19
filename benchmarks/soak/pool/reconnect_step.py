"""Where does the ~1 MB step at a reconnect live? The app's FrameSource (capture thread + frame pool, no tracker,
no classifier) on the soak's looped MJPEG stream of ../shared/data/hands_natural, dropped 3 times for 3 s; RSS
(the lowest of the last 25 frames) and the C heap in use after each 1,500 frames.

    MALLOC_ARENA_MAX=2 python benchmarks/soak/pool/reconnect_step.py inproc|child   # server here or in a child
    python benchmarks/soak/pool/reconnect_step.py child                # the app's own setting now: one arena
(the figures in README.md were taken when the app's default was two arenas and one was asked by MALLOC_ARENA_MAX=1)"""
import multiprocessing as mp
import sys
import tempfile
import threading
from pathlib import Path

from nsl.bench.soak import MjpegServer, clip_jpegs, heap_in_use_kb, resident_parts_kb
from nsl.edge.sources import FrameSource, parse_source
from nsl.edge.allocator import limit_arenas

CLIP = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "hands_natural"  # ../shared beside the repo


def rss_kb() -> int:
    return resident_parts_kb()["VmRSS"]

def serve(frames, port_q, drop_ev, quit_ev):
    server = MjpegServer(frames, 90)
    port_q.put(server.port)
    while not quit_ev.is_set():
        if drop_ev.wait(0.1):
            drop_ev.clear(); server.drop(3)
    server.close()

def consume(source, n):
    low, got = [], 0
    while got < n:
        f = source.next_frame(timeout=0.5)
        if f is None: continue
        got += 1
        del f
        if got > n - 25: low.append(rss_kb())
    return min(low)

def main(mode, drops=3, per=1500):
    limit_arenas()
    with tempfile.TemporaryDirectory() as work:
        frames = clip_jpegs(CLIP, Path(work))
    if mode == "inproc":
        server = MjpegServer(frames, 90); url = server.url
        drop = lambda: threading.Thread(target=server.drop, args=(3,), daemon=True).start()
    else:
        ctx = mp.get_context("spawn"); q, d, qu = ctx.Queue(), ctx.Event(), ctx.Event()
        p = ctx.Process(target=serve, args=(frames, q, d, qu), daemon=True); p.start()
        url = f"http://127.0.0.1:{q.get()}/stream.mjpg"; drop = d.set
    source = FrameSource(parse_source(url), backoff=(0.5, 10.0)).start()
    rows = [("warm", consume(source, per * 2), heap_in_use_kb())]
    rows.append(("before drop 1", consume(source, per), heap_in_use_kb()))
    for k in range(drops):
        drop()
        rows.append((f"after drop {k+1}", consume(source, per), heap_in_use_kb()))
        rows.append((f"later {k+1}", consume(source, per), heap_in_use_kb()))
    source.stop()
    print(mode, "reconnects", source.reconnects, "pool arrays made", source.pool.made)
    base = rows[1][1]
    for name, kb, heap in rows:
        print(f"{mode:7s} {name:15s} RSS {kb} KB ({kb-base:+d}) heap in use {heap} KB")

if __name__ == "__main__":
    main(sys.argv[1])
