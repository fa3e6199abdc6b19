"""Hostile and damaged inputs, made by code in the test that uses them (no committed binaries).

Everything here is standard library, numpy, Pillow, flatbuffers and LiteRT's schema module, so both environments
can build the same files: a tiny TFLite classifier, a bundle around it, a pixel bomb, a photo with an EXIF
orientation, the byte positions of a model's per-channel weight scales (where one changed byte crashes LiteRT's
XNNPACK delegate), and a small disk (a tmpfs) to fill.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from nsl.fileio import sha256_of

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_tflite(classes: int = 6, side: int = 8, seed: int = 0, input_shape: list[int] | None = None) -> bytes:
    """A float32 TFLite classifier of a few KB built from the schema: image (1, side, side, 3) -> RESHAPE ->
    FULLY_CONNECTED -> SOFTMAX -> (1, classes). ``input_shape`` replaces the image's declared shape (a model that
    is not an image classifier)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    rng = np.random.default_rng(seed)
    inputs = side * side * 3
    weights = (rng.standard_normal((classes, inputs)) * 0.01).astype(np.float32)
    constants = [None, None, np.array([-1, inputs], np.int32), weights, np.zeros(classes, np.float32), None, None]
    buffers = []
    for data in constants:
        buffer = schema.BufferT()
        buffer.data = None if data is None else list(data.tobytes())
        buffers.append(buffer)

    def tensor(name, shape, buffer, kind=schema.TensorType.FLOAT32):
        made = schema.TensorT()
        made.name, made.shape, made.type, made.buffer = name, list(shape), kind, buffer
        return made

    tensors = [tensor("image", input_shape or [1, side, side, 3], 1),
               tensor("shape", [2], 2, schema.TensorType.INT32), tensor("weights", [classes, inputs], 3),
               tensor("bias", [classes], 4), tensor("flat", [1, inputs], 5), tensor("logits", [1, classes], 6),
               tensor("predictions", [1, classes], 0)]
    codes = []
    for builtin in (schema.BuiltinOperator.RESHAPE, schema.BuiltinOperator.FULLY_CONNECTED,
                    schema.BuiltinOperator.SOFTMAX):
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = builtin
        code.version = 1
        codes.append(code)
    softmax = schema.SoftmaxOptionsT()
    softmax.beta = 1.0
    operators = []
    for index, ins, outs, kind, options in (
            (0, [0, 1], [4], 0, None),
            (1, [4, 2, 3], [5], schema.BuiltinOptions.FullyConnectedOptions, schema.FullyConnectedOptionsT()),
            (2, [5], [6], schema.BuiltinOptions.SoftmaxOptions, softmax)):
        operator = schema.OperatorT()
        operator.opcodeIndex, operator.inputs, operator.outputs = index, ins, outs
        operator.builtinOptionsType, operator.builtinOptions = kind, options
        operators.append(operator)
    graph = schema.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators, graph.name = tensors, [0], [6], operators, "main"
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, codes, [graph], buffers
    model.description = "nsl test classifier"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def bundle_metadata(files: dict[str, Path], classes: int, side: int) -> dict:
    """A schema-1 ``metadata.json`` for model files already in place (digests computed here)."""
    return {
        "schema": 1,
        "labels": [{"index": i, "name": f"class{i}", "roman": f"c{i}"} for i in range(classes)],
        "input": {"height": side, "width": side, "channels": 3, "dtype": "float32", "layout": "NHWC",
                  "color_order": "RGB", "value_range": [0, 255]},
        "preprocess": {"size": side, "color_mode": "color", "margin": 0.1, "square": True, "blur": 5,
                       "threshold_block": 11, "threshold_c": 2},
        "files": {name: {"format": path.suffix.lstrip("."), "precision": "fp32", "sha256": sha256_of(path),
                         "size_bytes": path.stat().st_size,
                         "input": {"dtype": "float32", "scale": 0.0, "zero_point": 0},
                         "output": {"dtype": "float32", "scale": 0.0, "zero_point": 0}}
                  for name, path in files.items()},
        "default_file": {"tflite": next(iter(files))},
        "source_run": "", "package_version": "0.1.0", "git_commit": "", "created": "2026-01-01T00:00:00Z",
    }


