"""nsl bench, edge sections: a quick run on the tiny bundle and a clip of real photos (classifier + app).

Plumbing and consistency only: every file x runtime x thread-count row is there, figures are positive, p50 <=
p90, the fp32 TFLite row is the ratio's reference; no assertion on speed (a shared 2-core machine)."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import env_python, real_data, run_nsl
from tests.edge.conftest import error_line

pytestmark = [pytest.mark.edge, pytest.mark.real_data]
STAGES = ["capture", "hands", "crop", "classify", "draw", "other", "frame"]


@pytest.fixture(scope="module")
def bench(tiny_bundle, hand_model, tmp_path_factory):
    photos = real_data("hands_natural")
    out = tmp_path_factory.mktemp("bench")
    run_nsl("bench", "--model", tiny_bundle, "--clip", photos, "--hand-model", hand_model,
            "--sections", "classifier,app", "--quick", "--out", out, python=env_python("edge"), timeout=300)
    return json.loads((out / "bench.json").read_text(encoding="utf-8")), (out / "bench.md").read_text(), tiny_bundle


def rows_of(table: dict) -> list[dict]:
    return [dict(zip(table["columns"], row)) for row in table["rows"]]


def test_merged_results_name_both_sections(bench):
    merged, markdown, _ = bench
    assert list(merged["sections"]) == ["classifier", "app"]
    assert merged["skipped"] == {} and merged["failed"] == {}
    assert merged["command"].startswith("nsl bench --model")
    for data in merged["sections"].values():
        assert data["machine"]["cores"] == os.cpu_count()
        assert data["machine"]["versions"]["onnxruntime"] and data["machine"]["versions"]["ai-edge-litert"]
        assert f"## {data['title']}" in markdown
        for table in data["tables"]:
            assert f"*{table['caption']}*" in markdown
            assert "| " + " | ".join(table["columns"]) + " |" in markdown
            assert "median of" in table["caption"] or "median over" in table["caption"]


def test_classifier_rows_cover_every_file_runtime_and_thread_count(bench):
    merged, _, bundle = bench
    metadata = json.loads((bundle / "metadata.json").read_text(encoding="utf-8"))
    rows = rows_of(merged["sections"]["classifier"]["tables"][0])
    threads = sorted({1, os.cpu_count()})
    assert sorted((r["file"], r["threads"]) for r in rows) == sorted((f, t) for f in metadata["files"] for t in threads)
    for row in rows:
        assert row["runtime"] == ("onnxruntime" if row["file"].endswith(".onnx") else "ai-edge-litert")
        assert 0 < row["p50 ms"] <= row["p90 ms"]
        assert row["images/s"] > 0 and row["ratio to fp32 TFLite"] > 0 and row["size MB"] > 0
        if row["file"] == "model_fp32.tflite":
            assert row["ratio to fp32 TFLite"] == 1.0
    raw = merged["sections"]["classifier"]["raw"]
    assert raw["repeats"] == 1 and raw["runs"] == 10 and "hands_natural" in raw["images"]


def test_app_rows_per_backend_and_output_with_consistent_stages(bench):
    merged, _, bundle = bench
    defaults = json.loads((bundle / "metadata.json").read_text(encoding="utf-8"))["default_file"]
    loop, p50s, p90s, goal = merged["sections"]["app"]["tables"]
    configs = [("tflite", "headless"), ("tflite", "drawing + video"), ("onnx", "headless"), ("onnx", "drawing + video")]
    assert [(r["backend"], r["output"]) for r in rows_of(loop)] == configs
    for row in rows_of(loop):
        assert row["frames/s"] > 0 and 0 < row["frame p50 ms"] <= row["frame p90 ms"] and row["peak RSS MB"] > 50
        # the bundle's default int8 file (PTQ or QAT, whichever measured better at export: QAT's one epoch on 84
        # images makes that choice vary between exports)
        assert row["model file"] == defaults[row["backend"]] and "int8" in row["model file"]
        assert row["frames with a hand"] > 0.5  # real photos: the tracker finds most hands
    for low, high in zip(rows_of(p50s), rows_of(p90s)):
        for stage in STAGES + ["classifier model"]:
            assert 0 <= low[stage] <= high[stage], (stage, low, high)
        assert low["hands"] > 0 and low["classifier model"] > 0
        assert (low["draw"] > 0.1) == (low["output"] == "drawing + video")  # drawing is measured only when on
    for row in rows_of(goal):
        outside = row["outside models mean"]
        assert outside > 0 and row[next(c for c in row if c.startswith("<"))] == ("pass" if outside < 3 else "fail")
        assert row["frame rate bound by"] in ("hand tracker", "classifier")
    notes = merged["sections"]["app"]["notes"]
    assert sum(("pass" in n or "fail" in n) for n in notes) == 4


def test_bad_input_is_one_line_and_exit_2(tiny_bundle, tmp_path):
    edge = env_python("edge")
    cases = [
        (["--model", tmp_path / "nope", "--sections", "classifier"], "not a model bundle"),
        (["--model", tiny_bundle, "--sections", "classifier,gpu"], "unknown section gpu"),
        (["--model", tiny_bundle, "--sections", "app"], "needs --clip"),
        (["--model", tiny_bundle, "--clip", tiny_bundle / "metadata.json", "--sections", "app", "--quick"],
         "expected a video file"),
        (["--model", tiny_bundle, "--images", tmp_path, "--sections", "classifier", "--runs", "0"], "--runs 0"),
    ]
    for args, expected in cases:
        proc = run_nsl("bench", *args, "--out", tmp_path / "out", python=edge, check=False, timeout=120)
        assert proc.returncode == 2, proc.stderr
        line = error_line(proc)
        assert line.startswith("nsl bench: error: ") and expected in line, line


def test_soak_section_survives_a_dropped_stream_and_reports_a_memory_slope(tiny_bundle, hand_model, tmp_path):
    """A short soak through the real tracker: the MJPEG stream is dropped half-way and the app reconnects on its
    own; memory is sampled and a slope comes out (its size is the benchmark's business, not this test's)."""
    out = tmp_path / "bench"
    run_nsl("bench", "--model", tiny_bundle, "--clip", real_data("hands_natural"), "--hand-model", hand_model,
            "--sections", "soak", "--frames", "120", "--warmup", "20", "--out", out, python=env_python("edge"),
            timeout=300)
    soak = json.loads((out / "bench.json").read_text(encoding="utf-8"))["sections"]["soak"]
    row = rows_of(soak["tables"][0])[0]
    assert row["frames"] == 120
    assert row["reconnects"] >= 1 and row["stream connections"] >= 2
    assert row["frames with a hand"] > 0.5            # real photos of hands, through the real tracker
    samples = soak["raw"]["samples"]
    assert len(samples) >= 5 and samples[-1][0] == 120 and all(kb > 0 for _, _, kb in samples)
    assert isinstance(row["slope KB / 1000 frames"], float)
    heap = soak["raw"]["heap_samples"]
    assert [f for f, _, _ in heap] == [f for f, _, _ in samples] and all(blocks > 0 for _, _, blocks in heap)


def test_the_soak_reports_the_step_at_every_reconnect_apart_from_the_slopes_between_drops():
    """Planted memory: 2 KB per 1,000 frames throughout, a 1,000 KB step at the first reconnect and 10 KB at the
    second: the steps and slopes come out apart, so a cost of every reconnect is told from a one-time one."""
    from nsl.bench.soak import drop_frames, segments, segments_table

    drops = drop_frames(9000, 2)
    assert drops == [3000, 6000] and drop_frames(100, 1) == [50]
    samples = [(f, f / 30, 100_000 + 2 * f // 1000 + (1000 if f > 3000 else 0) + (10 if f > 6000 else 0))
               for f in range(100, 9001, 100)]
    figures = segments(samples, 500, drops)
    assert figures["steps_at_reconnects_kb"] == [1000, 10]
    assert all(abs(slope - 2) < 0.6 for slope in figures["slopes_between_drops"])
    assert figures["step_at_reconnect_kb"] == 1000 and len(rows_of(segments_table(figures))) == 2


def test_the_heap_figure_sees_a_native_allocation_that_rss_alone_would_blur():
    """The soak's in-use C heap figure is glibc's own count: 8 MB malloc'd (not touched, so RSS barely moves) shows
    in it, and is gone again after free."""
    import ctypes

    from nsl.bench.soak import heap_in_use_kb

    if heap_in_use_kb() is None:
        pytest.skip("no glibc mallinfo2 here")
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    before = heap_in_use_kb()
    block = libc.malloc(8 << 20)
    try:
        assert heap_in_use_kb() - before >= 8 * 1024 - 64
    finally:
        libc.free(block)
    assert abs(heap_in_use_kb() - before) < 1024


def test_the_growth_table_tells_memory_in_use_from_memory_the_allocator_keeps():
    """Planted: RSS grows 5 KB per 1,000 frames while the C heap in use and Python's blocks stay flat (freed memory
    kept by the allocator); then a heap that grows as RSS does (a leak) shows in the heap row too."""
    from types import SimpleNamespace

    from nsl.bench.soak import growth_table

    frames = range(100, 10001, 100)
    rss = [(f, f / 30, 200_000 + 5 * f // 1000) for f in frames]
    kept = SimpleNamespace(samples=rss, heap=[(f, 50_000, 90_000) for f in frames], drop_at=[5000])
    rows = {r["measure"]: r for r in rows_of(growth_table(kept, 1000))}
    assert abs(rows["resident memory (RSS), KB"]["slope after warm-up"] - 5) < 0.5
    assert rows["C heap in use (glibc mallinfo2), KB"]["slope after warm-up"] == 0
    assert rows["Python allocated blocks, count"]["slope after warm-up"] == 0
    leak = SimpleNamespace(samples=rss, heap=[(f, 50_000 + 5 * f // 1000, 90_000) for f in frames], drop_at=[5000])
    rows = {r["measure"]: r for r in rows_of(growth_table(leak, 1000))}
    assert abs(rows["C heap in use (glibc mallinfo2), KB"]["slope after warm-up"] - 5) < 0.5
    no_glibc = SimpleNamespace(samples=rss, heap=[(f, None, 90_000) for f in frames], drop_at=[5000])
    assert [r["measure"] for r in rows_of(growth_table(no_glibc, 1000))] == ["resident memory (RSS), KB",
                                                                             "Python allocated blocks, count"]


def test_drift_tells_memory_that_stays_from_a_swing_that_comes_back():
    """Planted 10^5-frame runs, as the soak samples them: 1.5 MB held from frame 60,000 to 90,000 and then
    freed moves the least-squares slope by several KB per 1,000 frames while the drift (medians of the first and
    last tenth) stays 0 and the swing says 1.5 MB; a steady 3 KB per 1,000 frames shows in slope and drift alike."""
    from nsl.bench.soak import drift, memory_slope, swing_kb

    frames = range(500, 100_001, 500)
    bump = [(f, f / 30, 300_000 + (1536 if 60_000 < f <= 90_000 else 0)) for f in frames]
    assert abs(memory_slope(bump, 10_000)) > 3 and drift(bump, 10_000) == 0 and swing_kb(bump, 10_000) == 1536
    leak = [(f, f / 30, 300_000 + 3 * f // 1000) for f in frames]
    assert abs(memory_slope(leak, 10_000) - 3) < 0.1 and abs(drift(leak, 10_000) - 3) < 0.1


def test_each_sample_is_the_lowest_reading_of_its_window_so_a_frame_in_flight_is_not_growth(monkeypatch):
    """Planted readings, as /proc gives them in the app loop: a 900 KB frame buffer alive at some instants and
    not others, over a floor that a 3 KB-per-1,000-frames leak raises. One reading per sample (window 1) takes
    the flicker into the slope; the lowest of the window's readings leaves the leak alone."""
    from nsl.bench import soak

    frame = {"n": 0}

    def planted_rss():
        floor = 300_000 + 3 * frame["n"] // 1000
        flicker = 900 if (frame["n"] * 7919) % 3 else 0  # a frame in flight at two instants of three, scattered
        return {"VmRSS": floor + flicker, "RssAnon": floor + flicker - 50_000, "RssFile": 50_000}

    monkeypatch.setattr(soak, "resident_parts_kb", planted_rss)
    monkeypatch.setattr(soak, "heap_in_use_kb", lambda: 70_000 + (900 if frame["n"] % 2 else 0))
    slopes = {}
    for window in (1, 25):
        sampler = soak.MemorySampler(500, [], lambda: None, 0, window)
        for n in range(1, 100_001):
            frame["n"] = n
            sampler.record({"hands": []})
        sampler.close()
        slopes[window] = soak.memory_slope(sampler.samples, 10_000)
        assert [f for f, _, _ in sampler.samples][:3] == [1, 500, 1000]
    assert abs(slopes[25] - 3) < 0.05 and abs(slopes[1] - 3) > 0.05
    assert soak.memory_slope(sampler.instant, 10_000) == slopes[1]  # the one reading is kept beside, to compare
    assert "without the window" in soak.growth_table(sampler, 10_000)["rows"][1][0]
    assert {kb for _, kb, _ in sampler.heap[1:]} == {70_000}  # the heap's lowest reading too
    assert soak.lowest_readings([({"VmRSS": 5}, None), ({"VmRSS": 3}, None)]) == ({"VmRSS": 3}, None)


def test_soak_is_only_run_when_named(tmp_path):
    proc = run_nsl("bench", "--out", tmp_path, check=False, python=env_python("edge"),
                   env={"NSL_TRAIN_PYTHON": "/nonexistent/bin/python"})
    merged = json.loads((tmp_path / "bench.json").read_text(encoding="utf-8"))
    assert "soak" not in merged["skipped"] and "soak" not in merged["sections"], proc.stderr
