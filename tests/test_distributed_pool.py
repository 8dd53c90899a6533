"""The worker pool's dispatching and fault handling, against an in-process stand-in for Ray's actor API (fast; the
real cluster is tested in test_ray_workers.py, marked `ray`)."""
import pickle
import threading
import time
from types import SimpleNamespace

import pytest

from modules.distributed import jobs, pool as pool_module


class RayActorError(Exception):
    pass


class ActorUnavailableError(RayActorError):
    pass


class RayTaskError(Exception):
    pass


class Ref:
    def __init__(self):
        self.done = threading.Event()
        self.value = self.error = None

    def resolve(self, value=None, error=None):
        self.value, self.error = value, error
        self.done.set()


class Method:
    def __init__(self, actor, name):
        self.actor, self.name = actor, name

    def remote(self, *args):
        return self.actor.call(self.name, args)


class FakeActor:
    """Answers state() at once, keeps run() calls open until the test finishes or kills them."""

    def __init__(self, name, checkpoint="a"):
        self.name, self.checkpoint = name, checkpoint
        self.alive, self.killed = True, False
        self.runs = []          # (job, ref) of every run() call
        self.lock = threading.Lock()

    def call(self, method, args):
        ref = Ref()
        with self.lock:
            if not self.alive:
                ref.resolve(error=ActorUnavailableError("restarting"))
            elif method == "state":
                ref.resolve({"pid": id(self), "checkpoint": self.checkpoint, "jobs_done": 0})
            elif method == "run":
                self.runs.append((args[0], ref))
            elif method == "progress":
                ref.resolve(None)
            else:
                ref.resolve(True)
        return ref

    def __getattr__(self, name):
        return Method(self, name)

    def finish(self, index=-1):
        job, ref = self.runs[index]
        self.checkpoint = job.checkpoint or self.checkpoint
        ref.resolve(jobs.JobResult(task_id=job.task_id, value=f"image of {job.task_id}", saved_images=[],
                                   checkpoint=self.checkpoint))

    def die(self):
        with self.lock:
            self.alive = False
            for _, ref in self.runs:
                if not ref.done.is_set():
                    ref.resolve(error=RayActorError("worker process died"))

    def restart(self):
        self.alive = True


class FakeRay:
    exceptions = SimpleNamespace(RayActorError=RayActorError, ActorUnavailableError=ActorUnavailableError,
                                 RayTaskError=RayTaskError)

    def __init__(self):
        self.actors = {}

    def wait(self, refs, num_returns=1, timeout=None):
        deadline = time.time() + (timeout or 0)
        while True:
            ready = [r for r in refs if r.done.is_set()]
            if len(ready) >= num_returns or time.time() >= deadline:
                return ready, [r for r in refs if not r.done.is_set()]
            time.sleep(0.005)

    def get(self, ref):
        if ref.error is not None:
            raise ref.error
        return ref.value

    def kill(self, actor, no_restart=False):
        actor.killed = True
        actor.die()


class FakeActorClass:
    def __init__(self, ray):
        self.ray = ray

    def options(self, **options):
        return SimpleNamespace(remote=lambda name, *args: self.ray.actors.setdefault(name, FakeActor(name)))


@pytest.fixture
def ray():
    return FakeRay()


@pytest.fixture
def pool(ray):
    the_pool = pool_module.WorkerPool(ray, FakeActorClass(ray), lambda name, threads: (name,), poll_interval=0.01)
    yield the_pool
    the_pool.close()


def wait_until(condition, timeout=10):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.01)


def job(task_id, client="c", checkpoint="a"):
    return jobs.Job(task_id=task_id, kind="txt2img", request={}, client=client, checkpoint=checkpoint)


def ready(pool, count):
    wait_until(lambda: sum(w["status"] == "ready" for w in pool.worker_states()) == count)


def test_a_job_whose_worker_dies_runs_once_more_on_another_worker_and_completes_once(pool, ray):
    pool.add_worker(), pool.add_worker()
    ready(pool, 2)
    ticket = pool.submit(job("j1"))
    wait_until(lambda: ticket.state == "running")
    first = ray.actors[ticket.worker]
    first.die()
    wait_until(lambda: ticket.state == "running" and ticket.worker != first.name)
    ray.actors[ticket.worker].finish()
    result = ticket.wait(5)
    assert result.value == "image of j1" and ticket.attempts == 2
    assert sum(len(a.runs) for a in ray.actors.values()) == 2  # started twice, finished once
    dead = next(w for w in pool.worker_states() if w["name"] == first.name)
    assert dead["status"] == "starting" and dead["deaths"] == 1
    first.restart()  # Ray brought the process back: it takes jobs again
    ready(pool, 2)


