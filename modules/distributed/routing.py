"""Which waiting job goes to which free worker (pure logic, no Ray).

- A client's jobs start in the order it queued them: only the first waiting job of each client can start.
- A job goes to a free worker that already has its checkpoint loaded; otherwise to the least-loaded free worker,
  which loads it. Among equals, a worker whose checkpoint no waiting job needs is taken first (its model is the one
  nobody will miss), then the one idle longest, so work spreads over all workers.
- Checkpoint matches may start a younger job before an older one of another client, but never more than
  `MAX_PASSED_OVER` times: then the older job takes the next free worker, whatever it has loaded.
- A job re-queued because its worker died avoids that worker while any other can take it.
"""
from dataclasses import dataclass, field

MAX_PASSED_OVER = 4


@dataclass
class WaitingJob:
    task_id: str
    client: str = ""
    checkpoint: str = None
    avoid: set = field(default_factory=set)   # workers it died on
    passed_over: int = 0                      # younger jobs started before it


@dataclass
class FreeWorker:
    name: str
    checkpoint: str = None     # loaded, or about to be loaded by the job just sent
    idle_since: float = 0.0
    load: int = 0              # jobs running or sent to it (a free worker has 0)


def _heads(waiting):
    """The first waiting job of each client, in queue order."""
    seen, heads = set(), []
    for job in waiting:
        if job.client not in seen:
            seen.add(job.client)
            heads.append(job)
    return heads


def _allowed(job, worker, workers):
    return worker.name not in job.avoid or all(w.name in job.avoid for w in workers)


def _has_checkpoint(worker, job):
    return job.checkpoint is None or worker.checkpoint == job.checkpoint


def assign(waiting, free_workers, all_worker_names=None):
    """[(job, worker), ...] to start now. `waiting` is in queue order; the jobs' passed_over counts are updated."""
    waiting = list(waiting)
    free = list(free_workers)
    every_worker = [FreeWorker(name) for name in (all_worker_names or [w.name for w in free])]
    assignments = []
    while free and waiting:
        heads = _heads(waiting)
        job, worker = None, None
        starved = [j for j in heads if j.passed_over >= MAX_PASSED_OVER]
        for candidate in starved or heads:
            matches = [w for w in free if _allowed(candidate, w, every_worker) and _has_checkpoint(w, candidate)]
            if matches:
                job, worker = candidate, min(matches, key=lambda w: (w.load, w.idle_since))
                break
            if starved:
                break
        if job is None:
            wanted = {j.checkpoint for j in waiting}
            for candidate in heads:
                allowed = [w for w in free if _allowed(candidate, w, every_worker)]
                if allowed:
                    job = candidate
                    worker = min(allowed, key=lambda w: (w.load, w.checkpoint in wanted, w.idle_since))
                    break
        if job is None:
            break
        for older in heads[:heads.index(job)]:  # older jobs that could have started
            older.passed_over += 1
        waiting.remove(job)
        free.remove(worker)
        worker.checkpoint = job.checkpoint or worker.checkpoint
        assignments.append((job, worker))
    return assignments
