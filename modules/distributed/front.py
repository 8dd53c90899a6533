"""The front's side: the worker pool of this process, and jobs built from the front's settings and scripts."""
import threading

from modules import shared
from modules.distributed import cluster, jobs, script_layout

pool = None                 # the WorkerPool, once started
start_error = None          # why it could not start
_start_lock = threading.Lock()
_start_done = threading.Event()


def start(cmd_opts=None, plan=None):
    """Connect to Ray and start the workers the flags ask for (or `plan`: cluster.worker_plan's form); returns the
    pool (once per process)."""
    global pool, start_error
    cmd_opts = cmd_opts or shared.cmd_opts
    with _start_lock:
        if pool is not None:
            return pool
        try:
            pool = _start(cmd_opts, plan)
        except Exception as e:
            start_error = e
            raise
        finally:
            _start_done.set()
        return pool


def _start(cmd_opts, plan):
    ray = cluster.connect(cmd_opts)
    from modules.distributed.pool import WorkerPool
    from modules.distributed.worker import EngineWorker
    argv, environ = cluster.worker_environment()
    new_pool = WorkerPool(ray, ray.remote(EngineWorker),
                          lambda name, threads: (name, argv, environ, threads, dict(shared.opts.data)))
    for worker in plan or cluster.worker_plan(ray, cmd_opts):
        new_pool.add_worker(**worker)
    return new_pool


def started_pool():
    """The pool, once `start` has run (jobs queued meanwhile wait for it); an error if it could not start."""
    _start_done.wait()
    if pool is None:
        raise RuntimeError(f"the Ray workers could not start: {start_error}")
    return pool


def stop():
    global pool
    with _start_lock:
        if pool is not None:
            pool.close()
            pool = None
            _start_done.clear()


def wanted_checkpoint(request):
    """Name of the checkpoint a job needs: its override_settings' choice, else the front's selected one."""
    from modules import sd_models
    override = (request.get("override_settings") or {}).get("sd_model_checkpoint")
    info = sd_models.get_closet_checkpoint_match(override) if override else None
    if info is None:
        info = sd_models.select_checkpoint()
    return info.name if info is not None else None


def job_for(task_id, kind, request, client=""):
    """A Job for the queue's `kind` and request, with this front's settings and script layout."""
    return jobs.Job(task_id=task_id, kind=kind, request=request, client=client,
                    checkpoint=wanted_checkpoint(request), settings=dict(shared.opts.data),
                    script_layout=script_layout.layout_of_runners())
