"""Test-time augmentation of the landmark model, judged on held-out training signers: each fold run (A: trained on
hand1, judged on hand2+hand3; B: trained on hand2+hand3, judged on hand1) answers its judged photos plain and as the
mean over in-plane rotations / scales of the normalised landmarks. Train environment:

    python benchmarks/landmark_loso/tta/tta_check.py RUN_A42 RUN_B42 RUN_A7 RUN_B7
"""
import re, sys
import numpy as np
from nsl.env import prepare_tensorflow
prepare_tensorflow()
import tf_keras as keras
from nsl.train.landmark_model import predict  # noqa
def rotate_scale(f, deg, s):
    p = f.reshape(len(f), -1, 3).astype(np.float64).copy(); a = np.deg2rad(deg)
    x, y = p[..., 0].copy(), p[..., 1].copy()
    p[..., 0] = np.cos(a) * x - np.sin(a) * y; p[..., 1] = np.sin(a) * x + np.cos(a) * y
    return (p * s).reshape(len(f), -1).astype(np.float32)
judge = {"A": {"hand2", "hand3"}, "B": {"hand1"}}
sets = {"plain": [(0, 1.0)], "rot+-7.5": [(-7.5, 1), (0, 1), (7.5, 1)], "rot+-15": [(-15, 1), (0, 1), (15, 1)],
        "rot+-7.5 x scale+-5%": [(d, s) for d in (-7.5, 0, 7.5) for s in (0.95, 1, 1.05)]}
for run in sys.argv[1:]:
    d = np.load(f"{run}/landmarks.npz", allow_pickle=False)
    model = keras.models.load_model(f"{run}/landmarks.keras", compile=False)
    groups = [re.search(r"(hand\d+)_", str(p).split("/")[-1]).group(1) for p in d["test_paths"]]
    keep = np.array([g in judge[run.split("/")[-1][0]] for g in groups])
    f, y = d["test_features"][keep], d["test_labels"][keep]
    vf, vy = d["val_features"], d["val_labels"]
    out = []
    for name, aug in sets.items():
        probs = np.mean([predict(model, rotate_scale(f, a, s)) for a, s in aug], axis=0)
        vprobs = np.mean([predict(model, rotate_scale(vf, a, s)) for a, s in aug], axis=0)
        out.append(f"{name}: {np.mean(probs.argmax(1) == y):.3f} (val {np.mean(vprobs.argmax(1) == vy):.2f})")
    print(run, keep.sum(), " | ".join(out))
