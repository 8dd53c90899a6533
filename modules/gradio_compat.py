"""Gradio 3.41 APIs that extensions call, made to work on our Gradio 6; and the component hooks.

Extensions were written for A1111's Gradio 3. `apply()` (idempotent, called before any extension code runs)
teaches Gradio 6 the old spellings the extensions use:

* events: `_js=` -> `js=`, `show_progress=True/False` -> "full"/"hidden", `every=` -> a `gr.Timer` tick,
  `api_name=False`/`show_api=False` -> private/undocumented endpoints, `_preprocess`/`_postprocess`;
* components: `.style(...)`, `Component.update(...)` class methods, `gr.Box`, `gr.inputs.*`/`gr.outputs.*`,
  `gr.Image(source=, tool=)`, a Slider whose range is still empty (min == max), an extension's Dropdown value
  outside its choices,
  `gr.components.IOComponent`, `tooltip=`; any other keyword the constructor does not know is dropped with ONE
  warning that names the extension, instead of a crash;
* entering a layout that is already open (an extension entering the page's tabs) is a no-op nesting;
* every component constructed anywhere fires `script_callbacks.on_before_component`/`on_after_component` and the
  current ScriptRunner's `before_component`/`after_component` (A1111 patches gradio the same way).

This module is the one engine-side file that imports gradio; it exists only for extensions.
"""
import functools
import inspect
import os
import sys

from modules import errors, extensions, gradio_compat_io, gradio_stub_writer, script_callbacks, scripts

_applied = False
_warned = set()

_GRADIO_DIR = None


def _caller_file():
    """The first file on the stack outside gradio and this module: who wrote the old keyword."""
    frame = sys._getframe(1)
    this = __file__
    while frame is not None:
        name = frame.f_code.co_filename
        if name != this and not (_GRADIO_DIR and name.startswith(_GRADIO_DIR)) and "functools" not in name:
            return name
        frame = frame.f_back
    return "unknown"


def _who(filename):
    ext = extensions.find_extension(filename)
    if ext is not None:
        return f"extension {ext.name} ({os.path.basename(filename)})"
    return os.path.basename(filename)


def warn_once(what, keyword, filename=None):
    filename = filename or _caller_file()
    who = _who(filename)
    key = (who, what, keyword)
    if key in _warned:
        return
    _warned.add(key)
    print(f"*** {who}: {what} got the unsupported Gradio 3 keyword '{keyword}'; it was ignored.", file=sys.stderr)


# ---------------------------------------------------------------------------------------------- events

def _event_parameters(fn):
    sig = inspect.signature(fn)
    return set(sig.parameters), any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())


def translate_event_kwargs(kwargs, known, what="event listener"):
    """Rewrite Gradio 3 event keywords into Gradio 6 ones; returns (kwargs, every)."""
    if "_js" in kwargs:
        js = kwargs.pop("_js")
        if js is not None and kwargs.get("js") is None:
            kwargs["js"] = js
    if isinstance(kwargs.get("show_progress"), bool):
        kwargs["show_progress"] = "full" if kwargs["show_progress"] else "hidden"
    if kwargs.get("api_name") is False:
        kwargs["api_name"] = None
        kwargs["api_visibility"] = "private"
    if "show_api" in kwargs:
        if kwargs.pop("show_api") is False and "api_visibility" in known:
            kwargs.setdefault("api_visibility", "undocumented")
    for old in ("_preprocess", "_postprocess"):
        if old in kwargs:
            kwargs[old[1:]] = kwargs.pop(old)
    every = kwargs.pop("every", None)
    for key in list(kwargs):
        if key not in known:
            if key not in ("status_tracker",):
                warn_once(what, key)
            kwargs.pop(key)
    return kwargs, every


