"""A1111's names for taking a turn in the job queue (A1111: modules.call_queue); extensions import them.

`queue_lock` is held while a job runs in this process; an extension holding it (`with queue_lock:`) waits its turn
and keeps jobs from starting meanwhile. `wrap_gradio_gpu_call(fn)` makes a Gradio handler a queued job: it waits in
the same FIFO as the UI's and the API's jobs, reports progress under its task id (when its first argument is
"task(...)") and turns an exception into the error HTML in the last output, as A1111 does.
"""
import collections
import html
import threading
import time
from functools import wraps

from modules import devices, errors, job_queue, shared


class FIFOLock:
    """A re-entrant lock granted in the order it was asked for."""
    _HANDOFF = object()

    def __init__(self):
        self._state = threading.Lock()
        self._waiters = collections.deque()
        self._owner = None
        self._count = 0

    def acquire(self, blocking=True, timeout=-1):
        me = threading.get_ident()
        with self._state:
            if self._owner == me:
                self._count += 1
                return True
            if self._owner is None and not self._waiters:
                self._owner, self._count = me, 1
                return True
            if not blocking:
                return False
            turn = threading.Event()
            self._waiters.append(turn)
        if not turn.wait(None if timeout is None or timeout < 0 else timeout):
            with self._state:
                if turn in self._waiters:
                    self._waiters.remove(turn)
                    return False
            # The lock was handed over just as the wait timed out: take it.
        with self._state:
            self._owner, self._count = me, 1
        return True

    def release(self):
        with self._state:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a FIFOLock this thread does not hold")
            self._count -= 1
            if self._count:
                return
            if self._waiters:
                self._owner = self._HANDOFF  # reserved for the next in line, so no newcomer overtakes it
                self._waiters.popleft().set()
            else:
                self._owner = None

    def locked(self):
        return self._owner is not None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


queue_lock = FIFOLock()


def error_html(message: str) -> str:
    return f"<div class='error'>{html.escape(message)}</div>"


def format_error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def wrap_queued_call(func):
    """`func` run while holding queue_lock (no job runs meanwhile)."""
    @wraps(func)
    def f(*args, **kwargs):
        with queue_lock:
            return func(*args, **kwargs)
    return f


def _task_id(args):
    if args and isinstance(args[0], str) and args[0].startswith("task(") and args[0].endswith(")"):
        return args[0]
    return None


def run_queued(func, *args, task_id=None, kind="call", **kwargs):
    """Run `func` as a job of the queue: wait for its turn, run it in this process, return its value or raise."""
    if job_queue.current_job() is not None:
        return func(*args, **kwargs)  # already a job's turn (a wrapped function calling another): run inline
    job = job_queue.queue.submit_call(func, *args, task_id=task_id, kind=kind, **kwargs)
    return job.future.result().value


def wrap_gradio_gpu_call(func, extra_outputs=None):
    """A Gradio handler as a queued job; a first argument "task(...)" is its task id for progress requests."""
    @wraps(func)
    def f(*args, **kwargs):
        return run_queued(func, *args, task_id=_task_id(args), **kwargs)
    return wrap_gradio_call(f, extra_outputs=extra_outputs, add_stats=True)


def wrap_gradio_call(func, extra_outputs=None, add_stats=False):
    @wraps(func)
    def f(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            shared.state.skipped = False
            shared.state.interrupted = False
            shared.state.stopping_generation = False
            shared.state.job_count = 0
    return wrap_gradio_call_no_job(f, extra_outputs, add_stats)


def wrap_gradio_call_no_job(func, extra_outputs=None, add_stats=False):
    """Exceptions become `extra_outputs + [error HTML]`; with add_stats the last output gets the time taken."""
    @wraps(func)
    def f(*args, extra_outputs_array=extra_outputs, **kwargs):
        started = time.perf_counter()
        try:
            res = list(func(*args, **kwargs))
        except Exception as e:
            errors.report(f"Error completing request {getattr(func, '__name__', func)}", exc_info=True)
            res = list(extra_outputs_array if extra_outputs_array is not None else [None, ""]) + [error_html(format_error(e))]
        devices.torch_gc()
        if not add_stats:
            return tuple(res)
        if res and isinstance(res[-1], str):
            res[-1] += time_taken_html(time.perf_counter() - started)
        return tuple(res)
    return f


def time_taken_html(elapsed: float) -> str:
    """A1111's "Time taken" line under a job's output (extension CSS and javascript select on its classes)."""
    minutes, seconds = divmod(elapsed, 60)
    elapsed_text = f"{int(minutes)} min. {seconds:.1f} sec." if minutes else f"{seconds:.1f} sec."
    return f"<div class='performance'><p class='time'>Time taken: <wbr><span class='measurement'>{elapsed_text}</span></p></div>"
