"""Training on real photos from the ImageNet weights file: the whole recipe learns something real."""

from __future__ import annotations

import pytest

from nsl.fileio import read_json
from tests.conftest import WEIGHTS_DIR, env_python, real_data, run_nsl

WEIGHTS = WEIGHTS_DIR / "mobilenet_v2_1.0_224_no_top.h5"

# Head-only phase at 128 px: the frozen backbone runs at ~100-200 images/s on 2 cores, so 12 epochs of 252
# training photos take about a minute. Bigger images or unfrozen layers would score higher but cost minutes.
RECIPE = """\
imgsz: 128
labels: auto
batch: 32
phases:
  - {name: head, epochs: 12, lr: 3.0e-3, trainable: none}
patience: 4
tensorboard: false
"""


@pytest.mark.slow
@pytest.mark.real_data
def test_real_asl_photos_from_imagenet_weights(tmp_path):
    data = real_data("asl_36")
    if not WEIGHTS.is_file():
        pytest.skip(f"ImageNet weights file not found at {WEIGHTS} (set NSL_WEIGHTS to the shared weights folder)")
    config = tmp_path / "real.yaml"
    config.write_text(RECIPE)
    run_nsl("train", "--data", data, "--weights", WEIGHTS, "--config", config, "--project", tmp_path,
            "--name", "asl", python=env_python("train"))
    metrics = read_json(tmp_path / "asl" / "metrics.json")
    # 36 classes: chance is 2.8 %. A linear probe on these ImageNet features scores about 79 % (224 px, to
    # convergence); this short head-only run at 128 px measured 70 % here. 40 % on 54 test photos (one photo
    # = 1.9 points) is far above chance and leaves room for run-to-run noise across machines.
    assert metrics["n_images"] == 54
    assert metrics["top1"] > 0.40, metrics["top1"]
    assert metrics["top3"] > metrics["top1"]
