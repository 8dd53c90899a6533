"""One FIFO job queue, with task ids, for every face: the web UI's tabs, the REST API and extensions' queued calls.

A job is a task id, a kind and a plain, picklable request dict; the queue hands it to an executor, which runs it and
returns a picklable `JobResult`. Jobs run in the order they were submitted, as many at a time as the executor has
slots (the in-process executor has one: the engine and its model are shared).

    job = queue.submit("txt2img", request, task_id=None)   # queued at once; returns a Job
    job.future.result()       -> JobResult (or raises the job's error); `await asyncio.wrap_future(job.future)`
    queue.progress(task_id)   -> TaskProgress: queue position while waiting; step, ETA, preview while running
    queue.cancel(task_id)     -> True when a job still waiting was removed (a running job is interrupted instead)
    queue.interrupt(task_id=None), queue.skip(task_id=None), queue.stop_generating(task_id=None)
                              -> act on running jobs only (that one, or every running one when None)
    queue.submit_call(fn, *args, task_id=..)   -> a Python call (extensions' wrapped functions, the merger) that
                                 takes its turn in the same FIFO; it always runs in this process

Kinds and requests (what `run_job` accepts; the request is already normalised by `modules.processing_request`):
    "txt2img"  processing fields of StableDiffusionProcessingTxt2Img + "script_args" (full list, index 0 = the
               selected script's 1-based index or title) + "override_settings", ...
    "img2img"  the same for StableDiffusionProcessingImg2Img, with PIL images in "init_images" and "mask"
    "extras"   arguments of `modules.postprocessing.run_postprocessing` by name (see `run_extras`)

The executor seam (for running jobs elsewhere, e.g. Ray workers): any object with
    slots: int                                  how many jobs may run at once
    run(job) -> JobResult                       blocks until the job is done; raises its error
    progress(job) -> TaskProgress               a snapshot of a running job (preview included)
    interrupt(job), skip(job), stop_generating(job)
installed with `queue.set_executor(executor)`. A worker process runs `run_job(kind, request, task_id)`, the same
function the in-process `LocalExecutor` runs, and reports progress from its own `shared.state`
(`progress_from_state()`). Jobs from `submit_call` carry a callable and always run on the `LocalExecutor`.
"""
from __future__ import annotations

import collections
import random
import string
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

FINISHED_TASKS_KEPT = 256


class TaskIdInUse(ValueError):
    """A force_task_id that names a job still waiting or running."""


class JobCancelled(RuntimeError):
    """The job was cancelled before it started."""


def create_task_id(task_type: str) -> str:
    """A new task id in A1111's form, e.g. "task(txt2img-A1B2C3D)"."""
    suffix = "".join(random.choices(string.ascii_uppercase + string.digits, k=7))
    return f"task({task_type}-{suffix})"


@dataclass
class JobResult:
    """What a job gives back; plain data, so it can come back from another process."""
    images: list = field(default_factory=list)      # PIL images (grid first when the job made one)
    info: str = "{}"                                # Processed.js(): the generation's parameters as JSON
    infotexts: list = field(default_factory=list)
    comments: str = ""
    html_info: str = ""                             # extras: the postprocessing infotext as HTML
    index_of_first_image: int = 0
    value: Any = None                               # submit_call jobs: the callable's return value

    @classmethod
    def from_processed(cls, processed) -> "JobResult":
        return cls(images=list(processed.images), info=processed.js(), infotexts=list(processed.infotexts),
                   comments=processed.comments or "", index_of_first_image=processed.index_of_first_image)


@dataclass
class TaskProgress:
    """Where one task stands. `status`: queued, running, done, failed, cancelled or unknown."""
    task_id: str
    status: str
    queue_position: int | None = None    # jobs ahead of this one while it waits
    queued: int = 0                      # jobs waiting in the whole queue
    fraction: float = 0.0
    eta: float | None = None             # seconds left
    job: str = ""
    job_no: int = 0
    job_count: int = 0
    sampling_step: int = 0
    sampling_steps: int = 0
    completed_steps: int = 0             # denoiser steps of the whole job (all batches, hires pass included)
    total_steps: int = 0
    textinfo: str | None = None
    preview: Any = None                  # PIL image of the running job's current latent, when there is one
    preview_id: int = 0                  # changes whenever `preview` does
    state: dict = field(default_factory=dict)   # shared.state.dict() of the process running the job
    error: str | None = None

    @property
    def completed(self) -> bool:
        return self.status in ("done", "failed", "cancelled")


class Job:
    def __init__(self, task_id: str, kind: str, request: dict, fn: Callable | None = None, source: str = ""):
        self.task_id = task_id
        self.kind = kind
        self.request = request
        self.fn = fn
        self.source = source
        self.status = "queued"
        self.future: Future = Future()
        self.queued_at = time.time()
        self.started_at = None
        self.finished_at = None
        self.executor = None

    def __repr__(self):
        return f"Job({self.task_id!r}, {self.kind!r}, {self.status})"


# ---------------------------------------------------------------------------------------------- running a job