def _wrap_listener(listener, event_name):
    if getattr(listener, "_compat_wrapped", False):
        return listener
    known, _ = _event_parameters(listener)

    @functools.wraps(listener)
    def compat_listener(*args, **kwargs):
        kwargs, every = translate_event_kwargs(kwargs, known, f".{event_name}()")
        dep = listener(*args, **kwargs)
        if every:
            _attach_every(every, args, kwargs)
        return dep

    compat_listener._compat_wrapped = True
    return compat_listener


def _attach_every(every, args, kwargs):
    """Gradio 3 `every=`: run the same function periodically; in Gradio 6 that is a Timer's tick."""
    import gradio as gr
    fn = kwargs.get("fn", args[1] if len(args) > 1 else None)
    if fn is None:
        return
    try:
        timer = gr.Timer(float(every))
        timer.tick(fn, inputs=kwargs.get("inputs", args[2] if len(args) > 2 else None),
                   outputs=kwargs.get("outputs", args[3] if len(args) > 3 else None), show_progress="hidden")
    except Exception:
        errors.report("Could not attach a periodic (every=) event", exc_info=True)


def _patch_event_listeners():
    import gradio.events as gr_events
    from gradio.blocks import Block

    original_setup = gr_events.EventListener._setup

    def compat_setup(*args, **kwargs):
        listener = original_setup(*args, **kwargs)
        name = args[0] if args else kwargs.get("_event_name", "event")
        return _wrap_listener(listener, name)

    gr_events.EventListener._setup = staticmethod(compat_setup)

    # Classes already created hold listeners made by the original _setup: wrap them in place.
    def all_subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from all_subclasses(sub)

    import gradio
    classes = list(all_subclasses(Block)) + [gradio.Blocks]
    for cls in classes:
        for event in cls.__dict__.get("EVENTS", []) + (["load"] if cls is gradio.Blocks else []):
            name = event if isinstance(event, str) else getattr(event, "event_name", None)
            fn = cls.__dict__.get(name) if name else None
            if callable(fn):
                setattr(cls, name, _wrap_listener(fn, name))


# ---------------------------------------------------------------------------------------------- components

_init_params_cache = {}


def _init_parameters(cls):
    """(names the constructor accepts, whether it accepts anything): subclasses passing **kwargs up are seen through."""
    res = _init_params_cache.get(cls)
    if res is None:
        known = set()
        has_var_kw = True
        for klass in cls.__mro__:
            if "__init__" not in klass.__dict__ or klass is object:
                continue
            names, var_kw = _event_parameters(inspect.unwrap(klass.__dict__["__init__"]))
            known |= names
            if not var_kw:
                has_var_kw = False
                break
        res = (known, has_var_kw)
        _init_params_cache[cls] = res
    return res


def _translate_image_kwargs(kwargs):
    source = kwargs.pop("source", None)
    if source is not None and "sources" not in kwargs:
        kwargs["sources"] = {"upload": ["upload"], "webcam": ["webcam"], "canvas": ["upload"], "clipboard": ["clipboard"]}.get(source, ["upload"])
    for old in ("tool", "brush_radius", "brush_color", "mask_opacity", "shape", "invert_colors", "mirror_webcam"):
        if old in kwargs and old not in _init_parameters_for_image():
            kwargs.pop(old)
    return kwargs


def _init_parameters_for_image():
    import gradio as gr
    return _init_parameters(gr.Image)[0]


def _widen_empty_slider(args, kwargs):
    """Gradio 3 took `gr.Slider(minimum=0, maximum=0)` (a range set later with .update(maximum=n)); Gradio 6
    refuses min >= max. Build it with a one-step range, then give it the range asked for.
    Returns (args, kwargs, attributes to set after construction)."""
    kwargs = {**dict(zip(["minimum", "maximum", "value"], args)), **kwargs}
    minimum, maximum = kwargs.get("minimum", 0), kwargs.get("maximum", 100)
    if minimum is None or maximum is None or minimum < maximum:
        return (), kwargs, {}
    kwargs["maximum"] = minimum + (kwargs.get("step") or 1)
    return (), kwargs, {"maximum": maximum}


