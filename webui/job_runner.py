"""A tab's Generate as a job of the one queue (modules.job_queue): submit the request, then stream the job's queue
position, progress, ETA and live preview to the page until its result comes back.

Each browser session's running or waiting job is remembered per tab, so that tab's Interrupt cancels it while it
waits and interrupts it while it runs; with no job of its own, Interrupt and Skip act on the running job (A1111).
"""
import html
import threading

from modules import job_queue
from modules.call_queue import error_html, format_error  # noqa: F401  (the tabs show errors with these)

PREVIEW_PERIOD_S = 0.5

_session_tasks = {}  # (session hash, tab name) -> task id of that tab's job
_session_lock = threading.Lock()


def progress_html(progress: job_queue.TaskProgress, job_label: str = "") -> str:
    if progress.status == "queued":
        ahead = progress.queue_position or 0
        text = f"In queue: {ahead} job{'s' if ahead != 1 else ''} ahead" if ahead else "In queue: next"
        return (f"<div class='progress-wrap progress-queued' data-fraction='0' data-queue-position='{ahead}'>"
                f"<div class='progress-text'>{html.escape(text)}</div></div>")
    fraction, eta = progress.fraction, progress.eta
    parts = [job_label]
    if progress.job_count and progress.job_count > 1:
        parts.append(f"Batch {min(progress.job_no + 1, progress.job_count)}/{progress.job_count}")
    if progress.total_steps:
        parts.append(f"Step {min(progress.completed_steps, progress.total_steps)}/{progress.total_steps}")
    parts.append(f"{fraction * 100:.0f}%")
    if eta is not None and fraction > 0:
        parts.append(f"ETA {eta:.1f}s")
    if progress.queued:
        parts.append(f"{progress.queued} waiting")
    text = " · ".join(p for p in parts if p)
    return (f"<div class='progress-wrap' data-fraction='{fraction:.3f}'>"
            f"<div class='progress-bar' style='width:{fraction * 100:.1f}%'></div>"
            f"<div class='progress-text'>{html.escape(text)}</div></div>")


def _session_key(request, tabname):
    session = getattr(request, "session_hash", None) if request is not None else None
    return (session, tabname) if session else None


def run_job(job_label, kind, request, *, gradio_request=None):
    """A generator for Gradio: yields ('progress', html, preview or None) while the job waits or runs, then
    ('done', JobResult, None) or ('done', None, error)."""
    job = job_queue.queue.submit(kind, request, source="ui")
    key = _session_key(gradio_request, job_label)
    if key is not None:
        with _session_lock:
            _session_tasks[key] = job.task_id
    last_preview_id = 0
    try:
        while True:
            try:
                result = job.future.result(timeout=PREVIEW_PERIOD_S)
            except TimeoutError:
                pass
            except Exception as e:
                yield "done", None, e
                return
            else:
                yield "done", result, None
                return
            progress = job_queue.queue.progress(job.task_id)
            preview = None
            if progress.preview is not None and progress.preview_id != last_preview_id:
                last_preview_id = progress.preview_id
                preview = progress.preview
            yield "progress", progress_html(progress, job_label), preview
    finally:
        if key is not None:
            with _session_lock:
                if _session_tasks.get(key) == job.task_id:
                    del _session_tasks[key]


def _own_task(gradio_request, tabname):
    key = _session_key(gradio_request, tabname)
    with _session_lock:
        return _session_tasks.get(key) if key is not None else None


def interrupt(tabname, gradio_request=None):
    """The tab's own job: cancelled while it waits, interrupted while it runs; else the running job."""
    task_id = _own_task(gradio_request, tabname)
    if task_id is None:
        job_queue.queue.interrupt()
    else:
        job_queue.queue.cancel(task_id)


def skip(tabname, gradio_request=None):
    job_queue.queue.skip(_own_task(gradio_request, tabname))
