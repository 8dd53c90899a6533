"""Callbacks: every A1111 registration name exists, fires with its parameters, and a failing one never stops the rest."""
import pytest

from modules import errors, script_callbacks as sc
from tests.extension_helpers import Reports, install_loader, load_all, unload_all, write_extension


@pytest.fixture(autouse=True)
def clean_callbacks():
    saved = {k: list(v) for k, v in sc.callback_map.items()}
    sc.clear_callbacks()
    yield
    sc.clear_callbacks()
    for k, v in saved.items():
        sc.callback_map[k][:] = v


# (register function, fire function, arguments to fire with, what the callback receives)
CASES = [
    ("on_app_started", lambda: sc.app_started_callback("demo", "app"), ("demo", "app")),
    ("on_before_reload", lambda: sc.app_reload_callback(), ()),
    ("on_model_loaded", lambda: sc.model_loaded_callback("model"), ("model",)),
    ("on_ui_settings", lambda: sc.ui_settings_callback(), ()),
    ("on_script_unloaded", lambda: sc.script_unloaded_callback(), ()),
    ("on_before_ui", lambda: sc.before_ui_callback(), ()),
    ("on_infotext_pasted", lambda: sc.infotext_pasted_callback("text", {"a": 1}), ("text", {"a": 1})),
]


@pytest.mark.parametrize("register, fire, expected", CASES, ids=[c[0] for c in CASES])
def test_simple_callbacks_receive_their_arguments(register, fire, expected):
    got = []
    getattr(sc, register)(lambda *args: got.append(args))
    fire()
    assert got == [expected]


def test_param_object_callbacks_can_replace_fields():
    def double_x(params):
        params.x = params.x * 2

    sc.on_cfg_denoiser(double_x)
    sc.on_cfg_denoised(double_x)
    sc.on_cfg_after_cfg(double_x)
    sc.on_extra_noise(lambda params: setattr(params, "noise", "replaced"))
    sc.on_before_image_saved(lambda params: params.pnginfo.update(extra="yes"))
    sc.on_image_grid(lambda params: setattr(params, "cols", 7))

    p1 = sc.CFGDenoiserParams(3, "ic", 0.5, 1, 10, "c", "uc", denoiser="d")
    sc.cfg_denoiser_callback(p1)
    p2 = sc.CFGDenoisedParams(3, 1, 10, "inner")
    sc.cfg_denoised_callback(p2)
    p3 = sc.AfterCFGCallbackParams(3, 1, 10)
    sc.cfg_after_cfg_callback(p3)
    p4 = sc.ExtraNoiseParams("noise", "x", "xi")
    sc.extra_noise_callback(p4)
    p5 = sc.ImageSaveParams("img", None, "f.png", {"parameters": "x"})
    sc.before_image_saved_callback(p5)
    p6 = sc.ImageGridLoopParams([1, 2], 2, 1)
    sc.image_grid_callback(p6)

    assert (p1.x, p2.x, p3.x) == (6, 6, 6)
    assert p1.denoiser == "d" and p1.text_cond == "c" and p1.sigma == 0.5
    assert p4.noise == "replaced"
    assert p5.pnginfo == {"parameters": "x", "extra": "yes"}
    assert p6.cols == 7


def test_ui_tabs_collects_tabs_and_list_callbacks_collect_items():
    sc.on_ui_tabs(lambda: [("blocks", "My tab", "my_tab")])
    sc.on_ui_tabs(lambda: None)
    sc.on_list_optimizers(lambda res: res.append("opt"))
    sc.on_list_unets(lambda res: res.append("unet"))
    assert sc.ui_tabs_callback() == [("blocks", "My tab", "my_tab")]
    assert sc.list_optimizers_callback() == ["opt"]
    assert sc.list_unets_callback() == ["unet"]


