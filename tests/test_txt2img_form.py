"""The txt2img tab's form as the page sends it: ticking Hires. fix and leaving everything else as it is draws
(the hidden hires prompt boxes must send "", not the None a Gradio 6 Textbox built without a value sends)."""
import pytest


@pytest.fixture(scope="module")
def txt2img_form():
    from modules import scripts
    from webui import ui
    scripts.load_scripts()  # the repository's own scripts, not what an earlier test left loaded
    return ui.create_ui().ui_context.tabs["txt2img"]["form"]


def test_hires_fix_with_the_form_defaults_draws_at_the_upscaled_size(txt2img_form, tiny_model):
    from modules import txt2img
    request = {name: component.value for name, component in txt2img_form.items()}
    request.update(enable_hr=True, hr_scale=1.5, steps=2, hr_second_pass_steps=1, width=64, height=64, seed=1,
                   sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True, script_args=[0])
    processed = txt2img.txt2img(request)
    assert processed.images[0].size == (96, 96)


@pytest.mark.parametrize("field, name", [("sampler_name", "Nope"), ("scheduler", "Nope"), ("hr_upscaler", "4x-UltraSharp"),
                                         ("hr_sampler_name", "Nope"), ("hr_scheduler", "Nope")])
def test_a_pasted_name_this_install_lacks_reaches_generate_and_is_refused_by_name(txt2img_form, field, name):
    # (an A1111 infotext naming an upscaler not installed here made every Generate fail with a bare "Error")
    from modules import processing_request
    assert txt2img_form[field].preprocess(name) == name
    request = {key: component.value for key, component in txt2img_form.items()}
    request.update(enable_hr=True, **{field: name})
    with pytest.raises(processing_request.RequestError, match=name) as refused:
        processing_request.normalize("txt2img", request)
    assert refused.value.field == field


def test_the_chosen_refiner_still_reaches_generate_after_its_title_changed():
    # (a refiner chosen as "xl-refiner.safetensors" is listed as "xl-refiner.safetensors [hash]" once hashed; after 🔄
    # the old title was outside the choices and Gradio refused every Generate with a bare "Error")
    import gradio as gr
    from modules import scripts
    from webui import script_runner_ui
    scripts.load_scripts()
    runner = scripts.scripts_txt2img
    with gr.Blocks():
        script_runner_ui.create_script_ui(runner, is_img2img=False)
    refiner = next(s for s in runner.alwayson_scripts if s.title() == "Refiner")
    checkpoint = runner.inputs[refiner.args_from + 1]
    assert checkpoint.preprocess("xl-refiner.safetensors") == "xl-refiner.safetensors"
