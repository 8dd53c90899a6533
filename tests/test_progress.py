"""Progress for the whole job, Interrupt keeps what was finished, Skip moves to the next batch."""
import pytest

from modules import processing, script_callbacks, shared


def make_p(model, **kwargs):
    params = dict(sd_model=model, prompt="a red circle", steps=4, width=64, height=64, seed=3, sampler_name="Euler",
                  n_iter=3, do_not_save_samples=True, do_not_save_grid=True)
    params.update(kwargs)
    return processing.StableDiffusionProcessingTxt2Img(**params)


@pytest.fixture
def after_step():
    """Register a callback run after every denoiser step; removed after the test."""
    registered = []

    def register(fn):
        script_callbacks.on_cfg_after_cfg(fn)
        registered.append(fn)

    yield register
    for fn in registered:
        script_callbacks.remove_callbacks_for_function(fn)


def test_progress_counts_every_step_of_every_batch(tiny_model, after_step):
    seen = []
    after_step(lambda params: seen.append((shared.state.completed_steps, shared.state.total_steps)))
    shared.state.begin(job="test")
    res = processing.process_images(make_p(tiny_model, enable_hr=True, hr_scale=1.5, hr_second_pass_steps=2, denoising_strength=0.5))
    shared.state.end()
    assert len(res.images) == 3
    totals = {total for _, total in seen}
    assert totals == {3 * (4 + 2)}
    assert shared.state.completed_steps == 18


def test_interrupt_stops_within_a_step_and_keeps_the_finished_work(tiny_model, after_step):
    calls = []

    def interrupt_in_second_batch(params):
        calls.append(shared.state.job_no)
        if calls.count(1) == 2:  # the second step of the second batch
            shared.state.interrupt()
    after_step(interrupt_in_second_batch)
    shared.state.begin(job="test")
    res = processing.process_images(make_p(tiny_model))
    shared.state.end()
    assert [x for x in calls if x == 1] == [1, 1]  # the second batch ran two steps, then stopped
    assert 2 not in calls                          # the third batch never started
    assert len(res.images) == 2                    # the finished image and the interrupted one are kept


def test_skip_abandons_the_current_batch_and_goes_on(tiny_model, after_step):
    calls = []

    def skip_first_batch(params):
        calls.append(shared.state.job_no)
        if calls == [0]:  # the first step of the first batch
            shared.state.skip()
    after_step(skip_first_batch)
    shared.state.begin(job="test")
    res = processing.process_images(make_p(tiny_model))
    shared.state.end()
    assert calls.count(0) == 1 and calls.count(1) == 4 and calls.count(2) == 4
    assert len(res.images) == 3
