"""The front's pool of Ray workers: jobs wait here, start on the worker routing picks, and come back once.

Every job has a Ticket; the thread that submitted it waits on the ticket and, when the job is done, saves its images
(captured_saves.replay) and gets the engine's return value. One dispatcher thread watches the workers: results,
deaths, start-ups and progress. A worker that dies mid-job has its job put back at the head of its client's queue
and run on another worker, once; a second death of the same job fails it with a message that says so. Ray restarts
a dead worker's process (max_restarts), and it takes jobs again once its engine is up.
"""
import itertools
import threading
import time
import traceback
from dataclasses import dataclass, field

from modules.distributed import captured_saves, jobs, routing

POLL_INTERVAL_S = 0.5
STATE_REFRESH_S = 5.0   # an idle worker is asked how it is (memory, still alive) this often
WORKER_MAX_RESTARTS = 5
WORKER_CONCURRENCY = 4  # run + progress + interrupt/skip + state at the same time


class JobFailed(RuntimeError):
    """The job could not be run: its workers died, or it was cancelled before it started."""


@dataclass
class Ticket:
    job: object
    state: str = "waiting"           # waiting, running, done, failed, cancelled
    worker: str = None
    attempts: int = 0                # starts on a worker
    started_at: float = None         # when it was last sent to a worker
    avoid: set = field(default_factory=set)
    passed_over: int = 0
    result: object = None            # a JobResult when done
    error: BaseException = None
    progress: object = None          # the worker's last TaskProgress (its preview kept apart, below)
    preview: object = None
    preview_id: int = None
    finished: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout=None):
        """The JobResult, once done: its images are saved by this (the front's) process first."""
        if not self.finished.wait(timeout):
            raise TimeoutError(f"job {self.job.task_id} is still {self.state}")
        if isinstance(self.error, jobs.JobError):  # what it saved before the error is kept, as in one process
            captured_saves.replay(self.error.saved_images)
            self.error.saved_images = []
            raise self.error.cause
        if self.error is not None:
            raise self.error
        if self.result.saved_images:
            captured_saves.replay(self.result.saved_images)
            self.result.saved_images = []
        return self.result


@dataclass
class WorkerRecord:
    name: str
    actor: object
    resources: dict
    status: str = "starting"         # starting, ready, draining, dead
    ticket: Ticket = None
    run_ref: object = None
    ready_ref: object = None
    progress_ref: object = None
    last_poll: float = 0.0
    idle_since: float = field(default_factory=time.time)
    checkpoint: str = None           # loaded (or being loaded for the job just sent)
    info: dict = field(default_factory=dict)     # the worker's last state(): host, pid, device, memory
    deaths: int = 0
    error: str = None
    ask_state_at: float = None       # when to ask a restarting worker again whether it is up
    state_asked_at: float = 0.0