def test_a_job_that_loses_two_workers_fails_with_a_message_that_says_so(pool, ray):
    pool.add_worker(), pool.add_worker()
    ready(pool, 2)
    ticket = pool.submit(job("j1"))
    killed = []
    for _ in range(2):
        wait_until(lambda: ticket.state == "running" and ticket.worker not in killed)
        killed.append(ticket.worker)
        ray.actors[ticket.worker].die()
    with pytest.raises(pool_module.JobFailed, match="lost twice"):
        ticket.wait(5)


def test_a_job_goes_to_the_worker_that_has_its_checkpoint(pool, ray):
    pool.add_worker(), pool.add_worker()
    ready(pool, 2)
    ray.actors["worker-2"].checkpoint = "b"
    pool._ask_state(pool.workers["worker-2"])
    wait_until(lambda: {w["name"]: w["checkpoint"] for w in pool.worker_states()}["worker-2"] == "b")
    ticket = pool.submit(job("j1", checkpoint="b"))
    wait_until(lambda: ticket.state == "running")
    assert ticket.worker == "worker-2"


def test_a_removed_worker_finishes_its_job_and_gets_no_other(pool, ray):
    pool.add_worker(), pool.add_worker()
    ready(pool, 2)
    first = pool.submit(job("j1"))
    wait_until(lambda: first.state == "running")
    busy = first.worker
    pool.remove_worker(busy)
    later = [pool.submit(job(f"j{i}", client=f"c{i}")) for i in range(2, 5)]
    other = next(name for name in ("worker-1", "worker-2") if name != busy)
    ray.actors[busy].finish()
    assert first.wait(5).value == "image of j1"
    assert ray.actors[busy].killed and busy not in {w["name"] for w in pool.worker_states()}
    for ticket in later:
        wait_until(lambda: ticket.state == "running")
        assert ticket.worker == other
        ray.actors[other].finish()
        ticket.wait(5)


def test_a_clients_jobs_start_in_order_and_interrupting_a_waiting_job_cancels_it(pool, ray):
    pool.add_worker()
    ready(pool, 1)
    tickets = [pool.submit(job(f"j{i}")) for i in range(3)]
    pool.interrupt("j1")
    with pytest.raises(pool_module.JobFailed, match="interrupted before it started"):
        tickets[1].wait(5)
    actor = ray.actors["worker-1"]
    for expected in ("j0", "j2"):
        wait_until(lambda: len(actor.runs) and actor.runs[-1][0].task_id == expected)
        actor.finish()
    assert [t.wait(5).value for t in (tickets[0], tickets[2])] == ["image of j0", "image of j2"]


def test_an_engine_error_fails_the_job_with_the_engines_exception(pool, ray):
    pool.add_worker()
    ready(pool, 1)
    ticket = pool.submit(job("j1"))
    wait_until(lambda: ray.actors["worker-1"].runs)
    error = RayTaskError("wrapped")
    error.cause = jobs.JobError(ValueError("Sampler not found: 'x'"), saved_images=[])
    ray.actors["worker-1"].runs[0][1].resolve(error=error)
    with pytest.raises(ValueError, match="Sampler not found"):
        ticket.wait(5)


def test_an_answer_that_cannot_be_read_fails_that_job_and_the_pool_goes_on(pool, ray):
    pool.add_worker()
    ready(pool, 1)
    first, second = pool.submit(job("j1")), pool.submit(job("j2"))
    actor = ray.actors["worker-1"]
    wait_until(lambda: actor.runs)
    actor.runs[0][1].resolve(error=OSError("failed to deserialize the answer"))  # what ray.get raised
    with pytest.raises(OSError, match="deserialize"):
        first.wait(5)
    wait_until(lambda: len(actor.runs) == 2)
    actor.finish()
    assert second.wait(5).value == "image of j2"


def test_an_engine_error_crosses_to_the_front_with_its_class_and_fields():
    from modules.processing_request import RequestError
    sent = jobs.JobError(RequestError("sampler_name", "Sampler not found: 'x'", 400), ["saved image"])
    error = pickle.loads(pickle.dumps(sent))  # RequestError(message) alone could not be rebuilt by pickle
    assert isinstance(error.cause, RequestError) and str(error.cause) == "Sampler not found: 'x'"
    assert (error.cause.field, error.cause.status_code) == ("sampler_name", 400)
    assert error.saved_images == ["saved image"]

    unpicklable = ValueError("bad value")
    unpicklable.lock = threading.Lock()
    error = pickle.loads(pickle.dumps(jobs.JobError(unpicklable, [])))
    assert type(error.cause) is RuntimeError and str(error.cause) == "ValueError: bad value"
