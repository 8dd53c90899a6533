"""The job queue's executor for Ray workers: `job_queue.queue.set_executor(RayExecutor(pool))`.

The queue keeps its FIFO order and hands over as many jobs as there are live workers; each goes to the pool,
which picks its worker, and the queue's thread waits for it and saves its images (Ticket.wait). Progress, previews,
interrupt, skip and stop reach the worker that runs the job.
"""
import dataclasses

from modules import job_queue
from modules.distributed import front


class RayExecutor:
    """Installed before the workers have started: jobs queued meanwhile wait for them, none runs in the front."""

    @property
    def pool(self):
        return front.started_pool()

    @property
    def slots(self):
        return max(1, front.pool.live_workers()) if front.pool is not None else 1

    def run(self, job):
        # The UI's jobs and the API's are two clients: each keeps its own order (job.source: "ui", "api").
        ticket = self.pool.submit(front.job_for(job.task_id, job.kind, job.request, client=job.source))
        return ticket.wait().value

    def progress(self, job):
        if front.pool is None:
            return job_queue.TaskProgress(task_id=job.task_id, status="queued", queue_position=0)
        ticket, position = self.pool.ticket(job.task_id)
        if ticket is None or position is not None:
            return job_queue.TaskProgress(task_id=job.task_id, status="queued", queue_position=position or 0)
        if ticket.progress is None:  # sent to a worker, no report yet
            return job_queue.TaskProgress(task_id=job.task_id, status="running", job=job.kind)
        return dataclasses.replace(ticket.progress, preview=ticket.preview, preview_id=ticket.preview_id or 0)

    def interrupt(self, job):
        self.pool.interrupt(job.task_id)

    def skip(self, job):
        self.pool.skip(job.task_id)

    def stop_generating(self, job):
        self.pool.stop_generating(job.task_id)