class WorkerPool:
    def __init__(self, ray, actor_class, make_args, poll_interval=POLL_INTERVAL_S):
        """`actor_class`: EngineWorker under ray.remote; `make_args(name, threads)` -> its constructor's arguments."""
        self.ray = ray
        self.actor_class = actor_class
        self.make_args = make_args
        self.poll_interval = poll_interval
        self.lock = threading.RLock()
        self.workers = {}
        self.waiting = []                # tickets in queue order
        self.tickets = {}
        self.names = (f"worker-{i}" for i in itertools.count(1))
        self.closed = False
        self.dispatcher = threading.Thread(target=self._dispatch_loop, name="ray-dispatcher", daemon=True)
        self.dispatcher.start()

    # ------------------------------------------------------------------ workers

    def add_worker(self, num_cpus=1, num_gpus=0, threads=None):
        """Start one more worker (it takes jobs once its engine is up); returns its name."""
        name = next(self.names)
        resources = {"num_cpus": num_cpus, "num_gpus": num_gpus}
        actor = self.actor_class.options(
            max_concurrency=WORKER_CONCURRENCY, max_restarts=WORKER_MAX_RESTARTS, max_task_retries=0, **resources,
        ).remote(*self.make_args(name, threads))
        with self.lock:
            record = WorkerRecord(name=name, actor=actor, resources=resources)
            self._ask_state(record)
            self.workers[name] = record
        return name

    def remove_worker(self, name):
        """Stop sending jobs to worker `name`; it is stopped now if idle, else when its job is done."""
        with self.lock:
            record = self.workers.get(name)
            if record is None:
                raise KeyError(f"no worker named {name!r}; workers: {', '.join(self.workers) or 'none'}")
            record.status = "draining"
            if record.ticket is None:
                self._stop(record)

    def _stop(self, record):
        self.workers.pop(record.name, None)
        try:
            self.ray.kill(record.actor, no_restart=True)
        except Exception:
            traceback.print_exc()

    def worker_states(self):
        """Each worker's name, status, checkpoint, running task, host, pid, device and memory, for UI and API."""
        with self.lock:
            return [{
                **record.info, "name": record.name, "status": record.status, "checkpoint": record.checkpoint,
                "task_id": record.ticket.job.task_id if record.ticket else None,
                "queue": 1 if record.ticket else 0, "deaths": record.deaths, "error": record.error,
                "resources": dict(record.resources),
            } for record in self.workers.values()]

    # ------------------------------------------------------------------ jobs

    def submit(self, job):
        """Queue `job` (jobs.Job); returns its Ticket."""
        ticket = Ticket(job=job)
        with self.lock:
            if self.closed:
                raise JobFailed("the worker pool is shut down")
            self.tickets[job.task_id] = ticket
            self.waiting.append(ticket)
            self._assign()
        return ticket

    def ticket(self, task_id):
        """(Ticket, its place among the jobs waiting for a worker or None) of a job not finished yet, or (None, None)."""
        with self.lock:
            ticket = self.tickets.get(task_id)
            position = self.waiting.index(ticket) if ticket is not None and ticket.state == "waiting" else None
            return ticket, position

    def waiting_count(self):
        """Jobs handed over by the queue that wait for a worker (a free one, or one restarting)."""
        with self.lock:
            return len(self.waiting)

    def live_workers(self):
        """Workers that run jobs or will once started: what the queue may keep busy."""
        with self.lock:
            return sum(r.status in ("starting", "ready") for r in self.workers.values())

    def interrupt(self, task_id):
        self._signal(task_id, "interrupt")

    def skip(self, task_id):
        self._signal(task_id, "skip")

    def stop_generating(self, task_id):
        self._signal(task_id, "stop_generating")

    def _signal(self, task_id, what):
        with self.lock:
            ticket = self.tickets.get(task_id)
            if ticket is None:
                return
            if ticket.state == "waiting" and what == "interrupt":
                self.waiting.remove(ticket)
                self._finish(ticket, error=JobFailed(f"job {task_id} was interrupted before it started"),
                             state="cancelled")
            elif ticket.state == "running":
                # A worker that has not begun the job yet keeps the signal for when it does.
                getattr(self.workers[ticket.worker].actor, what).remote(task_id)

    def close(self):
        with self.lock:
            self.closed = True
            for ticket in list(self.waiting):
                self._finish(ticket, error=JobFailed("the worker pool was shut down"), state="cancelled")
            self.waiting.clear()
            for record in list(self.workers.values()):
                if record.ticket is not None:
                    self._finish(record.ticket, error=JobFailed("the worker pool was shut down"), state="failed")
                self._stop(record)
        self.dispatcher.join(timeout=5)

    # ------------------------------------------------------------------ dispatching

    def _assign(self):
        """Start waiting jobs on free workers (called with the lock held)."""
        free = [routing.FreeWorker(r.name, r.checkpoint, r.idle_since)
                for r in self.workers.values() if r.status == "ready" and r.ticket is None]
        if not free or not self.waiting:
            return
        pairs = [(t, routing.WaitingJob(t.job.task_id, t.job.client, t.job.checkpoint, t.avoid, t.passed_over))
                 for t in self.waiting]
        live = [name for name, r in self.workers.items() if r.status in ("starting", "ready")]
        started = {id(view): worker for view, worker in routing.assign([v for _, v in pairs], free, live)}
        for ticket, view in pairs:
            ticket.passed_over = view.passed_over
            if id(view) in started:
                self._start(ticket, self.workers[started[id(view)].name])

    def _start(self, ticket, record):
        self.waiting.remove(ticket)
        ticket.state, ticket.worker = "running", record.name
        ticket.attempts += 1
        ticket.started_at = time.time()
        record.ticket = ticket
        record.checkpoint = ticket.job.checkpoint or record.checkpoint
        record.run_ref = record.actor.run.remote(ticket.job)

    def _finish(self, ticket, result=None, error=None, state="done"):
        ticket.result, ticket.error, ticket.state = result, error, state
        self.tickets.pop(ticket.job.task_id, None)
        ticket.finished.set()

    def _dispatch_loop(self):
        while not self.closed:
            try:
                self._dispatch_once()
            except Exception:  # a bug here must not stop every job: report it and keep dispatching
                traceback.print_exc()
                time.sleep(self.poll_interval)

    def _dispatch_once(self):
        with self.lock:
            watched = self._watched_refs()
        if not watched:
            time.sleep(self.poll_interval)
        else:
            refs = list(watched)
            self.ray.wait(refs, num_returns=1, timeout=self.poll_interval)   # wake on the first answer
            ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)  # and take all that are in
            with self.lock:
                for ref in ready:
                    what, record = watched[ref]
                    if self.workers.get(record.name) is record:  # not stopped meanwhile (remove_worker, close)
                        getattr(self, f"_on_{what}")(record, ref)
        with self.lock:
            self._poll()
            self._assign()

    def _watched_refs(self):
        watched = {}
        for record in self.workers.values():
            for what in ("run", "ready", "progress"):
                ref = getattr(record, f"{what}_ref")
                if ref is not None:
                    watched[ref] = (what, record)
        return watched

    def _get(self, ref):
        """(value, None) or (None, exception), the engine's own exception rather than Ray's wrapper."""
        try:
            return self.ray.get(ref), None
        except self.ray.exceptions.RayActorError as e:
            return None, e
        except self.ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            return None, cause if isinstance(cause, BaseException) else e
        except Exception as e:  # e.g. an answer that could not be unpickled here: that job fails, not the pool
            return None, e

    def _on_ready(self, record, ref):
        record.ready_ref = None
        info, error = self._get(ref)
        if isinstance(error, self.ray.exceptions.ActorUnavailableError):  # Ray is restarting its process
            if record.status == "ready":  # it died while idle
                record.deaths += 1
                record.status, record.checkpoint, record.info = "starting", None, {}
            record.ask_state_at = time.time() + self.poll_interval
            return
        if error is not None:
            # Kept in the list, so the UI says why; remove_worker takes it away.
            record.status, record.error = "dead", f"{type(error).__name__}: {error}"
            print(f"Ray worker {record.name} could not start: {record.error}", flush=True)
            return
        record.info = {k: v for k, v in info.items() if k != "task_id"}
        if record.ticket is None:  # a busy worker may be loading the checkpoint of the job just sent
            record.checkpoint = info.get("checkpoint")
        if record.status == "starting":
            record.status = "ready"
            record.idle_since = time.time()

    def _on_run(self, record, ref):
        record.run_ref, record.progress_ref = None, None
        ticket, record.ticket = record.ticket, None
        record.idle_since = time.time()
        result, error = self._get(ref)
        if isinstance(error, self.ray.exceptions.RayActorError):
            self._on_worker_death(record, ticket, error)
            return
        if error is not None:
            self._finish(ticket, error=error, state="failed")
        else:
            record.checkpoint = result.checkpoint
            self._finish(ticket, result=result)
        if record.status == "draining":
            self._stop(record)
        else:
            self._ask_state(record)  # fresh memory figures after each job

    def _on_worker_death(self, record, ticket, error):
        print(f"Ray worker {record.name} died while running job {ticket.job.task_id}: {error}", flush=True)
        record.deaths += 1
        if record.status == "draining" or record.deaths > WORKER_MAX_RESTARTS:
            self._stop(record)
        else:
            record.status, record.checkpoint, record.info = "starting", None, {}
            self._ask_state(record)  # answers once Ray has restarted the process
        if ticket.attempts >= 2:
            self._finish(ticket, error=JobFailed(
                f"job {ticket.job.task_id} was lost twice: its workers died while running it ({error})"), state="failed")
            return
        ticket.state, ticket.worker = "waiting", None
        ticket.avoid.add(record.name)
        ticket.progress, ticket.preview, ticket.preview_id = None, None, None
        self._requeue(ticket)

    def _requeue(self, ticket):
        """Back in the queue ahead of everything its client queued after it, and ahead of younger jobs."""
        position = next((i for i, t in enumerate(self.waiting) if t.job.queued_at > ticket.job.queued_at),
                        len(self.waiting))
        self.waiting.insert(position, ticket)

    def _poll(self):
        """Ask restarting workers whether they are up, and running workers how their job is going."""
        now = time.time()
        for record in self.workers.values():
            if record.ready_ref is None and record.status != "dead" and (
                    (record.ask_state_at is not None and now >= record.ask_state_at)
                    or (record.ticket is None and now - record.state_asked_at >= STATE_REFRESH_S)):
                self._ask_state(record)
            ticket = record.ticket
            if ticket is None or record.progress_ref is not None or now - record.last_poll < self.poll_interval:
                continue
            record.last_poll = now
            record.progress_ref = record.actor.progress.remote(ticket.job.task_id, ticket.preview_id)

    def _ask_state(self, record):
        record.ask_state_at, record.state_asked_at = None, time.time()
        record.ready_ref = record.actor.state.remote()

    def _on_progress(self, record, ref):
        record.progress_ref = None
        progress, error = self._get(ref)
        ticket = record.ticket
        if error is not None or progress is None or ticket is None:
            return
        if progress.preview is not None:
            ticket.preview, ticket.preview_id = progress.preview, progress.preview_id
        progress.preview = None
        ticket.progress = progress
