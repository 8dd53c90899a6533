"""Runs one engine job in a worker thread while streaming progress, ETA and live previews to the page.

Only one job runs at a time (the engine and the model are shared); the Interrupt and Skip buttons talk to
`shared.state` directly, so they act while the job runs.
"""
import html
import threading
import time
import traceback

from modules import errors, shared

queue_lock = threading.Lock()
PREVIEW_PERIOD_S = 0.5


def progress_html(job_label: str = "") -> str:
    state = shared.state
    fraction, eta = state.progress()
    total = state.total_steps
    done = min(state.completed_steps, total) if total else 0
    parts = [f"{job_label}" if job_label else ""]
    if state.job_count and state.job_count > 1:
        parts.append(f"Batch {min(state.job_no + 1, state.job_count)}/{state.job_count}")
    if total:
        parts.append(f"Step {done}/{total}")
    parts.append(f"{fraction * 100:.0f}%")
    if eta is not None and fraction > 0:
        parts.append(f"ETA {eta:.1f}s")
    text = " · ".join(p for p in parts if p)
    return (f"<div class='progress-wrap' data-fraction='{fraction:.3f}'>"
            f"<div class='progress-bar' style='width:{fraction * 100:.1f}%'></div>"
            f"<div class='progress-text'>{html.escape(text)}</div></div>")


def error_html(message: str) -> str:
    return f"<div class='error'>{html.escape(message)}</div>"


def run_job(job_label, fn, *args, preview_fn=None):
    """A generator for Gradio: yields ('progress', html, preview) while running, then ('done', result, error)."""
    result = {}

    def target():
        try:
            result["value"] = fn(*args)
        except Exception as e:
            errors.report(f"Error running {job_label}", exc_info=True)
            result["error"] = e
            result["traceback"] = traceback.format_exc()

    with queue_lock:
        shared.state.begin(job=job_label)
        worker = threading.Thread(target=target, daemon=True)
        worker.start()
        last_preview_id = -1
        while worker.is_alive():
            worker.join(PREVIEW_PERIOD_S)
            preview = None
            if preview_fn is not None and shared.state.current_latent is not None:
                preview_id = (shared.state.sampling_step, shared.state.job_no)
                if preview_id != last_preview_id:
                    last_preview_id = preview_id
                    try:
                        preview = preview_fn()
                    except Exception:
                        preview = None
            yield "progress", progress_html(job_label), preview
        shared.state.end()
    yield "done", result.get("value"), result.get("error")


def format_error(e: Exception) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
