"""Routing of waiting jobs to free Ray workers (pure logic: no Ray needed)."""
from modules.distributed import routing
from modules.distributed.routing import FreeWorker, WaitingJob


def names(assignments):
    return [(job.task_id, worker.name) for job, worker in assignments]


def test_a_job_goes_to_the_free_worker_that_has_its_checkpoint():
    workers = [FreeWorker("w1", "a.safetensors", idle_since=1), FreeWorker("w2", "b.safetensors", idle_since=2)]
    assert names(routing.assign([WaitingJob("j1", "c1", "b.safetensors")], workers)) == [("j1", "w2")]


def test_with_no_worker_holding_it_the_worker_whose_model_nobody_waits_for_loads_it():
    workers = [FreeWorker("w1", "a.safetensors", idle_since=1), FreeWorker("w2", "b.safetensors", idle_since=2)]
    waiting = [WaitingJob("j1", "c1", "new.safetensors"), WaitingJob("j2", "c1", "a.safetensors")]
    # w1 is idle longer, but j2 (queued behind j1) wants w1's model: w2 loads the new one.
    assert names(routing.assign(waiting, workers)) == [("j1", "w2"), ("j2", "w1")]


def test_equal_workers_take_turns_by_idle_time():
    workers = [FreeWorker("w1", "a", idle_since=5), FreeWorker("w2", "a", idle_since=3)]
    assert names(routing.assign([WaitingJob("j1", "c1", "a")], workers)) == [("j1", "w2")]


def test_a_clients_jobs_start_in_queue_order_even_when_a_later_one_matches_a_worker():
    workers = [FreeWorker("w1", "b")]
    waiting = [WaitingJob("j1", "c1", "a"), WaitingJob("j2", "c1", "b")]
    # j2 of the same client may not overtake j1: j1 goes first and w1 loads "a".
    assert names(routing.assign(waiting, workers)) == [("j1", "w1")]


def test_another_clients_matching_job_may_go_first_but_not_forever():
    waiting = [WaitingJob("old", "c1", "a")] + [WaitingJob(f"b{i}", f"c{i + 2}", "b") for i in range(10)]
    started = []
    for _ in range(routing.MAX_PASSED_OVER + 1):
        started += names(routing.assign([j for j in waiting if j.task_id not in dict(started)], [FreeWorker("w1", "b")]))
    assert [task for task, _ in started[:routing.MAX_PASSED_OVER]] == [f"b{i}" for i in range(routing.MAX_PASSED_OVER)]
    assert started[routing.MAX_PASSED_OVER] == ("old", "w1")


def test_a_job_whose_worker_died_avoids_it_while_another_can_take_it():
    job = WaitingJob("j1", "c1", "a", avoid={"w1"})
    assert names(routing.assign([job], [FreeWorker("w1", "a")], ["w1", "w2"])) == []
    assert names(routing.assign([job], [FreeWorker("w1", "a"), FreeWorker("w2", "b")], ["w1", "w2"])) == [("j1", "w2")]
    # the only worker left (restarted) may run it again
    assert names(routing.assign([job], [FreeWorker("w1", "a")], ["w1"])) == [("j1", "w1")]


def test_every_free_worker_gets_a_job_and_a_busy_queue_keeps_waiting():
    waiting = [WaitingJob(f"j{i}", f"c{i % 3}", "a") for i in range(6)]
    workers = [FreeWorker(f"w{i}", "a", idle_since=i) for i in range(4)]
    assert names(routing.assign(waiting, workers)) == [("j0", "w0"), ("j1", "w1"), ("j2", "w2"), ("j3", "w3")]
