"""The table benchmarks/gpu_check.sh prints when a part of the run was cut off by its time limit: the part says
TIMED OUT, what finished before is still listed, and what the benchmark did not get to is named (a device run has
one try)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = os.path.join(ROOT, "benchmarks", "gpu_check_report.py")

# pytest's XML after a SIGINT: the finished tests, then an unnamed entry for the one it was running
INTERRUPTED_JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="3">
<testcase classname="tests.test_cuda_paths" name="test_hires_fix_on_the_gpu" time="2.5"/>
<testcase classname="tests.test_cuda_paths" name="test_a_nan_unet_is_reported_with_a1111s_message" time="1.0">
<failure message="AssertionError: no NaN message">...</failure></testcase>
<testcase time="0.001"/></testsuite></testsuites>"""

FIGURES = dict(first=0.5, s_per_image=0.4, its=50.0, cpu_s_per_image=0.4, peak=2 ** 30)
PIPELINE = dict(device="cuda", pending=["sdxl", "sd15 --compile", "sdxl --compile"], results=[
    dict(model="sd15", side=512, steps=20, dtype="float16",
         rows={"ours": dict(FIGURES, its=60.0), "diffusers": FIGURES})])


def table(tmp_path, *args):
    result = subprocess.run([sys.executable, REPORT, *map(str, args)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr
    return {line.split(" | ")[0].lstrip("| "): line for line in result.stdout.splitlines() if line.startswith("| ")}


def test_a_part_cut_off_by_its_limit_says_so_and_keeps_what_finished(tmp_path):
    (tmp_path / "tests.xml").write_text(INTERRUPTED_JUNIT)
    (tmp_path / "pipeline.json").write_text(json.dumps(PIPELINE))
    (tmp_path / "load.log").write_text("loading /tmp/x.safetensors failed:\nMemoryError: out of RAM\n")
    rows = table(tmp_path, "--junit", tmp_path / "tests.xml", "--pipeline", tmp_path / "pipeline.json",
                 "--part", "CUDA tests", 124, 240, 240, tmp_path / "tests.log",
                 "--part", "load memory", 1, 12, 60, tmp_path / "load.log",
                 "--part", "pipeline benchmark", -1, 0, 0, tmp_path / "pipeline.txt",
                 "--junit", tmp_path / "never-written.xml")
    assert "TIMED OUT after 240 s" in rows["CUDA tests"] and rows["CUDA tests"].endswith("| NO |")
    assert "FAILED (exit 1) after 12 s: MemoryError: out of RAM" in rows["load memory"]
    assert "NOT RUN" in rows["pipeline benchmark"]
    assert "passed (2.5 s)" in rows["test_cuda_paths::test_hires_fix_on_the_gpu"]
    nan_test = rows["test_cuda_paths::test_a_nan_unet_is_reported_with_a1111s_message"]
    assert "FAILED: AssertionError: no NaN message" in nan_test
    assert "interrupted" in rows["(the test running when the part was stopped)"]
    assert "1.20x" in rows["SD1.5 it/s ours vs diffusers (512x512, 20 steps, float16, GPU)"]
    for name in PIPELINE["pending"]:
        assert "not measured" in rows[f"benchmark: {name}"]


def test_parts_that_finished_are_met(tmp_path):
    rows = table(tmp_path, "--part", "CUDA tests", 0, 130, 240, tmp_path / "tests.log")
    assert rows["CUDA tests"] == "| CUDA tests | ends within 240 s | finished in 130 s | yes |"