def run_job(kind: str, request: dict, task_id: str = "") -> JobResult:
    """Run one job of `kind` in this process, with `shared.state` reporting its progress (a worker calls this too)."""
    from modules import shared
    handler = job_handlers()[kind]
    shared.state.begin(job=kind)
    shared.state.current_task = task_id
    try:
        return handler(request)
    finally:
        shared.state.end()
        shared.state.current_task = None


def job_handlers() -> dict:
    from modules import img2img, txt2img
    return {
        "txt2img": lambda request: JobResult.from_processed(txt2img.txt2img(request)),
        "img2img": lambda request: JobResult.from_processed(img2img.img2img(request)),
        "extras": run_extras,
    }


def run_extras(request: dict) -> JobResult:
    """The "extras" kind: `run_postprocessing`'s arguments by name; "script_args" is the postprocessing scripts'
    control values in UI order, or one dict {script name: {arg: value}} (what the API sends)."""
    from modules import postprocessing
    script_args = request.get("script_args") or []
    script_args = [script_args] if isinstance(script_args, dict) else list(script_args)
    images, html_info, _ = postprocessing.run_postprocessing(
        request.get("extras_mode", 0), request.get("image"), request.get("image_folder"), request.get("input_dir"),
        request.get("output_dir"), request.get("show_extras_results", True), *script_args,
        save_output=request.get("save_output", True))
    return JobResult(images=list(images), html_info=html_info)


