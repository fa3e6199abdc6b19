"""The signers bench lists the fused model's wrong answers, counted over seeds: where the errors lie, not only how many."""

from __future__ import annotations

from types import SimpleNamespace

from nsl.bench.signers import mistake_rows, pair_rows, render


def _result(seed, precision, fused_mistakes, split="signers"):
    return {"split": split, "seed": seed, "precision": precision, "n_images": 72, "hand_found": 1.0,
            "top1": {"cnn": 0.8, "landmarks": 0.85, "fused": 0.9}, "fusion_weight": 0.5,
            "mistakes": {"cnn": [["a", "b"]], "landmarks": [], "fused": fused_mistakes}}


def test_mistakes_are_counted_over_seeds_of_the_signers_split_only():
    results = [_result(42, "int8", [["2", "v"], ["o", "0"]]), _result(7, "int8", [["2", "v"], ["z", "-"]]),
               _result(7, "fp32", [["k", "u"]]), _result(1, "int8", [["x", "y"]], split="random")]
    rows = mistake_rows(results, "fused", "int8")
    assert rows == [["2", "v", 2, "7, 42"], ["o", "0", 1, "42"], ["z", "-", 1, "7"]]
    assert mistake_rows([{**results[0], "mistakes": {}}], "fused", "int8") == []


def test_the_rendered_section_carries_the_mistakes_table():
    args = SimpleNamespace(data="asl_36", test_groups="hand4,hand5", group_pattern="^(hand\\d+)_", imgsz=224,
                           fusion_on="val")
    rendered = render([_result(42, "int8", [["2", "v"]])], args, "single 40 epochs")
    titles = [t["caption"] for t in rendered["tables"]]
    assert titles[-1].startswith("mistakes of the fused int8 answer")
    assert rendered["tables"][-1]["rows"] == [["2", "v", 1, "42"]]
    assert not render([_result(42, "int8", [])], args, "-")["tables"][-1]["caption"].startswith("mistakes")


def test_errors_within_a_one_handshape_pair_are_counted_apart_and_only_where_the_classes_hold_the_pair():
    classes = ["0", "2", "6", "o", "v", "w", "k", "u"]
    runs = [{**_result(42, "int8", [["2", "v"], ["k", "u"]]), "classes": classes},
            {**_result(7, "int8", [["o", "0"], ["w", "6"], ["v", "2"], ["k", "-"]]), "classes": classes},
            {**_result(7, "fp32", [["2", "v"]]), "classes": classes}]
    fused = {row[0]: row for row in pair_rows(runs, "int8")}["fused"]
    # 2 and 4 errors, 1 and 3 of them within a pair: top-1 0.9 each, merged 0.9 + 1/72 and 0.9 + 3/72
    assert fused[1:] == [0.9, 3.0, 2.0, round(0.9 + 2 / 72, 4), 2]
    assert pair_rows([{**r, "classes": ["ka", "kha"]} for r in runs], "int8") == []
    assert pair_rows([{k: v for k, v in r.items() if k != "classes"} for r in runs], "int8") == []
    args = SimpleNamespace(data="asl_36", test_groups="hand4,hand5", group_pattern="^(hand\\d+)_", imgsz=224,
                           fusion_on="val")
    captions = [t["caption"] for t in render(runs, args, "-")["tables"]]
    assert any(c.startswith("errors within one-handshape pairs") for c in captions)
