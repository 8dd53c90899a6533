"""--nowebui: the REST API alone, on its own port (--port, else 7861), with no page.

The scripts' controls are still built (in a Blocks that is never served): their default values are the defaults of
an API request's script_args, as in A1111."""
import threading

import gradio as gr

from modules import script_callbacks, scripts, settings_guard, shared
from modules.api import server as api_server
from webui import script_runner_ui

DEFAULT_PORT = 7861


def build_script_controls():
    with gr.Blocks():
        for runner, is_img2img in ((scripts.scripts_txt2img, False), (scripts.scripts_img2img, True)):
            if runner is not None:
                script_runner_ui.create_script_ui(runner, is_img2img=is_img2img)


def create_app():
    from fastapi import FastAPI
    app = FastAPI(title="Stable Diffusion web UI API", docs_url="/docs", redoc_url="/redoc")
    script_callbacks.before_ui_callback()
    build_script_controls()
    api_server.create_api(app, sdapi=True, protect_all=True)
    script_callbacks.app_started_callback(None, app)
    return app


def serve():
    """Serve until a server-stop command (or Ctrl+C); a restart command reloads the scripts."""
    import uvicorn
    cmd_opts = shared.cmd_opts
    app = create_app()
    host, port = settings_guard.server_name(cmd_opts), cmd_opts.port or DEFAULT_PORT
    config = uvicorn.Config(app, host=host, port=port, timeout_keep_alive=cmd_opts.timeout_keep_alive,
                            root_path=f"/{cmd_opts.subpath}" if cmd_opts.subpath else "", ssl_keyfile=cmd_opts.tls_keyfile,
                            ssl_certfile=cmd_opts.tls_certfile, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="api-server")
    thread.start()
    print(f"API only (--nowebui): http://{host}:{port}/docs", flush=True)
    try:
        while thread.is_alive():
            command = shared.state.wait_for_server_command(timeout=1)
            if command == "stop":
                break
            if command == "restart":
                scripts.reload_scripts()
                build_script_controls()
    except KeyboardInterrupt:
        print("Caught KeyboardInterrupt, stopping...")
    server.should_exit = True
    thread.join(timeout=10)
