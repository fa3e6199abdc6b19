"""The same stream read by a bare cv2.VideoCapture on the main thread: is the reconnect step in reopening the
capture itself? ORDER is a comma list of fail (3 opens of a closed port), reopen (release, open, 1,500 frames).

    python benchmarks/soak/pool/plain_reopen.py fail,fail,reopen,reopen"""
import multiprocessing as mp
import sys
import tempfile

import cv2
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from reconnect_step import CLIP, rss_kb, serve
from nsl.bench.soak import clip_jpegs, heap_in_use_kb
from nsl.edge.allocator import limit_arenas

def opened(url):
    t = 10000
    return cv2.VideoCapture(url, cv2.CAP_ANY, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, t, cv2.CAP_PROP_READ_TIMEOUT_MSEC, t])

def read(cap, n, buf):
    low = []
    for i in range(n):
        ok, buf = cap.read(buf)
        if i > n - 25: low.append(rss_kb())
    return min(low), buf

if __name__ == "__main__":
    order = sys.argv[1]
    limit_arenas()
    with tempfile.TemporaryDirectory() as work:
        frames = clip_jpegs(CLIP, Path(work))
    ctx = mp.get_context("spawn"); q, d, qu = ctx.Queue(), ctx.Event(), ctx.Event()
    ctx.Process(target=serve, args=(frames, q, d, qu), daemon=True).start()
    url = f"http://127.0.0.1:{q.get()}/stream.mjpg"
    cap, buf = opened(url), None
    kb, buf = read(cap, 3000, buf); base = kb; print("first open", kb, heap_in_use_kb())
    for step in order.split(","):
        if step == "fail":
            for _ in range(3):
                bad = opened("http://127.0.0.1:9/none.mjpg"); bad.release()
            print("3 failed opens", rss_kb() - base, heap_in_use_kb())
        elif step == "reopen":
            cap.release(); cap = opened(url)
            kb, buf = read(cap, 1500, buf); print("reopen + 1500 frames", kb - base, heap_in_use_kb())
