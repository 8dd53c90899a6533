"""Starting or joining the Ray cluster, and how many workers of what kind to start on it."""
import os
import sys
import threading

from modules import paths_internal

MB = 1024 * 1024
# What a worker process needs from the front's environment before the engine reads its flags and folders.
FORWARDED_ENV_PREFIXES = ("SD_WEBUI_", "HF_", "TRANSFORMERS_", "GRADIO_", "COMMANDLINE_ARGS", "IGNORE_CMD_ARGS_ERRORS")


def requested(cmd_opts):
    """True when the flags ask for Ray workers (--workers ray or --ray-address)."""
    return cmd_opts.workers == "ray" or bool(cmd_opts.ray_address)


def import_ray():
    try:
        import ray
    except ImportError as e:
        raise RuntimeError('--workers ray / --ray-address need Ray, which is not installed: pip install ".[ray]"') from e
    return ray


def connect(cmd_opts):
    """Join --ray-address, or start a local cluster with a bounded object store; returns the `ray` module.

    A local cluster is started from the main thread only: Ray ties its processes (GCS, raylet) to the life of the
    thread that starts them (PR_SET_PDEATHSIG), so a start-up thread that ends would take the cluster down with it.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    if not cmd_opts.ray_address and threading.current_thread() is not threading.main_thread():
        raise RuntimeError(f"the local Ray cluster must be started from the main thread, not from thread "
                           f"{threading.current_thread().name!r}: its processes die when that thread ends")
    # Workers import the engine from this checkout (on other machines: the same path, same install).
    runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(
        [paths_internal.script_path] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))}}
    common = {"runtime_env": runtime_env, "log_to_driver": True, "namespace": "sd-webui"}
    if cmd_opts.ray_address:
        ray.init(address=cmd_opts.ray_address, **common)
    else:
        cpus = max(os.cpu_count() or 1, cmd_opts.ray_workers or 1)
        ray.init(num_cpus=cpus, object_store_memory=cmd_opts.ray_object_store_mb * MB, include_dashboard=False,
                 **common)
    return ray


def worker_plan(ray, cmd_opts):
    """[{num_cpus, num_gpus, threads}, ...]: --ray-workers N CPU workers, else one per GPU, else one CPU worker."""
    resources = ray.cluster_resources()
    cpus = int(resources.get("CPU", 1))
    gpus = int(resources.get("GPU", 0))
    if cmd_opts.ray_workers:
        count = cmd_opts.ray_workers
        if count < 1:
            raise ValueError(f"--ray-workers must be 1 or more, got {count}")
        threads = max(1, cpus // count)
        return [{"num_cpus": 1, "num_gpus": 0, "threads": threads} for _ in range(count)]
    if gpus:
        return [{"num_cpus": 1, "num_gpus": 1, "threads": None} for _ in range(gpus)]
    return [{"num_cpus": 1, "num_gpus": 0, "threads": cpus}]


def worker_environment():
    """The front's command line and the environment variables a worker needs to start the same engine."""
    argv = sys.argv[1:]
    environ = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
    return argv, environ