def translate_component_kwargs(cls, kwargs):
    """Map Gradio 3 constructor keywords onto `cls`; drop those it cannot take (one warning each)."""
    import gradio as gr
    kwargs.pop("tooltip", None)  # A1111's own keyword, consumed by its patch
    if issubclass(cls, gr.Image) or issubclass(cls, getattr(gr, "ImageEditor", ())):
        kwargs = _translate_image_kwargs(kwargs)
    if isinstance(kwargs.get("show_progress"), bool):
        kwargs["show_progress"] = "full" if kwargs["show_progress"] else "hidden"
    known, has_var_kw = _init_parameters(cls)
    if has_var_kw:
        return kwargs
    for key in list(kwargs):
        if key not in known:
            warn_once(f"gr.{cls.__name__}()", key)
            kwargs.pop(key)
    return kwargs


def _add_classes(component):
    """A1111 tags every component with a 'gradio-<type>' class; extension CSS and javascript select on it."""
    try:
        name = component.get_block_name()
        classes = component.elem_classes or []
        if isinstance(classes, str):
            classes = [classes]
        if f"gradio-{name}" not in classes:
            component.elem_classes = [*classes, f"gradio-{name}"]
    except Exception:
        pass


def _fire(kind, component, kwargs):
    runner = scripts.scripts_current
    if kind == "before":
        if runner is not None:
            runner.before_component(component, **kwargs)
        script_callbacks.before_component_callback(component, **kwargs)
    else:
        script_callbacks.after_component_callback(component, **kwargs)
        if runner is not None:
            runner.after_component(component, **kwargs)


def _made_by_extension():
    return extensions.find_extension(_caller_file()) is not None


def _patch_dropdown_values():
    """Gradio 3 passed a dropdown's value through even when it was not among the choices (Infinity Grid's axis modes
    start at ""; choices filled in later by javascript); Gradio 6 refuses the whole event. Dropdowns that extensions
    make keep the old rule: such a value reaches the function as it is (as None for type="index")."""
    from gradio.components import Dropdown
    original = Dropdown.preprocess

    def preprocess(self, payload):
        if getattr(self, "accepts_values_outside_choices", False) and payload is not None:
            choice_values = [value for _, value in self.choices]
            given = payload if isinstance(payload, list) else [payload]
            if any(value not in choice_values for value in given):
                if self.type == "index":
                    indexes = [choice_values.index(v) if v in choice_values else None for v in given]
                    return indexes if isinstance(payload, list) else indexes[0]
                return payload
        return original(self, payload)

    Dropdown.preprocess = preprocess


def _patch_component_construction():
    """Every Component/layout made through ComponentMeta: translate old keywords, fire component hooks."""
    from gradio.component_meta import ComponentMeta
    from gradio.components.base import Component

    from gradio.components import Dropdown, Slider

    def compat_call(cls, *args, **kwargs):
        kwargs = translate_component_kwargs(cls, kwargs)
        restore = {}
        if issubclass(cls, Slider):
            args, kwargs, restore = _widen_empty_slider(args, kwargs)
        obj = cls.__new__(cls, *args, **kwargs) if cls.__new__ is not object.__new__ else cls.__new__(cls)
        is_component = isinstance(obj, Component)
        if is_component:
            _fire("before", obj, kwargs)
        obj.__init__(*args, **kwargs)
        for name, value in restore.items():
            setattr(obj, name, value)
        if isinstance(obj, Dropdown) and not obj.allow_custom_value and _made_by_extension():
            obj.accepts_values_outside_choices = True
        if is_component:
            _add_classes(obj)
            _fire("after", obj, kwargs)
        return obj

    ComponentMeta.__call__ = compat_call


# ---------------------------------------------------------------------------------------------- old methods and names

_STYLE_MAP = {"grid": "columns", "height": "height", "container": "container", "equal_height": "equal_height",
              "size": "size", "columns": "columns", "rows": "rows", "object_fit": "object_fit", "preview": "preview",
              "min_width": "min_width", "scale": "scale"}


