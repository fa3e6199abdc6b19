"""One call for every model file: uint8 RGB crops (N, H, W, 3) in, float32 probabilities (N, classes) out; a
landmark model (input (N, F) float32 features, ``nsl.landmarks``) goes through the same call.

Two backends behind the same interface: TFLite through ai-edge-litert and ONNX through onnxruntime (the
runtimes the device uses; no TensorFlow). Each backend reads its file's own input dtype and quantisation:
float inputs get the 0..255 pixels as float32, uint8/int8 inputs get them quantised with the file's scale and
zero point, and a quantised output is dequantised. The train side uses the same classes for its export gate.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from nsl.edge.child_probe import PROBE_TIMEOUT_S, probe_in_child
from nsl.errors import NslError

log = logging.getLogger(__name__)

BACKENDS = ("tflite", "onnx")
_probed: set[tuple] = set()  # (path, inode, size, mtime) of the .tflite files that loaded in a child process


def backend_of(path: str | Path) -> str:
    """'tflite' or 'onnx' from the file name; a one-line error for anything else."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in BACKENDS:
        raise NslError(f"{path}: unknown model format '.{suffix}' (expected .tflite or .onnx)")
    return suffix


def quantize(values: np.ndarray, dtype, scale: float, zero_point: int) -> np.ndarray:
    """Float values -> integers of ``dtype`` (scale 0 means 'not quantised': a plain cast)."""
    dtype = np.dtype(dtype)
    if not scale:
        return values.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    if not scale:
        return values.astype(np.float32)
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


def classifier_shape(path: Path, input_shape, output_shape) -> tuple[tuple[int, ...], int]:
    """(input shape without the batch axis, classes) of an image classifier (input (N, H, W, 3)) or a landmark
    model (input (N, F)), output (N, classes); a one-line error for any other model (N may be symbolic)."""
    given, out = list(input_shape or []), list(output_shape or [])

    def size(value) -> bool:
        return isinstance(value, (int, np.integer)) and value > 0

    image = len(given) == 4 and given[3] == 3 and size(given[1]) and size(given[2])
    features = len(given) == 2 and size(given[1])
    if not (image or features) or len(out) != 2 or not size(out[1]):
        raise NslError(f"{path}: not a classifier of images or landmarks (input {tuple(given)}, output "
                       f"{tuple(out)}; expected input (N, H, W, 3) or (N, features) and output (N, classes))")
    return tuple(int(v) for v in given[1:]), int(out[1])


