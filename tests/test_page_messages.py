"""A gr.Warning or gr.Info reaches the page only from a queued event (Gradio prints it to the server's console
otherwise): every handler of the page that tells the user something that way is queued. (Saving a style with no
name said so to the console only.)"""
import inspect


def test_every_handler_that_warns_or_informs_the_user_is_queued():
    from webui import ui
    demo = ui.create_ui()
    unqueued = []
    for block_fn in demo.fns.values():
        fn = block_fn.fn
        try:
            source = inspect.getsource(fn)
        except (TypeError, OSError):
            continue
        if ("gr.Warning(" in source or "gr.Info(" in source) and not block_fn.queue:
            unqueued.append(f"{getattr(fn, '__qualname__', fn)} ({inspect.getsourcefile(fn)})")
    assert not unqueued, unqueued
