"""The one table benchmarks/gpu_check.sh prints: each part of the check (finished in its time limit, timed out or
failed), each CUDA test (passed / failed / skipped and why) and each target of issue #22 against the benchmark's
figures.

    python benchmarks/gpu_check_report.py --junit tests.xml --pipeline pipeline.json [--load load.json] [--mode cpu]
        [--part LABEL EXIT_CODE SECONDS LIMIT LOG ...]
"""
import argparse
import json
import os
import xml.etree.ElementTree as ElementTree

GIB = 2 ** 30
TIMED_OUT = (124, 137)  # coreutils `timeout`: the limit was reached (137: and the part had to be killed)
NOT_RUN = -1  # gpu_check.sh: the time budget was spent before the part's turn


def _last_line(log_path):
    if not os.path.exists(log_path):
        return f"no log at {log_path}"
    with open(log_path, errors="replace") as file:
        lines = [line.strip() for line in file if line.strip()]
    return lines[-1][:160] if lines else "empty log"


def part_row(label, exit_code, seconds, limit, log_path):
    """(check, target, result, ok) for one part of the run: a part cut off at its limit says so, so that the rows it
    did not produce are not mistaken for a clean run."""
    target = f"ends within {limit} s"
    if exit_code == NOT_RUN:
        return (label, "runs", "NOT RUN: the time budget was spent before its turn", False)
    if exit_code == 0:
        return (label, target, f"finished in {seconds} s", True)
    if exit_code in TIMED_OUT:
        return (label, target, f"TIMED OUT after {seconds} s: only what it finished is below", False)
    return (label, target, f"FAILED (exit {exit_code}) after {seconds} s: {_last_line(log_path)}", False)


def test_rows(junit_path):
    """(check, target, result, ok) per test case of a pytest --junitxml file."""
    rows = []
    root = ElementTree.parse(junit_path).getroot()
    for case in root.iter("testcase"):
        name = case.get("name")
        if name is None:  # pytest's entry for the test it was running when the part's time limit stopped it
            rows.append(("(the test running when the part was stopped)", "passes", "interrupted", None))
            continue
        module = case.get("classname", "").rsplit(".", 1)[-1]
        seconds = float(case.get("time", 0))
        failure = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            message = (failure.get("message") or "").splitlines()[0][:120]
            rows.append((f"{module}::{name}", "passes", f"FAILED: {message}", False))
        elif skipped is not None:
            rows.append((f"{module}::{name}", "passes", f"skipped: {(skipped.get('message') or '')[:100]}", None))
        else:
            rows.append((f"{module}::{name}", "passes", f"passed ({seconds:.1f} s)", True))
    return rows


def _model(pipeline, name):
    for result in pipeline["results"]:
        if result["model"] == name:
            return result
    return None


