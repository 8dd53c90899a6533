"""Many workers behind one front, on Ray (--workers ray, --ray-address).

The front (web UI and API) keeps the job queue and saves outputs; each worker is a Ray actor that holds an engine
(checkpoint, VAE, networks, scripts) and runs jobs exactly as the single process does. Nothing here imports Ray
at import time: only `cluster.import_ray()` does, once a flag asked for workers.
"""
