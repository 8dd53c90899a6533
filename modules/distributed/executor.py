"""The job queue's executor for Ray workers: `job_queue.queue.set_executor(RayExecutor())` (initialize does it).

The queue keeps its FIFO order and hands over as many jobs as there are live workers; each goes to the pool,
which picks its worker, and the queue's thread waits for it and saves its images (Ticket.wait). Progress, previews,
interrupt, skip and stop reach the worker that runs the job.

Generations (txt2img, img2img) run on workers. Extras stay in the front: they need no checkpoint, read batch folders
from the front's disk and write captions beside the files the front saves.
"""
import dataclasses

from modules import job_queue
from modules.distributed import front


WORKER_KINDS = ("txt2img", "img2img")


class RayExecutor:
    """Installed before the workers have started: generations queued meanwhile wait for them."""

    def __init__(self):
        self.local = job_queue.LocalExecutor()

    @property
    def pool(self):
        return front.started_pool()

    @property
    def slots(self):
        return max(1, front.pool.live_workers()) if front.pool is not None else 1

    def run(self, job):
        if job.kind not in WORKER_KINDS:
            return self.local.run(job)
        # The UI's jobs and the API's are two clients: each keeps its own order (job.source: "ui", "api").
        ticket = self.pool.submit(front.job_for(job.task_id, job.kind, job.request, client=job.source))
        return ticket.wait().value

    def progress(self, job):
        if job.kind not in WORKER_KINDS:
            return self.local.progress(job)
        if front.pool is None:
            return job_queue.TaskProgress(task_id=job.task_id, status="queued", queue_position=0)
        ticket, position = self.pool.ticket(job.task_id)
        if position is not None:  # waiting for a worker (one restarting, or busy with a job put back)
            return job_queue.TaskProgress(task_id=job.task_id, status="queued", queue_position=position)
        if ticket is None or ticket.progress is None:  # being handed over or finishing; no report yet
            return job_queue.TaskProgress(task_id=job.task_id, status="running", job=job.kind)
        return dataclasses.replace(ticket.progress, preview=ticket.preview, preview_id=ticket.preview_id or 0)

    def interrupt(self, job):
        self._signal(job, "interrupt")

    def skip(self, job):
        self._signal(job, "skip")

    def stop_generating(self, job):
        self._signal(job, "stop_generating")

    def _signal(self, job, what):
        if job.kind in WORKER_KINDS:
            getattr(self.pool, what)(job.task_id)
        else:
            getattr(self.local, what)(job)


def workers_changed():
    """After workers were started or added: the queue starts as many jobs at once as there are workers now."""
    job_queue.queue.set_executor(job_queue.queue.executor)
