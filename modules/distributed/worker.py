"""A worker: one process that holds an engine (checkpoint, VAE, networks, scripts) and runs the front's jobs.

`EngineWorker` is the body of a Ray actor (`pool` wraps it with `ray.remote`); nothing here imports Ray. The actor
is threaded, so `progress`, `interrupt` and `skip` are answered while `run` is busy. A job runs through
`job_queue.run_job`, the function the single-process queue runs, with the front's settings, this process's
`shared.state` for progress, and its saved images recorded for the front (captured_saves).
"""
import os
import socket
import sys
import threading


class EngineWorker:
    def __init__(self, name, argv, environ, threads=None, settings=None):
        # The engine reads its flags and folders when modules.shared is first imported: set them up first.
        os.environ.update(environ)
        sys.argv = ["webui.py", *argv]
        if threads:
            import torch
            torch.set_num_threads(threads)
        from modules.distributed import worker_engine
        worker_engine.start(settings)
        self.name = name
        self.run_lock = threading.Lock()
        self.signal_lock = threading.Lock()
        self.task_id = None
        self.jobs_done = 0
        # Interrupt/skip/stop for a job that has not begun here yet (the front sends them as soon as it asks).
        self.signals = {}
        from modules import job_queue
        self.previews = job_queue.LivePreviews()

    def state(self):
        """What the front shows for this worker: host, pid, device, loaded checkpoint, running task, memory."""
        from modules.distributed import worker_engine
        return {"host": socket.gethostname(), "pid": os.getpid(), "task_id": self.task_id,
                "jobs_done": self.jobs_done, **worker_engine.engine_state()}

    def run(self, job):
        """Run one job to the end; returns a jobs.JobResult. An engine error is raised (the front fails that job)."""
        from modules.distributed import worker_engine
        with self.run_lock:
            self.task_id = job.task_id
            try:
                result = worker_engine.run_job(job)
            finally:
                self.task_id = None
                with self.signal_lock:
                    self.signals.pop(job.task_id, None)
            self.jobs_done += 1
            result.worker = self.name
            return result

    def progress(self, task_id, known_preview_id=None):
        """The job's TaskProgress (None unless it is running here); its preview only when it changed."""
        from modules import job_queue, shared
        if task_id != self.task_id or shared.state.current_task != task_id:
            return None
        self._deliver_signals(task_id)  # any that came before the job began (the front polls twice a second)
        progress = job_queue.progress_from_state(task_id, self.previews)
        if progress.preview_id == known_preview_id:
            progress.preview = None  # the front has it already
        return progress

    def interrupt(self, task_id):
        self._signal(task_id, "interrupt")

    def skip(self, task_id):
        self._signal(task_id, "skip")

    def stop_generating(self, task_id):
        self._signal(task_id, "stop_generating")

    def _signal(self, task_id, what):
        with self.signal_lock:
            self.signals.setdefault(task_id, []).append(what)
        self._deliver_signals(task_id)

    def _deliver_signals(self, task_id):
        """Act on the signals for `task_id` once its job has begun in this process (begin() clears the flags)."""
        from modules import shared
        with self.signal_lock:
            if shared.state.current_task != task_id:
                return
            for what in self.signals.pop(task_id, ()):
                getattr(shared.state, what)()