def write_bundle(folder: Path, classes: int = 6, side: int = 8, model: bytes | None = None) -> Path:
    """A bundle folder with one tiny TFLite file (``model`` replaces its bytes) and a valid metadata.json."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model_fp32.tflite"
    path.write_bytes(tiny_tflite(classes, side) if model is None else model)
    write_metadata(folder, bundle_metadata({path.name: path}, classes, side))
    return folder


def write_metadata(folder: Path, metadata) -> None:
    (folder / "metadata.json").write_text(json.dumps(metadata, ensure_ascii=False), encoding="utf-8")


def read_metadata(folder: Path) -> dict:
    return json.loads((folder / "metadata.json").read_text(encoding="utf-8"))


def restamp(folder: Path) -> None:
    """Record the current sha256 and size of every listed file (a damaged file whose digest was updated)."""
    metadata = read_metadata(folder)
    for name, entry in metadata["files"].items():
        entry["sha256"], entry["size_bytes"] = sha256_of(folder / name), (folder / name).stat().st_size
    write_metadata(folder, metadata)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit grey PNG of ``width`` x ``height`` black pixels: a few hundred KB on disk that a decoder
    without a pixel limit expands to width * height bytes (three times that as RGB)."""
    row = b"\x00" + bytes((width + 7) // 8)
    packer = zlib.compressobj(9)
    block = row * max(1, (1 << 22) // len(row))
    rows_per_block = len(block) // len(row)
    parts, left = [], height
    while left > 0:
        count = min(left, rows_per_block)
        parts.append(packer.compress(block if count == rows_per_block else row * count))
        left -= count
    parts.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b""))
    return path


# The stored pixels for each EXIF orientation: the upright picture turned the other way (Pillow's Transpose ids),
# so that a viewer applying the tag shows it upright again.
STORED_FOR_ORIENTATION = {2: 0, 3: 3, 4: 1, 5: 5, 6: 2, 7: 6, 8: 4}  # orientation -> Image.Transpose applied


def oriented_copy(source: Path, target: Path, orientation: int, quality: int = 95) -> Path:
    """``source`` saved as ``target`` (JPEG or PNG by its suffix) the way a phone saves it: pixels stored turned,
    with the EXIF orientation that shows them upright."""
    from PIL import Image

    with Image.open(source) as image:
        upright = image.convert("RGB")
    stored = upright.transpose(Image.Transpose(STORED_FOR_ORIENTATION[orientation]))
    exif = Image.Exif()
    exif[0x0112] = orientation
    options = {"quality": quality} if target.suffix.lower() in (".jpg", ".jpeg") else {}
    stored.save(target, exif=exif.tobytes(), **options)
    return target


def per_channel_scale_bytes(model: bytes) -> list[int]:
    """Offsets of the most significant byte (sign and high exponent bits) of every per-channel scale of the
    model's int8 tensors. A scale made huge there (the byte set to 0x45-0x7f: a thousand times or more) makes
    LiteRT 2.3's XNNPACK delegate abort with a double free in allocate_tensors: 30 of 30 such mutants of the test
    bundle's int8 file, against 4 of 600 one-byte mutants of its structure bytes at random (the issue's search
    over the whole file: 1 of 290)."""
    from ai_edge_litert import schema_py_generated as schema

    graph = schema.Model.GetRootAs(model, 0).Subgraphs(0)
    offsets = []
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        quantization = tensor.Quantization()
        if tensor.Type() != schema.TensorType.INT8 or quantization is None or quantization.ScaleLength() < 2:
            continue
        start = quantization._tab.Vector(quantization._tab.Offset(8))  # QuantizationParameters.scale (field 2)
        offsets += [start + 4 * channel + 3 for channel in range(quantization.ScaleLength())]
    return offsets


def mutants(model: bytes, offsets: list[int], count: int, seed: int) -> list[tuple[int, int, bytes]]:
    """``count`` one-byte mutants of ``model``: a seeded draw of an offset among ``offsets`` and of the byte's new
    value (0-255, never the old one), as (offset, value, bytes). The values drawn do not depend on the model."""
    rng = np.random.default_rng(seed)
    values, picks = rng.integers(0, 256, count), rng.integers(len(offsets), size=count)
    out = []
    for value, pick in zip(values.tolist(), picks.tolist()):
        data = bytearray(model)
        data[offsets[pick]] = value if value != data[offsets[pick]] else value ^ 0x80
        out.append((offsets[pick], value, bytes(data)))
    return out


@contextmanager
def small_disk(path: Path, size: str):
    """A tmpfs of ``size`` (e.g. "600k") mounted at ``path`` for the block; skips the test where mounting is not
    allowed (not root)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("filling a disk needs a small tmpfs, and mounting one needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
