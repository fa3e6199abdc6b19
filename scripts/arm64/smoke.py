"""Runtime smoke for the arm64 check: the edge runtimes on real photos, without the app.

    python smoke.py prepare OUT_DIR MEDIAPIPE_WHEEL   (host) hand_landmarker.task from a mediapipe 0.10.x wheel,
                                                       and tiny.onnx when the onnx package is importable
    python smoke.py run TASK PHOTOS_DIR [ONNX]        (inside the root) prints one JSON line:
        {"mediapipe": "...", "hands": {"photo": n, ...}, "litert_output": [..], "onnx_output": [..] | null}

The .task is the uncompressed zip of the two hand models that every mediapipe 0.10.x wheel carries (see the
design notes, "The hand model, in practice"); the LiteRT check runs the hand-landmark model itself on a crop.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

TASK_MEMBERS = {"hand_detector.tflite": "mediapipe/modules/palm_detection/palm_detection_full.tflite",
                "hand_landmarks_detector.tflite": "mediapipe/modules/hand_landmark/hand_landmark_full.tflite"}


def prepare(out_dir: Path, wheel: Path) -> None:
    """Write out_dir/hand_landmarker.task (and tiny.onnx when onnx is importable)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    task = out_dir / "hand_landmarker.task"
    if not task.exists():
        with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(f"{task}.tmp", "w", zipfile.ZIP_STORED) as dst:
            for name, member in TASK_MEMBERS.items():
                dst.writestr(name, src.read(member))
        Path(f"{task}.tmp").rename(task)
    try:
        import numpy as np
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return
    weight = numpy_helper.from_array(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["logits"]), helper.make_node("Softmax", ["logits"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], initializer=[weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, out_dir / "tiny.onnx")


def run(task: Path, photos: Path, onnx_path: Path | None) -> dict:
    import mediapipe as mp
    import numpy as np
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.HandLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(task)), num_hands=1)
    hands = {}
    with vision.HandLandmarker.create_from_options(options) as landmarker:
        for photo in sorted(photos.iterdir()):
            result = landmarker.detect(mp.Image.create_from_file(str(photo)))
            hands[photo.name] = len(result.hand_landmarks)
    report = {"mediapipe": mp.__version__, "hands": hands, "litert_output": litert_run(task, np)}
    report["onnx_output"] = onnx_run(onnx_path, np) if onnx_path else None
    return report


def litert_run(task: Path, np) -> list:
    from ai_edge_litert.interpreter import Interpreter

    with zipfile.ZipFile(task) as bundle:
        model = bundle.read("hand_landmarks_detector.tflite")
    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.full(detail["shape"], 0.5, dtype=detail["dtype"]))
    interpreter.invoke()
    return [list(map(int, interpreter.get_tensor(out["index"]).shape)) for out in interpreter.get_output_details()]


def onnx_run(path: Path, np) -> list:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probs = session.run(None, {"x": np.array([[1, 2, 3, 4]], dtype=np.float32)})[0]
    return [round(float(p), 4) for p in probs[0]]


if __name__ == "__main__":
    if sys.argv[1:2] == ["prepare"]:
        prepare(Path(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1:2] == ["run"]:
        print(json.dumps(run(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]) if len(sys.argv) > 4 else None)))
    else:
        sys.exit(__doc__)
