"""Trial: the capture decodes into one reused BGR array (the RGB frame handed on is still new each frame)."""
import sys
import nsl.edge.sources as sources
from nsl.preprocess import to_rgb

def read(self):
    ok, image = self.capture.read(getattr(self, "_bgr", None))
    if ok and image is not None and image.size:
        self._bgr = image
        return to_rgb(image, bgr=True)
    return None
sources.CaptureReader.read = read
from nsl.bench.soak import main
sys.exit(main(sys.argv[1:]))