def _as_batch(inputs: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Check a batch (or a single input) against the model's input shape (without the batch axis)."""
    inputs = np.asarray(inputs)
    if inputs.ndim == len(shape):
        inputs = inputs[None]
    if inputs.ndim != len(shape) + 1 or inputs.shape[1:] != tuple(shape):
        what = ("uint8 RGB crops (prepare crops with nsl.preprocess.prepare)" if len(shape) == 3
                else "landmark features (nsl.landmarks.hand_features)")
        raise NslError(f"classifier input: expected {what} of shape (N, {', '.join(map(str, shape))}), "
                       f"got {inputs.shape}")
    return inputs


def _image_size(shape: tuple[int, ...]) -> tuple[int, int] | None:
    return (int(shape[0]), int(shape[1])) if len(shape) == 3 else None


def load_and_run(path: str) -> None:
    """Load a .tflite file, allocate its tensors and run it once on zeros (what the probe's child does)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()


_PROBE = """import sys
try:
    from nsl.edge.classifier import load_and_run
    load_and_run(sys.argv[1])
except Exception as err:
    print(f"{type(err).__name__}: {err}".splitlines()[0][:160], file=sys.stderr)
    sys.exit(3)
"""


def probe_tflite(path: Path) -> None:
    """Load and run ``path`` once in a child process before this process's LiteRT touches it: LiteRT reads the
    flatbuffer without verifying it, and a damaged file can corrupt its heap and abort the process (one changed
    byte of a real int8 file did). A crash is then the child's, reported in one line. Each file (path, inode, size,
    mtime) is probed once per process. Cost: 0.3 s of start-up per file (median of 5, 2-core x86 under load; the
    child's Python, numpy and LiteRT imports, not the model: loading it in-process takes 1-5 ms)."""
    key = _file_key(path)
    if key in _probed:
        return
    outcome = probe_in_child(_PROBE, path)
    if outcome.kind == "timeout":
        raise NslError(f"{path}: the TFLite runtime did not load this file within {PROBE_TIMEOUT_S} s (a damaged "
                       f"model file; export it again)")
    if outcome.kind == "crash":
        raise NslError(f"{path}: the TFLite runtime crashes on this file ({outcome.detail} while loading it: a "
                       f"damaged or tampered model file; export it again)")
    if outcome.kind == "error":
        raise NslError(f"{path}: not a loadable TFLite model ({outcome.detail})")
    _probed.add(key)


def _file_key(path: Path) -> tuple:
    stat = path.stat()
    return str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns


class TfliteClassifier:
    """A .tflite file run by ai-edge-litert's Interpreter."""

    backend = "tflite"

    def __init__(self, path: str | Path, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self.threads = threads or os.cpu_count() or 1
        probe_tflite(self.path)
        try:
            self._interpreter = Interpreter(model_path=str(self.path), num_threads=self.threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise NslError(f"{self.path}: not a loadable TFLite model ({str(err).splitlines()[0][:160]})") from None
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self.input_dtype = np.dtype(self._input["dtype"]).name
        self.input_shape, self.num_classes = classifier_shape(self.path, self._input["shape"].tolist(),
                                                              self._output["shape"].tolist())
        self.input_size = _image_size(self.input_shape)  # None for a landmark model
        self._batch = int(self._input["shape"][0])

    def quantization(self) -> dict:
        """Input and output dtype, scale and zero point, as recorded in a bundle's metadata."""
        return {side: {"dtype": np.dtype(detail["dtype"]).name, "scale": float(detail["quantization"][0]),
                       "zero_point": int(detail["quantization"][1])}
                for side, detail in (("input", self._input), ("output", self._output))}

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            self._interpreter.resize_tensor_input(self._input["index"], [batch, *self.input_shape])
            self._interpreter.allocate_tensors()
            self._input = self._interpreter.get_input_details()[0]
            self._output = self._interpreter.get_output_details()[0]
            self._batch = batch

    def predict(self, images: np.ndarray) -> np.ndarray:
        images = _as_batch(images, self.input_shape)
        self._resize(len(images))
        scale, zero_point = self._input["quantization"]
        self._interpreter.set_tensor(self._input["index"],
                                     quantize(images.astype(np.float32), self._input["dtype"], scale, zero_point))
        self._interpreter.invoke()
        scale, zero_point = self._output["quantization"]
        return dequantize(self._interpreter.get_tensor(self._output["index"]), scale, zero_point)


class OnnxClassifier:
    """A .onnx file run by onnxruntime on the CPU (float 0..255 input; int8 files quantise inside, QDQ)."""

    backend = "onnx"

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        self.threads = threads or os.cpu_count() or 1
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise NslError(f"{self.path}: not a loadable ONNX model ({str(err).splitlines()[0][:160]})") from None
        model_input, model_output = self._session.get_inputs()[0], self._session.get_outputs()[0]
        self._input_name = model_input.name
        self.input_dtype = "float32"
        self.input_shape, self.num_classes = classifier_shape(self.path, model_input.shape, model_output.shape)
        self.input_size = _image_size(self.input_shape)

    def quantization(self) -> dict:
        """ONNX files take and give float32 (an int8 file quantises inside): no scale at the boundary."""
        plain = {"dtype": "float32", "scale": 0.0, "zero_point": 0}
        return {"input": dict(plain), "output": dict(plain)}

    def metadata(self) -> dict:
        """The file's metadata properties (the bundle writes the labels there)."""
        return dict(self._session.get_modelmeta().custom_metadata_map)

    def predict(self, images: np.ndarray) -> np.ndarray:
        images = _as_batch(images, self.input_shape)
        return self._session.run(None, {self._input_name: images.astype(np.float32)})[0].astype(np.float32)


def open_classifier(path: str | Path, threads: int | None = None):
    """A ready classifier for a .tflite or .onnx file; ``threads`` None = all cores."""
    backend = backend_of(path)
    if not Path(path).is_file():
        raise NslError(f"{path}: model file not found")
    classifier = TfliteClassifier(path, threads) if backend == "tflite" else OnnxClassifier(path, threads)
    log.debug("%s: %s, input %s %s, %d classes, %d threads", path, backend, classifier.input_dtype,
              classifier.input_size, classifier.num_classes, classifier.threads)
    return classifier
