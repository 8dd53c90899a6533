"""The progress and control state of the running job (A1111: shared.state)."""
import datetime
import threading
import time


class State:
    skipped = False
    interrupted = False
    stopping_generation = False
    job = ""
    job_no = 0
    job_count = 0
    processing_has_refined_job_count = False
    job_timestamp = "0"
    sampling_step = 0
    sampling_steps = 0
    current_latent = None
    current_image = None
    current_image_sampling_step = 0
    id_live_preview = 0
    textinfo = None
    current_task = None    # task id of the job being run (modules.job_queue)
    time_start = None
    server_start = None
    _server_command_signal = threading.Event()
    _server_command = None

    def __init__(self):
        self.server_start = time.time()
        self.lock = threading.Lock()
        # Total denoiser steps of the whole job (all batches, hires pass included), for one ETA.
        self.total_steps = 0
        self.completed_steps = 0

    @property
    def need_restart(self) -> bool:
        return self.server_command == "restart"

    @need_restart.setter
    def need_restart(self, value: bool) -> None:
        if value:
            self.server_command = "restart"

    @property
    def server_command(self):
        return self._server_command

    @server_command.setter
    def server_command(self, value) -> None:
        self._server_command = value
        self._server_command_signal.set()

    def wait_for_server_command(self, timeout=None):
        if self._server_command_signal.wait(timeout):
            self._server_command_signal.clear()
            req = self._server_command
            self._server_command = None
            return req
        return None

    def request_restart(self) -> None:
        self.interrupt()
        self.server_command = "restart"

    def skip(self):
        self.skipped = True

    def interrupt(self):
        self.interrupted = True

    def stop_generating(self):
        self.stopping_generation = True

    def nextjob(self):
        self.job_no += 1
        self.sampling_step = 0
        self.current_image_sampling_step = 0

    def dict(self):
        return {
            "skipped": self.skipped, "interrupted": self.interrupted, "stopping_generation": self.stopping_generation,
            "job": self.job, "job_count": self.job_count, "job_timestamp": self.job_timestamp, "job_no": self.job_no,
            "sampling_step": self.sampling_step, "sampling_steps": self.sampling_steps,
        }

    def begin(self, job: str = "(unknown)"):
        self.sampling_step = 0
        self.time_start = time.time()
        self.job_count = -1
        self.processing_has_refined_job_count = False
        self.job_no = 0
        self.job_timestamp = datetime.datetime.now().strftime("%Y%m%d%H%M%S")
        self.current_latent = None
        self.current_image = None
        self.current_image_sampling_step = 0
        self.id_live_preview = 0
        self.skipped = False
        self.interrupted = False
        self.stopping_generation = False
        self.textinfo = None
        self.job = job
        self.total_steps = 0
        self.completed_steps = 0

    def end(self):
        self.job = ""
        self.job_count = 0

    def get_job_timestamp(self):
        return datetime.datetime.now().strftime("%Y%m%d%H%M%S")

    def set_current_image(self):
        """Live previews are produced by the sampler callback; kept for API compatibility."""
        pass

    def assign_current_image(self, image):
        self.current_image = image
        self.id_live_preview += 1

    def progress(self):
        """Fraction of the whole job done and the seconds left, for the progress bar."""
        if self.total_steps > 0:
            fraction = min(self.completed_steps / self.total_steps, 1.0)
        elif self.job_count > 0:
            fraction = self.job_no / self.job_count
            if self.sampling_steps > 0:
                fraction += 1 / self.job_count * self.sampling_step / self.sampling_steps
        else:
            fraction = 0.0
        elapsed = time.time() - (self.time_start or time.time())
        eta = (elapsed / fraction - elapsed) if fraction > 0 else None
        return min(fraction, 1.0), eta
