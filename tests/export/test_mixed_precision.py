"""mixed_precision=on really trains in mixed_float16 (on the CPU too), the run still saves a float32 best.keras,
records its environment, and exports a fp32 TFLite file that agrees with Keras."""

from __future__ import annotations

import numpy as np
import pytest
import tf_keras as keras

from nsl.fileio import read_json
from nsl.rundir import RunDir
from tests.conftest import env_python, run_nsl
from tests.train.conftest import tiny_config


class PolicySpy(keras.callbacks.Callback):
    """The dtype policies of the model as ``fit`` trains it."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[str, str, str]] = []

    def on_train_begin(self, logs=None):
        layer = self.model.get_layer("Conv1")
        head = self.model.get_layer("predictions")
        self.seen.append((layer.dtype_policy.name, layer.compute_dtype, head.compute_dtype))


@pytest.mark.slow
def test_mixed_precision_trains_in_float16_and_exports_float32(synth_data, tmp_path):
    from nsl.train.model import load_keras
    from nsl.train.run import train_run

    spy = PolicySpy()
    config = tiny_config(synth_data, mixed_precision="on", **{"phases": "[{name: head, epochs: 1, lr: 1.0e-3, "
                                                                        "trainable: none}, {name: full, epochs: 1, "
                                                                        "lr: 1.0e-4, trainable: all}]"})
    run = RunDir(train_run(config, tmp_path / "run", extra_callbacks=[spy]))
    assert spy.seen and all(seen == ("mixed_float16", "float16", "float32") for seen in spy.seen)

    environment = read_json(run.environment_file)
    assert environment["dtype_policy"] == "mixed_float16" and environment["replicas"] == 1
    assert environment["global_batch"] == 16 and environment["lr_scale"] == 1.0
    assert "## Environment" in run.report_file.read_text() and "mixed_float16" in run.report_file.read_text()

    best = load_keras(run.best_model)
    assert {layer.dtype_policy.name for layer in best.layers} == {"float32"}
    assert best.output.dtype == "float32"

    run_nsl("export", run.path, "--formats", "tflite", "--allow-drop", python=env_python("train"))
    from ai_edge_litert.interpreter import Interpreter

    from nsl.preprocess import load_input

    samples, _ = run.test_samples()
    images = np.stack([load_input(s.path, config.crop) for s in samples[:8]]).astype(np.float32)
    expected = best.predict(images, verbose=0)
    interpreter = Interpreter(model_path=str(run.default_bundle / "model_fp32.tflite"))
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert (got.argmax(1) == expected.argmax(1)).all()