def target_rows(pipeline, on_gpu):
    """The issue's targets that this run's figures decide."""
    rows = []

    def model_rows(name, label, ratio_target, compiled_target, cpu_ratio_target=None):
        result = _model(pipeline, name)
        if result is None:
            return
        if "error" in result:
            rows.append((f"{label}: ours vs diffusers", f">= {ratio_target}x it/s", result["error"], None))
            return
        r = result["rows"]
        ours, theirs = r["ours"], r["diffusers"]
        ratio = ours["its"] / theirs["its"]
        size = f"{result['side']}x{result['side']}, {result['steps']} steps, {result['dtype']}"
        wanted = ratio_target if on_gpu else cpu_ratio_target  # on the CPU the sampling loop is the UNet step
        rows.append((f"{label} it/s ours vs diffusers ({size}, {'GPU' if on_gpu else 'CPU'})",
                     f">= {wanted}x" if wanted else "(GPU target)",
                     f"{ratio:.2f}x ({ours['its']:.2f} vs {theirs['its']:.2f} it/s; {ours['s_per_image']:.3f} vs "
                     f"{theirs['s_per_image']:.3f} s/image)", ratio >= wanted if wanted else None))
        if on_gpu:
            rows.append((f"{label} peak VRAM ours vs diffusers", "<= diffusers'",
                         f"{ours['peak'] / GIB:.2f} vs {theirs['peak'] / GIB:.2f} GiB", ours["peak"] <= theirs["peak"]))
        compiled = r.get("ours --compile")
        if compiled is not None and compiled_target is not None:
            kind, value = compiled_target
            if kind == "ms":
                got, ok = f"{compiled['s_per_image'] * 1000:.0f} ms/image", compiled["s_per_image"] * 1000 < value
                target = f"< {value} ms/image"
            else:
                got, ok = f"{compiled['its']:.1f} it/s", compiled["its"] >= value
                target = f">= {value} it/s"
            rows.append((f"{label} with --compile", target if on_gpu else "(GPU target)", got, ok if on_gpu else None))
        for mode, limit in (("ours --medvram-sdxl", 6), ("ours --lowvram", 4)):
            m = r.get(mode)
            if m is not None and name == "sdxl":
                rows.append((f"{label} {mode.split()[-1]} peak VRAM", f"< {limit} GiB", f"{m['peak'] / GIB:.2f} GiB", m["peak"] < limit * GIB))
                if mode == "ours --medvram-sdxl":
                    speed = ours["s_per_image"] / m["s_per_image"]
                    rows.append((f"{label} --medvram-sdxl speed vs normal", ">= 50%", f"{speed:.0%}", speed >= 0.5))

    model_rows("sd15", "SD1.5", 1.5, ("ms", 150), cpu_ratio_target=1.0)
    model_rows("sdxl", "SDXL", 1.3, ("its", 30))
    demo = _model(pipeline, "demo")
    if demo is not None and "error" not in demo:
        ours = demo["rows"]["ours"]
        rows.append((f"demo {demo['side']}x{demo['side']} {demo['steps']} steps: first image ({'GPU' if on_gpu else 'CPU'})",
                     "<= 1.5 s (CPU)", f"{ours['first']:.2f} s (then {ours['s_per_image']:.2f} s/image)",
                     ours["first"] <= 1.5 if not on_gpu else None))
    return rows


def load_rows(load):
    ratio = load["peak"] / load["file"]
    return [("loading a 2 GB fp16 SD1.5 file on the CPU: peak RSS / file", "<= 2.3x",
             f"{ratio:.2f}x ({load['peak'] / GIB:.2f} GiB peak, {(load['peak'] - load['before']) / load['file']:.2f}x added by the load)",
             ratio <= 2.3)]


def pending_rows(pipeline):
    """What a benchmark cut short did not get to."""
    return [(f"benchmark: {name}", "measured", "not measured: the benchmark stopped first", False)
            for name in pipeline.get("pending", [])]


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", nargs=5, action="append", default=[],
                        metavar=("LABEL", "EXIT_CODE", "SECONDS", "LIMIT", "LOG"),
                        help="one part of the run and how it ended (exit code 0: it finished)")
    parser.add_argument("--junit", action="append", default=[])
    parser.add_argument("--pipeline")
    parser.add_argument("--load")
    parser.add_argument("--mode", choices=["cuda", "cpu"], default="cuda")
    args = parser.parse_args(argv)
    rows = [part_row(label, int(code), int(seconds), int(limit), log) for label, code, seconds, limit, log in args.part]
    for path in args.junit:
        if os.path.exists(path):  # a part killed before it wrote its report has its own row above
            rows += test_rows(path)
    if args.pipeline and os.path.exists(args.pipeline):
        with open(args.pipeline) as file:
            pipeline = json.load(file)
        rows += target_rows(pipeline, args.mode == "cuda") + pending_rows(pipeline)
    if args.load and os.path.exists(args.load):
        with open(args.load) as file:
            rows += load_rows(json.load(file))
    mark = {True: "yes", False: "NO", None: "-"}
    print("\n| check | target | result | met |")
    print("|---|---|---|---|")
    for check, target, result, ok in rows:
        print(f"| {check} | {target} | {result.replace('|', '/')} | {mark[ok]} |")
    failed = [row for row in rows if row[3] is False]
    print(f"\n{len(rows)} rows: {sum(1 for r in rows if r[3])} met, {len(failed)} not met, "
          f"{sum(1 for r in rows if r[3] is None)} not decided here")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
