"""The one job queue: FIFO order, task ids, progress per task, cancel of a waiting job, interrupt and skip of the
running job only, a failing job answered with its error while the next runs, and a pluggable executor."""
import threading
import time

import pytest

from modules import call_queue, job_queue


class GatedExecutor:
    """Runs each job when the test opens its gate; records the order jobs started and the signals they got."""

    def __init__(self, slots=1):
        self.slots = slots
        self.started = []
        self.gates = {}
        self.signals = []
        self.lock = threading.Lock()
        self.open_all = threading.Event()  # at the end of a test every job, started or not, may finish

    def gate(self, task_id):
        with self.lock:
            return self.gates.setdefault(task_id, threading.Event())

    def run(self, job):
        with self.lock:
            self.started.append(job.task_id)
        gate = self.gate(job.task_id)
        while not gate.wait(0.05) and not self.open_all.is_set():
            pass
        if job.request.get("fail"):
            raise ValueError(f"bad request {job.task_id}")
        return job_queue.JobResult(info=job.task_id, value=job.request)

    def progress(self, job):
        return job_queue.TaskProgress(task_id=job.task_id, status="running", fraction=0.5)

    def interrupt(self, job):
        self.signals.append(("interrupt", job.task_id))

    def skip(self, job):
        self.signals.append(("skip", job.task_id))

    def stop_generating(self, job):
        self.signals.append(("stop", job.task_id))


def wait_until(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def queue_and_executor():
    executor = GatedExecutor()
    queue = job_queue.JobQueue(executor)
    yield queue, executor
    executor.open_all.set()
    assert queue.wait_idle(10)  # nothing of this test runs on into the next one


def test_jobs_run_in_submission_order_and_each_gets_its_own_result(queue_and_executor):
    queue, executor = queue_and_executor
    jobs = [queue.submit("txt2img", {"n": i}) for i in range(5)]
    assert len({j.task_id for j in jobs}) == 5 and all(j.task_id.startswith("task(txt2img-") for j in jobs)
    for job in jobs:
        executor.gate(job.task_id).set()
    results = [job.future.result(timeout=10) for job in jobs]
    assert executor.started == [j.task_id for j in jobs]
    assert [r.value["n"] for r in results] == list(range(5))
    assert queue.progress(jobs[0].task_id).status == "done"


def test_progress_reports_the_queue_position_then_the_running_state(queue_and_executor):
    queue, executor = queue_and_executor
    first, second, third = (queue.submit("txt2img", {}) for _ in range(3))
    wait_until(lambda: executor.started == [first.task_id])
    assert queue.progress(first.task_id).status == "running" and queue.progress(first.task_id).fraction == 0.5
    p2, p3 = queue.progress(second.task_id), queue.progress(third.task_id)
    assert (p2.status, p2.queue_position, p2.queued) == ("queued", 0, 2)
    assert (p3.status, p3.queue_position) == ("queued", 1)
    assert queue.progress("task(nope)").status == "unknown"


def test_a_waiting_job_can_be_cancelled_and_the_others_still_run(queue_and_executor):
    queue, executor = queue_and_executor
    first, second, third = (queue.submit("txt2img", {}) for _ in range(3))
    wait_until(lambda: executor.started == [first.task_id])
    assert queue.cancel(second.task_id) is True
    with pytest.raises(job_queue.JobCancelled):
        second.future.result(timeout=1)
    assert queue.progress(second.task_id).status == "cancelled"
    executor.gate(first.task_id).set()
    executor.gate(third.task_id).set()
    third.future.result(timeout=10)
    assert executor.started == [first.task_id, third.task_id]


def test_interrupt_and_skip_reach_only_the_running_job(queue_and_executor):
    queue, executor = queue_and_executor
    first, second = queue.submit("txt2img", {}), queue.submit("txt2img", {})
    wait_until(lambda: executor.started == [first.task_id])
    assert queue.interrupt(second.task_id) == []          # still waiting: nothing to interrupt
    assert queue.interrupt() == [first.task_id]
    assert queue.skip(first.task_id) == [first.task_id]
    assert queue.cancel(first.task_id) is False           # running: cancel interrupts it instead
    assert executor.signals == [("interrupt", first.task_id), ("skip", first.task_id), ("interrupt", first.task_id)]
    assert queue.progress(second.task_id).status == "queued"


def test_a_failing_job_answers_its_error_and_the_next_job_runs(queue_and_executor):
    queue, executor = queue_and_executor
    bad, good = queue.submit("txt2img", {"fail": True}), queue.submit("txt2img", {"ok": 1})
    executor.gate(bad.task_id).set()
    executor.gate(good.task_id).set()
    with pytest.raises(ValueError, match="bad request"):
        bad.future.result(timeout=10)
    assert good.future.result(timeout=10).value == {"ok": 1}
    assert "bad request" in queue.progress(bad.task_id).error


def test_a_forced_task_id_is_used_and_may_not_name_a_waiting_job(queue_and_executor):
    queue, executor = queue_and_executor
    job = queue.submit("txt2img", {}, task_id="my-task")
    assert job.task_id == "my-task"
    with pytest.raises(job_queue.TaskIdInUse):
        queue.submit("txt2img", {}, task_id="my-task")
    executor.gate("my-task").set()
    job.future.result(timeout=10)
    again = queue.submit("txt2img", {}, task_id="my-task")  # finished: the id may be used again
    executor.gate("my-task").set()
    again.future.result(timeout=10)


def test_an_executor_with_more_slots_runs_jobs_side_by_side_in_order():
    executor = GatedExecutor(slots=2)
    queue = job_queue.JobQueue(job_queue.LocalExecutor())
    queue.set_executor(executor)
    jobs = [queue.submit("txt2img", {}) for _ in range(3)]
    wait_until(lambda: len(executor.started) == 2)
    assert executor.started == [jobs[0].task_id, jobs[1].task_id]
    assert [queue.progress(j.task_id).status for j in jobs] == ["running", "running", "queued"]
    for job in jobs:
        executor.gate(job.task_id).set()
    for job in jobs:
        job.future.result(timeout=10)


def test_a_call_job_runs_in_this_process_in_its_turn(queue_and_executor):
    queue, executor = queue_and_executor
    first = queue.submit("txt2img", {})
    wait_until(lambda: executor.started == [first.task_id])
    order = []
    call = queue.submit_call(lambda x: order.append(x) or x * 2, 21)
    time.sleep(0.1)
    assert order == [] and queue.progress(call.task_id).status == "queued"
    executor.gate(first.task_id).set()
    assert call.future.result(timeout=10).value == 42 and order == [21]


def test_fifo_lock_is_granted_in_order_and_reentrant():
    lock = call_queue.FIFOLock()
    order = []
    lock.acquire()
    with lock:  # the owner may take it again
        pass
    threads = []
    for i in range(5):
        def take(i=i):
            with lock:
                order.append(i)
        t = threading.Thread(target=take)
        t.start()
        threads.append(t)
        wait_until(lambda i=i: len(lock._waiters) == i + 1)
    lock.release()
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2, 3, 4]
    assert not lock.locked()
    assert lock.acquire(timeout=0.1) and lock.locked()
    lock.release()