class LivePreviews:
    """The preview of the running job's current latent, rendered at most once per sampling step however many
    clients poll for it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.key = None
        self.image = None
        self.preview_id = 0

    def current(self, task_id):
        from modules import live_preview, shared
        state = shared.state
        latent = state.current_latent
        key = (task_id, state.job_no, state.sampling_step, id(latent), id(state.current_image))
        with self.lock:
            if key != self.key:
                self.key = key
                image = None
                if latent is not None:
                    try:
                        image = live_preview.current_preview()
                    except Exception:
                        from modules import errors
                        errors.report("Error rendering the live preview", exc_info=True)
                if image is None:
                    image = state.current_image
                if image is not None and image is not self.image:
                    self.preview_id += 1
                self.image = image
            return self.image, self.preview_id


def progress_from_state(task_id: str, previews: LivePreviews | None = None) -> TaskProgress:
    """The running job's progress as this process's `shared.state` reports it."""
    from modules import shared
    state = shared.state
    fraction, eta = state.progress()
    preview, preview_id = previews.current(task_id) if previews is not None else (None, 0)
    return TaskProgress(task_id=task_id, status="running", fraction=fraction, eta=eta, job=state.job,
                        job_no=state.job_no, job_count=state.job_count, sampling_step=state.sampling_step,
                        sampling_steps=state.sampling_steps, completed_steps=state.completed_steps,
                        total_steps=state.total_steps, textinfo=state.textinfo, preview=preview,
                        preview_id=preview_id, state=state.dict())


class LocalExecutor:
    """Runs jobs in this process, one at a time, under `call_queue.queue_lock` (which extensions may also hold)."""
    slots = 1

    def __init__(self):
        self.previews = LivePreviews()

    def run(self, job: Job) -> JobResult:
        from modules import call_queue
        with call_queue.queue_lock:
            if job.fn is not None:
                from modules import shared
                shared.state.begin(job=job.kind)
                shared.state.current_task = job.task_id
                try:
                    return JobResult(value=job.fn(*job.request.get("args", ()), **job.request.get("kwargs", {})))
                finally:
                    shared.state.end()
                    shared.state.current_task = None
            return run_job(job.kind, job.request, job.task_id)

    def progress(self, job: Job) -> TaskProgress:
        return progress_from_state(job.task_id, self.previews)

    def interrupt(self, job: Job):
        from modules import shared
        shared.state.interrupt()

    def skip(self, job: Job):
        from modules import shared
        shared.state.skip()

    def stop_generating(self, job: Job):
        from modules import shared
        shared.state.stop_generating()


# ---------------------------------------------------------------------------------------------- the queue

_worker_local = threading.local()


def _report_failure(job, e):
    from modules import errors
    from modules.processing_request import RequestError
    if isinstance(e, RequestError):
        print(f"{job.task_id} ({job.kind}) refused: {e}", flush=True)
    else:
        errors.report(f"Error running {job.task_id} ({job.kind})", exc_info=True)


def current_job() -> Job | None:
    """The job this thread is running for the queue, if any (a queued call made inside a job runs inline)."""
    return getattr(_worker_local, "job", None)


class JobQueue:
    def __init__(self, executor=None):
        self.local = LocalExecutor()
        self.executor = executor or self.local
        self._cond = threading.Condition()
        self._pending: collections.deque[Job] = collections.deque()
        self._running: dict[str, Job] = {}
        # Finished task ids -> (status, error); the results themselves go only to the jobs' futures.
        self._finished: collections.OrderedDict[str, tuple[str, str | None]] = collections.OrderedDict()
        self._workers: list[threading.Thread] = []

    # -- submitting

    def submit(self, kind: str, request: dict, *, task_id: str | None = None, source: str = "") -> Job:
        """Queue a job; `task_id` (A1111's force_task_id) must not name a job still waiting or running."""
        return self._enqueue(Job(task_id or create_task_id(kind), kind, request, source=source))

    def submit_call(self, fn: Callable, *args, task_id: str | None = None, kind: str = "call", source: str = "", **kwargs) -> Job:
        """Queue a Python call; it runs in this process when its turn comes, and its return value is `.value`."""
        job = Job(task_id or create_task_id(kind), kind, {"args": args, "kwargs": kwargs}, fn=fn, source=source)
        return self._enqueue(job)

    def _enqueue(self, job: Job) -> Job:
        with self._cond:
            if job.task_id in self._running or any(j.task_id == job.task_id for j in self._pending):
                raise TaskIdInUse(f"task id {job.task_id!r} is already queued or running")
            self._finished.pop(job.task_id, None)
            self._pending.append(job)
            self._start_workers()
            self._cond.notify_all()
        return job

    def set_executor(self, executor):
        """Run jobs submitted from now on with `executor` (jobs already running finish where they are)."""
        with self._cond:
            self.executor = executor or self.local
            self._start_workers()
            self._cond.notify_all()

    # -- looking

    def _find(self, task_id):
        return self._running.get(task_id) or next((j for j in self._pending if j.task_id == task_id), None)

    def pending(self) -> list[Job]:
        with self._cond:
            return list(self._pending)

    def running(self) -> list[Job]:
        with self._cond:
            return list(self._running.values())

    def progress(self, task_id: str) -> TaskProgress:
        with self._cond:
            job = self._find(task_id)
            queued = len(self._pending)
            if job is None:
                if task_id in self._finished:
                    status, error = self._finished[task_id]
                    return TaskProgress(task_id=task_id, status=status, fraction=1.0, queued=queued, error=error)
                return TaskProgress(task_id=task_id, status="unknown", queued=queued)
            if job.status == "queued":
                position = next(i for i, j in enumerate(self._pending) if j is job)
                return TaskProgress(task_id=task_id, status="queued", queue_position=position, queued=queued)
            executor = job.executor
        progress = executor.progress(job)
        progress.queued = queued
        return progress

    def wait_idle(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending or self._running:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    # -- acting

    def cancel(self, task_id: str) -> bool:
        """Remove a waiting job (its future raises JobCancelled); a running job is interrupted instead."""
        with self._cond:
            job = next((j for j in self._pending if j.task_id == task_id), None)
            if job is not None:
                self._pending.remove(job)
                job.status = "cancelled"
                job.finished_at = time.time()
                self._remember(job, None)
                job.future.set_exception(JobCancelled(f"{task_id} was cancelled before it started"))
                self._cond.notify_all()
                return True
        self.interrupt(task_id)
        return False

    def interrupt(self, task_id: str | None = None) -> list[str]:
        return self._signal("interrupt", task_id)

    def skip(self, task_id: str | None = None) -> list[str]:
        return self._signal("skip", task_id)

    def stop_generating(self, task_id: str | None = None) -> list[str]:
        return self._signal("stop_generating", task_id)

    def _signal(self, action, task_id):
        # Under the queue's lock, so the signal reaches the job it names and never the one after it.
        with self._cond:
            jobs = [self._running[task_id]] if task_id in self._running else [] if task_id else list(self._running.values())
            for job in jobs:
                getattr(job.executor, action)(job)
            return [job.task_id for job in jobs]

    # -- the workers

    def _start_workers(self):
        wanted = max(self.executor.slots, self.local.slots)
        while len(self._workers) < wanted:
            worker = threading.Thread(target=self._work, args=(len(self._workers),), daemon=True,
                                      name=f"job-queue-{len(self._workers)}")
            self._workers.append(worker)
            worker.start()

    def _next_job(self, index):
        with self._cond:
            while True:
                if self._pending and index < self.executor.slots:
                    job = self._pending.popleft()
                    job.status = "running"
                    job.started_at = time.time()
                    job.executor = self.local if job.fn is not None else self.executor
                    self._running[job.task_id] = job
                    return job
                self._cond.wait()

    def _work(self, index):
        while True:
            job = self._next_job(index)
            _worker_local.job = job
            try:
                result = job.executor.run(job)
            except BaseException as e:
                outcome = ("failed", e)
                _report_failure(job, e)
            else:
                outcome = ("done", result)
            finally:
                _worker_local.job = None
            with self._cond:
                self._running.pop(job.task_id, None)
                job.status = outcome[0]
                job.finished_at = time.time()
                self._remember(job, None if outcome[0] == "done" else f"{type(outcome[1]).__name__}: {outcome[1]}")
                self._cond.notify_all()
            # Outside the lock: callbacks on the future may look at the queue.
            if outcome[0] == "done":
                job.future.set_result(outcome[1])
            else:
                job.future.set_exception(outcome[1])

    def _remember(self, job, error):
        self._finished[job.task_id] = (job.status, error)
        while len(self._finished) > FINISHED_TASKS_KEPT:
            self._finished.popitem(last=False)


queue = JobQueue()
"""The one queue of this process."""
