"""Pasting an infotext into txt2img restores sampler, schedule, seed, size and hires settings (the ↙️ button)."""
import pytest

INFOTEXT = (
    "a red circle, (masterpiece:1.2)\n"
    "Negative prompt: blurry\n"
    "Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234, Size: 512x768, "
    "Model hash: 0123456789, Model: demo, Denoising strength: 0.45, Hires upscale: 1.5, Hires steps: 12, "
    "Hires upscaler: Latent (bicubic), Variation seed: 99, Variation seed strength: 0.3, Version: v1.10.1"
)


@pytest.fixture(scope="module")
def txt2img_tab():
    from webui import ui
    demo = ui.create_ui()
    return demo.ui_context.tabs["txt2img"]


def values_by_key(tab, text):
    from webui import infotext_apply
    targets = infotext_apply.paste_targets(tab["form"], tab["seed"], tab["hires"])
    values = infotext_apply.apply_infotext(text, targets)
    return {key: value for (key, _), value in zip(targets, values)}


def test_paste_restores_the_generation_settings(txt2img_tab):
    v = values_by_key(txt2img_tab, INFOTEXT)
    assert v["Prompt"] == "a red circle, (masterpiece:1.2)" and v["Negative prompt"] == "blurry"
    assert v["Steps"] == 25 and v["Sampler"] == "DPM++ 2M" and v["Schedule type"] == "Karras"
    assert v["CFG scale"] == 6.5 and v["Seed"] == 1234 and v["Size-1"] == 512 and v["Size-2"] == 768
    assert v["__enable_hr"] is True and v["Denoising strength"] == 0.45 and v["Hires upscale"] == 1.5
    assert v["Hires steps"] == 12 and v["Hires upscaler"] == "Latent (bicubic)"
    assert v["__seed_extras"] is True and v["Variation seed"] == 99 and v["Variation seed strength"] == 0.3


def test_legacy_combined_sampler_name_is_split(txt2img_tab):
    v = values_by_key(txt2img_tab, "a cat\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 5, Size: 512x512")
    assert v["Sampler"] == "DPM++ 2M" and v["Schedule type"] == "Karras"
    assert v["__enable_hr"] is False


def test_plain_prompt_without_parameters_only_sets_the_prompt(txt2img_tab):
    import gradio as gr
    v = values_by_key(txt2img_tab, "just a prompt")
    assert v["Prompt"] == "just a prompt"
    assert isinstance(v["Steps"], dict) or v["Steps"] == gr.update()


def test_paste_fills_the_scripts_fields_such_as_the_refiner(txt2img_tab, tmp_path):
    """The scripts' own infotext fields are pasted too (A1111): the Refiner accordion opens with its checkpoint and
    fraction; an infotext without a refiner closes it."""
    import gradio as gr
    from modules import scripts, sd_models
    from tests import checkpoint_factory as factory
    from webui import infotext_apply, script_runner_ui
    info = sd_models.CheckpointInfo(factory.make_tiny_sd1_checkpoint(str(tmp_path / "my-refiner.safetensors")))
    info.register()
    scripts.load_scripts()
    runner = scripts.scripts_txt2img
    with gr.Blocks():
        script_runner_ui.create_script_ui(runner, is_img2img=False)
    refiner = next(s for s in runner.alwayson_scripts if s.title() == "Refiner")
    enable, checkpoint, switch_at = refiner.args_from, refiner.args_from + 1, refiner.args_from + 2
    components = infotext_apply.script_components(runner)
    targets = infotext_apply.paste_targets(txt2img_tab["form"], txt2img_tab["seed"], txt2img_tab["hires"])

    def pasted(text):
        values = infotext_apply.apply_infotext(text, targets, runner)[len(targets):]
        return {components.index(runner.inputs[i]): values[components.index(runner.inputs[i])] for i in (enable, checkpoint, switch_at)}

    v = list(pasted(INFOTEXT + ", Refiner: my-refiner, Refiner switch at: 0.6").values())
    assert v[0] is True and v[1]["value"] == info.title and info.title in v[1]["choices"] and v[2] == 0.6
    # the slider takes the pasted value at Generate (the text "0.6" made Gradio 6 refuse the whole Generate)
    assert runner.inputs[switch_at].preprocess(v[2]) == 0.6
    assert list(pasted(INFOTEXT).values())[0] is False


def test_the_hires_checkpoint_is_a_field_that_pasting_fills(txt2img_tab):
    # A1111's "Hires checkpoint" (shown with "Hires fix: show hires checkpoint and sampler selection") goes to the job
    checkpoint = txt2img_tab["hires"].checkpoint
    assert txt2img_tab["form"]["hr_checkpoint_name"] is checkpoint
    assert checkpoint.value == "Use same checkpoint" and "Use same checkpoint" in [c[1] for c in checkpoint.choices]
    v = values_by_key(txt2img_tab, INFOTEXT + ", Hires checkpoint: other [0123abcd]")
    assert v["Hires checkpoint"] == "other [0123abcd]"
    assert values_by_key(txt2img_tab, INFOTEXT)["Hires checkpoint"] == "Use same checkpoint"


def test_a_number_no_field_can_hold_leaves_that_field_alone_and_pastes_the_rest(txt2img_tab):
    # (a seed of 1e99 reached the page as an integer it cannot serialise: nothing at all was pasted)
    import gradio as gr
    import orjson
    v = values_by_key(txt2img_tab, "a cat\nSteps: 12, Sampler: Euler, CFG scale: inf, Seed: 1e99, Size: 64x64, Variation seed: nan")
    assert v["Seed"] == gr.update() and v["CFG scale"] == gr.update() and v["Variation seed"] == gr.update()
    assert v["Prompt"] == "a cat" and v["Steps"] == 12 and v["Size-1"] == 64
    orjson.dumps(list(v.values()))  # what the page is sent


def test_a_value_beyond_a_sliders_range_is_pasted_and_the_slider_takes_it(txt2img_tab):
    # (an image made through the API with 200 steps pasted 200 into a 1-150 slider; Gradio 6 then refused every
    # Generate with "Value 200 is greater than maximum value 150")
    v = values_by_key(txt2img_tab, "a cat\nSteps: 200, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64")
    assert v["Steps"]["value"] == 200 and v["Steps"]["maximum"] == 200 and v["Steps"]["minimum"] == 1
    steps = txt2img_tab["form"]["steps"]
    steps.maximum, before = v["Steps"]["maximum"], steps.maximum  # the page's slider after the update
    try:
        assert steps.preprocess(200) == 200
    finally:
        steps.maximum = before
