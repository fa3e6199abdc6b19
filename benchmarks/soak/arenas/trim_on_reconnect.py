"""Trial: malloc_trim(0) once after the stream is reopened."""
import ctypes, sys
import nsl.edge.sources as sources
_orig = sources.FrameSource._reconnect
def _reconnect(self):
    ok = _orig(self)
    if ok:
        ctypes.CDLL(None).malloc_trim(0)
    return ok
sources.FrameSource._reconnect = _reconnect
from nsl.bench.soak import main
sys.exit(main(sys.argv[1:]))