def test_wrapped_gradio_call_queues_returns_outputs_and_shows_errors_as_html():
    calls = []

    def handler(id_task, x):
        calls.append((id_task, job_queue.current_job().task_id))
        if x == "boom":
            raise RuntimeError("it broke")
        return [x, "info"]

    wrapped = call_queue.wrap_gradio_gpu_call(handler, extra_outputs=[None])
    out = wrapped("task(abc)", "fine")
    assert out[0] == "fine" and out[1].startswith("info") and "Time taken" in out[1]
    assert calls == [("task(abc)", "task(abc)")]
    image, error = wrapped("task(def)", "boom")
    assert image is None and "RuntimeError: it broke" in error and "class='error'" in error


def test_a_queued_call_inside_a_job_runs_inline():
    inner = call_queue.wrap_gradio_gpu_call(lambda: ["inner"])
    outer = call_queue.wrap_gradio_gpu_call(lambda: [inner()[0]])
    assert outer()[0].startswith("inner")  # each wrapper adds its "Time taken" to the last output, as A1111


def test_holding_queue_lock_keeps_jobs_from_starting():
    started = threading.Event()
    with call_queue.queue_lock:
        job = job_queue.queue.submit_call(started.set)
        assert not started.wait(0.3)
    job.future.result(timeout=10)
    assert started.is_set()


def test_the_page_shows_the_queue_position_and_how_many_wait():
    from webui import job_runner
    queued = job_runner.progress_html(job_queue.TaskProgress(task_id="t", status="queued", queue_position=2, queued=3))
    assert "In queue: 2 jobs ahead" in queued
    running = job_runner.progress_html(job_queue.TaskProgress(task_id="t", status="running", fraction=0.5, queued=3,
                                                              completed_steps=5, total_steps=10), "txt2img")
    assert "Step 5/10" in running and "50%" in running and "3 waiting" in running


def test_a_tabs_interrupt_cancels_its_waiting_job_and_leaves_the_running_one():
    from types import SimpleNamespace

    from webui import job_runner
    release = threading.Event()
    blocker = job_queue.queue.submit_call(release.wait, 10)  # someone else's running job
    wait_until(lambda: blocker.status == "running")
    mine = SimpleNamespace(session_hash="session-a")
    updates = job_runner.run_job("txt2img", "txt2img", {"prompt": "x"}, gradio_request=mine)
    kind, html_text, _ = next(updates)
    assert kind == "progress" and "In queue: next" in html_text
    job_runner.interrupt("txt2img", mine)
    kind, result, error = next(updates)
    assert kind == "done" and result is None and isinstance(error, job_queue.JobCancelled)
    assert blocker.status == "running"
    release.set()
    blocker.future.result(timeout=10)