def _style(self, **kwargs):
    """Gradio 3 `.style(...)`: apply what still exists as an attribute, ignore pure-looks keywords."""
    for key, value in kwargs.items():
        target = _STYLE_MAP.get(key)
        if key == "full_width":
            if value and hasattr(self, "scale"):
                self.scale = 1
            continue
        if key == "grid" and isinstance(value, (list, tuple)):
            value = value[-1]
        if target and hasattr(self, target):
            try:
                setattr(self, target, value)
            except Exception:
                pass
    return self


def _update(**kwargs):
    import gradio as gr
    return gr.update(**kwargs)


def _patch_old_methods_and_names():
    import gradio as gr
    import gradio.components as gr_components
    from gradio.blocks import Block

    if not hasattr(Block, "style"):
        Block.style = _style
    # gr.Textbox.update(value=...), gr.Row.update(visible=...), ... were class methods in Gradio 3.
    Block.update = staticmethod(_update)

    if not hasattr(gr_components, "IOComponent"):
        gr_components.IOComponent = gr_components.Component
    if not hasattr(gr, "Variable"):
        gr.Variable = gr.State
    if not hasattr(gr, "Box"):
        from modules.gradio_compat_box import Box
        gr.Box = Box
        gr_components.Box = Box
    if not hasattr(gr.Blocks, "style"):
        gr.Blocks.style = _style
    gradio_compat_io.install()


def _is_open(block, current):
    """Whether `block` is the render context `current` or one of the contexts around it."""
    seen = set()
    while current is not None and id(current) not in seen:
        if current is block:
            return True
        seen.add(id(current))
        current = getattr(current, "parent", None)
    return False


def _patch_reentrant_contexts():
    """Entering a layout that is already open (mov2mov adds its tab by entering the page's gr.Tabs from inside it)
    makes it the place for new blocks until the matching exit, which returns to where building was. Gradio would
    make the layout its own parent and leave everything after it inside it."""
    from gradio.blocks import BlockContext
    from gradio.context import get_render_context, set_render_context

    original_enter, original_exit = BlockContext.__enter__, BlockContext.__exit__

    def compat_enter(self):
        current = get_render_context()
        if not _is_open(self, current):
            return original_enter(self)
        self.__dict__.setdefault("_compat_reentered_from", []).append(current)
        set_render_context(self)
        return self

    def compat_exit(self, exc_type=None, *args):
        reentered_from = self.__dict__.get("_compat_reentered_from")
        if not reentered_from:
            return original_exit(self, exc_type, *args)
        set_render_context(reentered_from.pop())

    BlockContext.__enter__ = compat_enter
    BlockContext.__exit__ = compat_exit


def _patch_subclass_config():
    """Gradio reads a component's props from its class's __init__ signature; subclasses that pass **kwargs up
    (ours and extensions') would lose them all, so read the signature of the nearest gradio class instead."""
    from gradio.blocks import Block
    original = Block.get_config

    def get_config(self, cls=None):
        if cls is None:
            cls = next((k for k in type(self).__mro__
                        if getattr(k, "__module__", "").startswith("gradio.") and "__init__" in k.__dict__), type(self))
        return original(self, cls)

    Block.get_config = get_config


def apply():
    """Install the Gradio 3 compatibility layer and the component hooks once per process."""
    global _applied, _GRADIO_DIR
    if _applied:
        return
    _applied = True
    import gradio
    _GRADIO_DIR = os.path.realpath(os.path.dirname(gradio.__file__)) + os.sep
    gradio_stub_writer.install()  # (normally done before gradio loaded: see modules/__init__.py)
    _patch_event_listeners()
    _patch_component_construction()
    _patch_dropdown_values()
    _patch_old_methods_and_names()
    _patch_reentrant_contexts()
    _patch_subclass_config()
