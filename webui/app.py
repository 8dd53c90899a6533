"""Starts the web UI: engine start-up, page build, Gradio launch, extension hooks, then waits for commands."""
import os
import sys
import threading
import time

_start_time = time.perf_counter()


def gradio_auth_credentials(cmd_opts):
    """--gradio-auth "u:p,u2:p2" and --gradio-auth-path FILE (same format, lines or commas) -> [(u, p), ...]."""
    from modules.api import server as api_server
    text = cmd_opts.gradio_auth or ""
    if cmd_opts.gradio_auth_path:
        with open(cmd_opts.gradio_auth_path, "r", encoding="utf8") as file:
            text += "," + ",".join(line.strip() for line in file.readlines())
    return api_server.parse_credentials(text, "--gradio-auth") or None


def server_name(cmd_opts):
    from modules import settings_guard
    return settings_guard.server_name(cmd_opts)


def _patient_localhost_check():
    """Gradio refuses to start when a 3-second HEAD request to its own page times out, which happens on a
    busy machine; we serve on this machine by design, so wait longer and never abort the launch over it."""
    import httpx
    from gradio import networking

    def url_ok(url):
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.head(url, timeout=10, verify=False).status_code < 500:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        print(f"Warning: {url} did not answer within 60 seconds; continuing.", flush=True)
        return True

    networking.url_ok = url_ok


def _launch(demo, cmd_opts, share):
    from modules import shared
    from webui import page_assets
    _patient_localhost_check()
    return demo.launch(
        share=share,
        server_name=server_name(cmd_opts),
        server_port=cmd_opts.port or 7860,
        ssl_keyfile=cmd_opts.tls_keyfile,
        ssl_certfile=cmd_opts.tls_certfile,
        debug=cmd_opts.gradio_debug,
        auth=gradio_auth_credentials(cmd_opts),
        inbrowser=cmd_opts.autolaunch,
        prevent_thread_lock=True,
        allowed_paths=cmd_opts.gradio_allowed_path,
        root_path=f"/{cmd_opts.subpath}" if cmd_opts.subpath else None,
        app_kwargs={"docs_url": "/docs", "redoc_url": "/redoc"},
        css=page_assets.page_css(),
        head=page_assets.head_html(),
        footer_links=["api", "settings"],
        quiet=False,
        ssr_mode=False,
    )


def launch_demo(demo, cmd_opts):
    """Launch; if a --share link cannot be made (closed network), say so and keep serving locally."""
    if not cmd_opts.share:
        return _launch(demo, cmd_opts, share=False)
    try:
        result = _launch(demo, cmd_opts, share=True)
        if not getattr(demo, "share_url", None):
            print("Could not create a public --share link (is the network closed?); the UI is served locally only.", flush=True)
        return result
    except Exception as e:
        print(f"Could not create a public --share link ({type(e).__name__}: {e}); serving locally only.", flush=True)
        try:
            demo.close()
        except Exception:
            pass
        return _launch(demo, cmd_opts, share=False)


def build_and_launch():
    from modules import script_callbacks, shared, ui_extra_networks
    # The built-in card pages first; extensions add theirs in on_before_ui (a Reload UI starts the list afresh).
    ui_extra_networks.initialize()
    ui_extra_networks.register_default_pages()
    script_callbacks.before_ui_callback()
    from webui import ui
    from webui import gradio_temp_files
    if shared.opts.clean_temp_dir_at_start:
        gradio_temp_files.cleanup_tmpdr()
    demo = ui.create_ui()
    shared.demo = demo
    demo.queue(default_concurrency_limit=64)
    app, local_url, share_url = launch_demo(demo, shared.cmd_opts)
    shared.opts.onchange("temp_dir", gradio_temp_files.on_tmpdir_changed)  # after launch set the allowed paths
    from modules.api import server as api_server
    api_server.create_api(app, sdapi=shared.cmd_opts.api)
    # (extension-compat) Gradio 3's /file=<path> URLs that extensions' javascript fetches (allowed folders only).
    from webui import extra_networks_routes, file_route
    file_route.add_route(app)
    extra_networks_routes.add_routes(app)
    script_callbacks.app_started_callback(demo, app)
    return demo, app


def reload_ui(demo):
    """Reload UI: on_before_reload, close the page's server, rescan extensions (installed or toggled ones count),
    then reload scripts, which fires on_script_unloaded once before importing them afresh."""
    from modules import errors, extensions, script_callbacks, scripts
    script_callbacks.before_reload_callback()
    try:
        demo.close()
    except Exception:
        errors.report("Error closing the page before Reload UI", exc_info=True)
    try:
        extensions.list_extensions()
    except Exception:
        errors.report("Error listing extensions on Reload UI", exc_info=True)
    scripts.reload_scripts()
    from modules import shared
    if shared.sd_model is not None:
        # Reloaded extensions hook the model when it loads; tell them it already is.
        script_callbacks.model_loaded_callback(shared.sd_model)
    time.sleep(0.5)


# Gradio asks matplotlib for its backend around every queued event. Left on "auto", matplotlib resolves it by
# importing pyplot and trying every GUI toolkit: 1.3 s, paid by the first Generate. A server draws no windows: Agg
# (unless the user chose a backend; read when matplotlib is imported, so set before anything imports it), and
# matplotlib itself imported while nobody waits, once the page is up.
os.environ.setdefault("MPLBACKEND", "Agg")


def _import_matplotlib_in_background():
    def import_matplotlib():
        try:
            import matplotlib  # noqa: F401
        except ImportError:  # optional: Gradio skips it too
            pass
    threading.Thread(target=import_matplotlib, name="matplotlib import", daemon=True).start()


def webui():
    from modules import shared
    from modules import gradio_compat
    gradio_compat.apply()
    from modules import initialize
    initialize.initialize(load_model_in_background=True)
    if shared.cmd_opts.nowebui:
        from webui import api_only
        return api_only.serve()

    while True:
        demo, app = build_and_launch()
        _import_matplotlib_in_background()
        print(f"Startup time: {time.perf_counter() - _start_time:.1f}s; open http://{server_name(shared.cmd_opts)}:{shared.cmd_opts.port or 7860}", flush=True)
        command = None
        try:
            while command is None:
                command = shared.state.wait_for_server_command(timeout=5)
        except KeyboardInterrupt:
            print("Caught KeyboardInterrupt, stopping...")
            command = "stop"
        if command == "stop":
            demo.close()
            return
        # "restart": Reload UI rebuilds the page and reloads scripts without restarting the process.
        print("Reloading the UI...", flush=True)
        reload_ui(demo)


if __name__ == "__main__":
    sys.exit(webui())
