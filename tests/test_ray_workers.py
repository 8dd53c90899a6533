"""A local Ray cluster with two CPU workers on the demo model, behind this process as their front.

Marked `ray` (start-up alone takes a minute or more on a small machine): `python -m pytest -m ray tests/test_ray_workers.py`.
"""
import copy
import json
import os
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason='Ray is not installed: pip install ".[ray]"')

from modules import job_queue, sd_models, shared  # noqa: E402
from modules.distributed import executor, front  # noqa: E402
from tests.extension_helpers import write_extension  # noqa: E402

pytestmark = pytest.mark.ray

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "models", "Stable-diffusion", "demo-shapes.safetensors")
SECOND = "demo-second.safetensors"
START_TIMEOUT_S = 900
# An extension's always-on script: its engine hook must run in the worker, as in a single process.
HOOK_SCRIPT = """
    import modules.scripts as scripts

    class RayHookTest(scripts.Script):
        def title(self):
            return "Ray hook test"

        def show(self, is_img2img):
            return scripts.AlwaysVisible

        def process(self, p, *args):
            p.extra_generation_params["Ray hook"] = "ran"
"""


def wait_until(condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def ready_workers(pool):
    return [w for w in pool.worker_states() if w["status"] == "ready"]


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    ckpt_dir = tmp_path_factory.mktemp("ray-checkpoints")
    shutil.copy(DEMO, ckpt_dir / "demo-shapes.safetensors")
    shutil.copy(DEMO, ckpt_dir / SECOND)
    hook = write_extension(os.path.join(shared.data_path, "extensions"), "ray-hook-test",
                           {"scripts/ray_hook.py": HOOK_SCRIPT})
    saved_env = os.environ.get("SD_WEBUI_TEST_ARGV")
    saved_ckpt_dir = shared.cmd_opts.ckpt_dir
    os.environ["SD_WEBUI_TEST_ARGV"] = f"--ckpt-dir {ckpt_dir}"  # what the workers start with
    shared.cmd_opts.ckpt_dir = str(ckpt_dir)
    sd_models.list_models()
    shared.opts.data["sd_model_checkpoint"] = "demo-shapes.safetensors"
    flags = copy.copy(shared.cmd_opts)
    flags.workers, flags.ray_workers, flags.ray_object_store_mb = "ray", 2, 128
    started = time.perf_counter()
    the_pool = front.start(flags)
    wait_until(lambda: len(ready_workers(the_pool)) == 2, START_TIMEOUT_S, "two workers to start")
    print(f"\nRay cluster and two workers ready in {time.perf_counter() - started:.1f} s")
    try:
        yield the_pool
    finally:
        front.stop()
        ray.shutdown()
        shared.cmd_opts.ckpt_dir = saved_ckpt_dir
        if saved_env is None:
            os.environ.pop("SD_WEBUI_TEST_ARGV", None)
        else:
            os.environ["SD_WEBUI_TEST_ARGV"] = saved_env
        sd_models.list_models()
        shutil.rmtree(hook)
        load_scripts()


def load_scripts():
    from modules import extensions, scripts
    extensions.list_extensions()
    scripts.load_scripts()


def request(seed, steps=6, **extra):
    return dict(prompt="a big blue star, top right, on yellow", steps=steps, width=64, height=64, seed=seed,
                sampler_name="Euler a", cfg_scale=7, **extra)


def submit(pool, task_id, args, client=""):
    return pool.submit(front.job_for(task_id, "txt2img", args, client=client))


def info(result):
    """The generation parameters of a worker's result (the queue's JobResult.info: Processed.js())."""
    return json.loads(result.value.info)


@pytest.fixture
def queue(pool):
    """A job queue like the front's, with the Ray executor: what the web UI and the API submit to."""
    return job_queue.JobQueue(executor=executor.RayExecutor())


def saved_files_for_seed(seed):
    folder = os.path.join(shared.data_path, "outputs")
    return [name for _, _, names in os.walk(folder) for name in names if name.split(".")[0].endswith(f"-{seed}")]


def test_the_same_request_gives_the_same_image_and_infotext_as_the_single_process_engine(queue):
    import torch
    args = request(1234, steps=8)
    result = queue.submit("txt2img", args).future.result(600)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the worker's share of this 2-core machine; CPU sums depend on the thread count
    try:
        load_scripts()  # the extension's hook runs here too
        sd_models.load_model(sd_models.get_closet_checkpoint_match("demo-shapes.safetensors"))
        # what the single-process queue runs (LocalExecutor), here without saving a second copy
        reference = job_queue.run_job("txt2img", dict(args, do_not_save_samples=True), "reference")
    finally:
        torch.set_num_threads(threads)
        sd_models.unload_model_weights()

    assert np.array_equal(np.asarray(result.images[0]), np.asarray(reference.images[0]))
    assert result.infotexts == reference.infotexts
    assert "Model: demo-shapes" in result.infotexts[0] and "Ray hook: ran" in result.infotexts[0]
    assert len(saved_files_for_seed(1234)) == 1  # saved once, by the front


def test_a_bad_request_fails_on_the_worker_with_the_engines_own_error(queue):
    from modules.processing_request import RequestError
    job = queue.submit("txt2img", dict(request(1), sampler_name="No such sampler"))
    with pytest.raises(RequestError, match="Sampler not found: 'No such sampler'") as error:
        job.future.result(300)
    assert error.value.field == "sampler_name"


def test_forty_jobs_from_eight_clients_all_complete_with_their_own_seeds_on_both_workers(pool):
    def client(number):
        tickets = [submit(pool, f"c{number}-{i}", request(10_000 + 100 * number + i), client=f"client-{number}")
                   for i in range(5)]
        return [(ticket, ticket.wait(900)) for ticket in tickets]

    with ThreadPoolExecutor(8) as executor:
        per_client = list(executor.map(client, range(8)))

    done = [pair for pairs in per_client for pair in pairs]
    assert len(done) == 40
    for number, pairs in enumerate(per_client):
        seeds = [info(result)["seed"] for _, result in pairs]
        assert seeds == [10_000 + 100 * number + i for i in range(5)]
        starts = [ticket.started_at for ticket, _ in pairs]
        assert starts == sorted(starts), f"client {number}'s jobs started out of order"
        assert all(f"Seed: {seed}," in result.value.infotexts[0] for seed, (_, result) in zip(seeds, pairs))
    by_worker = {}
    for _, result in done:
        by_worker[result.worker] = by_worker.get(result.worker, 0) + 1
    assert set(by_worker) == {"worker-1", "worker-2"} and min(by_worker.values()) >= 8, by_worker
    assert all(len(saved_files_for_seed(info(result)["seed"])) == 1 for _, result in done)


def test_a_job_for_a_second_checkpoint_goes_to_the_worker_that_has_it(pool):
    second = {"sd_model_checkpoint": SECOND}
    first = submit(pool, "second-0", request(2000, override_settings=second)).wait(600)
    holder = first.worker
    assert "Model: demo-second" in first.value.infotexts[0]
    for i in range(1, 4):
        result = submit(pool, f"second-{i}", request(2000 + i, override_settings=second)).wait(600)
        assert result.worker == holder and "Model: demo-second" in result.value.infotexts[0]
        other = submit(pool, f"first-{i}", request(2100 + i)).wait(600)
        assert other.worker != holder and "Model: demo-shapes" in other.value.infotexts[0]
    states = {w["name"]: w["checkpoint"] for w in pool.worker_states()}
    assert states[holder] == SECOND

    from webui import tab_workers  # the Workers tab shows each worker's model, state and memory
    page = tab_workers.workers_html()
    assert all(f"<td>{name}</td><td>ready</td>" in page for name in states)
    assert SECOND in page and "demo-shapes.safetensors" in page and "RAM" in page


def test_progress_previews_interrupt_and_skip_reach_the_worker_running_the_job(queue):
    shared.opts.data["show_progress_every_n_steps"] = 2
    try:
        job = queue.submit("txt2img", request(3000, steps=200))
        wait_until(lambda: queue.progress(job.task_id).sampling_step >= 4, 300, "progress")
        progress = wait_until(lambda: (lambda p: p if p.preview is not None else None)(queue.progress(job.task_id)),
                              300, "a live preview")
        assert progress.status == "running" and progress.preview.size == (64, 64) and progress.total_steps == 200
        queue.interrupt(job.task_id)
        result = job.future.result(300)
        assert len(result.images) == 1 and saved_files_for_seed(3000) == []  # unfinished: not saved

        # long enough that the skip lands during the first image (a demo step takes ~10 ms on one thread)
        job = queue.submit("txt2img", request(3100, steps=400, n_iter=2))
        wait_until(lambda: queue.progress(job.task_id).sampling_step >= 4, 300, "progress")
        queue.skip(job.task_id)
        result = job.future.result(600)
        assert json.loads(result.info)["all_seeds"] == [3100, 3101]
        assert saved_files_for_seed(3100) == [] and len(saved_files_for_seed(3101)) == 1
    finally:
        shared.opts.data.pop("show_progress_every_n_steps", None)


def test_a_worker_removed_and_one_added_while_jobs_run(pool):
    tickets = [submit(pool, f"scale-{i}", request(4000 + i, steps=10), client=f"s{i % 2}") for i in range(6)]
    wait_until(lambda: any(t.worker == "worker-2" and t.state == "running" for t in tickets), 300, "worker-2 busy")
    running_there = next(t for t in tickets if t.worker == "worker-2" and t.state == "running")
    pool.remove_worker("worker-2")
    assert running_there.wait(600).worker == "worker-2"  # its job still finishes there
    wait_until(lambda: "worker-2" not in {w["name"] for w in pool.worker_states()}, 60, "worker-2 to go")

    added = pool.add_worker(num_cpus=1, threads=1)
    more = [submit(pool, f"scale-more-{i}", request(4100 + i, steps=10), client=f"m{i % 2}") for i in range(12)]
    results = [t.wait(START_TIMEOUT_S) for t in tickets + more]
    assert sorted(info(r)["seed"] for r in results) == sorted([4000 + i for i in range(6)] + [4100 + i for i in range(12)])
    wait_until(lambda: len(ready_workers(pool)) == 2, START_TIMEOUT_S, f"{added} to start")
    assert {w["name"] for w in pool.worker_states()} == {"worker-1", added}
    last = [submit(pool, f"scale-last-{i}", request(4200 + i, steps=10), client=f"l{i}") for i in range(4)]
    assert {t.wait(600).worker for t in last} == {"worker-1", added}  # the added worker takes jobs


def test_killing_a_worker_mid_job_loses_no_job_and_runs_none_twice(pool):
    wait_until(lambda: len(ready_workers(pool)) == 2, START_TIMEOUT_S, "two workers")
    # ~3 s a job, so the kill lands while the victim's job runs
    tickets = [submit(pool, f"kill-{i}", request(5000 + i, steps=300), client=f"k{i % 3}") for i in range(6)]
    victim_ticket = wait_until(
        lambda: next((t for t in tickets if t.progress and t.progress.sampling_step >= 2), None), 300, "a job running")
    victim = victim_ticket.worker
    pid = next(w["pid"] for w in pool.worker_states() if w["name"] == victim)
    os.kill(pid, signal.SIGKILL)

    results = [t.wait(START_TIMEOUT_S) for t in tickets]  # none lost: every job answers, with its own seed
    assert [info(result)["seed"] for result in results] == [5000 + i for i in range(6)]
    assert victim_ticket.attempts == 2 and victim_ticket.result.worker != victim  # run again elsewhere, once
    assert all(ticket.attempts == 1 for ticket in tickets if ticket is not victim_ticket)
    for i in range(6):  # none saved twice
        assert len(saved_files_for_seed(5000 + i)) == 1, f"seed {5000 + i} saved {saved_files_for_seed(5000 + i)}"
    restarted = wait_until(lambda: next((w for w in ready_workers(pool) if w["name"] == victim), None),
                           START_TIMEOUT_S, f"Ray to restart {victim}")
    assert restarted["pid"] != pid and restarted["deaths"] == 1  # a new process took the killed one's place
