"""A worker: one process that holds an engine (checkpoint, VAE, networks, scripts) and runs the front's jobs.

`EngineWorker` is the body of a Ray actor (`pool` wraps it with `ray.remote`); nothing here imports Ray. The actor
is threaded, so `progress`, `interrupt` and `skip` are answered while `run` is busy. A job runs through the same
engine function a single process uses, with the front's settings, its own `shared.state` for progress, and its
saved images recorded for the front (captured_saves).
"""
import os
import socket
import sys
import threading
import time


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
        self.started = time.time()
        self.run_lock = threading.Lock()
        self.task_id = None
        self.jobs_done = 0
        # Interrupt/skip that arrived before their job started here (the front sent both at once).
        self.early_signals = {}

    def state(self):
        """What the front shows for this worker: host, pid, device, loaded checkpoint, running task, memory."""
        from modules.distributed import worker_engine
        return {
            "name": self.name, "host": socket.gethostname(), "pid": os.getpid(), "task_id": self.task_id,
            "jobs_done": self.jobs_done, **worker_engine.engine_state(),
        }

    def run(self, job):
        """Run one job to the end; returns a JobResult. An engine error is raised (the front fails that job)."""
        from modules import shared
        from modules.distributed import worker_engine
        with self.run_lock:
            shared.state.begin(job=job.kind)
            self.task_id = job.task_id
            for what in self.early_signals.pop(job.task_id, ()):
                getattr(shared.state, what)()
            try:
                result = worker_engine.run_job(job)
            finally:
                self.task_id = None
                shared.state.end()
            self.jobs_done += 1
            result.worker = self.name
            return result

    def progress(self, task_id, preview_key=None):
        """The running job's progress (None when `task_id` is not the one running); a preview when it changed."""
        if task_id != self.task_id:
            return None
        from modules.distributed import worker_engine
        return worker_engine.progress(preview_key)

    def interrupt(self, task_id):
        return self._signal(task_id, "interrupt")

    def skip(self, task_id):
        return self._signal(task_id, "skip")

    def _signal(self, task_id, what):
        from modules import shared
        if task_id != self.task_id:
            self.early_signals.setdefault(task_id, []).append(what)
            return False
        getattr(shared.state, what)()
        return True
