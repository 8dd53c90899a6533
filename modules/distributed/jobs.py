"""What travels between the front and a worker: a job (plain, picklable) and its result."""
import pickle
import time
from dataclasses import dataclass, field


@dataclass
class Job:
    task_id: str
    kind: str                      # an engine entry point: "txt2img", "img2img"
    request: dict                  # the entry point's arguments, as the single-process queue passes them
    client: str = ""               # jobs of one client start in the order they were queued
    checkpoint: str = None         # name of the checkpoint the job needs (routing prefers a worker that has it)
    settings: dict = None          # the front's settings (opts.data) at queue time
    script_layout: dict = None     # the front's script argument positions (script_layout.layout_of_runners)
    queued_at: float = field(default_factory=time.time)


@dataclass
class JobResult:
    task_id: str
    value: object                  # what the entry point returned (a Processed)
    saved_images: list             # captured_saves.SavedImage records, saved by the front
    checkpoint: str = None         # the checkpoint the worker had loaded when the job ended
    seconds: float = 0.0           # time the job took on the worker
    worker: str = None


class JobError(RuntimeError):
    """An engine error of a job, carrying the images it saved before failing (the front still saves them).

    It crosses to the front by value: the engine's exception is rebuilt there with its class, args and fields, even
    when its constructor takes other arguments than its args (RequestError does); one that cannot travel becomes a
    RuntimeError with the same text.
    """

    def __init__(self, cause, saved_images):
        super().__init__(cause, saved_images)
        self.cause = cause
        self.saved_images = saved_images

    def __str__(self):
        return f"{type(self.cause).__name__}: {self.cause}"

    def __reduce__(self):
        return _rebuild_job_error, (_portable(self.cause), self.saved_images)


def _portable(error):
    parts = (type(error), error.args, dict(vars(error)))
    try:
        pickle.loads(pickle.dumps(parts))
    except Exception:
        return RuntimeError, (f"{type(error).__name__}: {error}",), {}
    return parts


def _rebuild_job_error(cause, saved_images):
    cls, args, fields = cause
    error = cls.__new__(cls)
    error.args = args
    vars(error).update(fields)
    return JobError(error, saved_images)