def test_component_and_token_counter_callbacks():
    seen = []
    sc.on_before_component(lambda component, **kwargs: seen.append(("before", component, kwargs)))
    sc.on_after_component(lambda component, **kwargs: seen.append(("after", component, kwargs)))
    sc.on_before_token_counter(lambda params: seen.append(("tokens", params.prompt, params.is_positive)))
    sc.before_component_callback("comp", elem_id="x")
    sc.after_component_callback("comp", elem_id="x")
    sc.before_token_counter_callback(sc.BeforeTokenCounterParams("a cat", 20, [], False))
    assert seen == [("before", "comp", {"elem_id": "x"}), ("after", "comp", {"elem_id": "x"}), ("tokens", "a cat", False)]


def test_a_failing_callback_is_reported_by_name_and_the_others_still_run(monkeypatch):
    reports = Reports()
    monkeypatch.setattr(errors, "report", reports)
    got = []

    def broken(params):
        raise ValueError("boom")

    sc.on_cfg_denoiser(broken, name="broken")
    sc.on_cfg_denoiser(lambda params: got.append("second ran"))
    sc.cfg_denoiser_callback(sc.CFGDenoiserParams(1, None, 1, 0, 1, None, None))

    assert got == ["second ran"]
    assert len(reports.messages) == 1
    assert "Error executing callback base/test_script_callbacks.py/cfg_denoiser/broken" in reports.messages[0]
    assert "ValueError: boom" in reports.messages[0]


def test_unloaded_and_before_ui_run_in_reverse_order():
    order = []
    sc.on_script_unloaded(lambda: order.append(1))
    sc.on_script_unloaded(lambda: order.append(2))
    sc.script_unloaded_callback()
    assert order == [2, 1]


def test_duplicate_names_get_a_suffix_and_removal_helpers_work():
    def a():
        pass

    def b():
        pass

    sc.on_before_ui(a)
    sc.on_before_ui(b)
    names = [c.name for c in sc.callback_map["callbacks_before_ui"]]
    assert names == ["base/test_script_callbacks.py/before_ui", "base/test_script_callbacks.py/before_ui-1"]
    sc.remove_callbacks_for_function(a)
    assert [c.callback for c in sc.callback_map["callbacks_before_ui"]] == [b]
    sc.remove_current_script_callbacks()
    assert sc.callback_map["callbacks_before_ui"] == []


def test_registering_something_not_callable_is_a_clear_error():
    with pytest.raises(TypeError, match="on_model_loaded.*callable"):
        sc.on_model_loaded("not a function")


def test_user_priority_setting_puts_named_callbacks_first(monkeypatch):
    from modules import shared
    order = []
    sc.on_model_loaded(lambda m: order.append("first"), name="one")
    sc.on_model_loaded(lambda m: order.append("second"), name="two")
    monkeypatch.setitem(shared.opts.data, "prioritized_callbacks_model_loaded", ["base/test_script_callbacks.py/model_loaded/two"])
    sc.ordered_callbacks_map.clear()
    sc.model_loaded_callback(None)
    assert order == ["second", "first"]


def test_metadata_ini_orders_callbacks_of_extensions(tmp_path, monkeypatch):
    root = tmp_path / "extensions"
    write_extension(root, "aaa", {"scripts/a.py": """
        from modules import script_callbacks
        from tests import callback_order_log as log
        script_callbacks.on_ui_settings(lambda: log.order.append("aaa"))
    """})
    write_extension(root, "bbb", {
        "scripts/b.py": """
            from modules import script_callbacks
            from tests import callback_order_log as log
            script_callbacks.on_ui_settings(lambda: log.order.append("bbb"))
        """,
        "metadata.ini": """
            [callbacks/bbb/b.py/ui_settings]
            Before = aaa/a.py/ui_settings
        """,
    })
    import sys
    import types
    log = types.ModuleType("tests.callback_order_log")
    log.order = []
    monkeypatch.setitem(sys.modules, "tests.callback_order_log", log)
    reports = install_loader(monkeypatch, root)
    try:
        load_all()
        sc.ui_settings_callback()
        assert log.order == ["bbb", "aaa"]
        assert reports.messages == []
    finally:
        unload_all()
