"""The Extensions tab: installed list with enable/disable, updates, install from URL, and the available index."""
import datetime
import html

import gradio as gr

from modules import errors, extension_manager, extensions, shared


def _message(text, error=False):
    cls = "error" if error else "info"
    return f"<div class='{cls}'>{html.escape(text)}</div>"


def installed_table():
    rows = []
    for ext in extensions.extensions:
        ext.read_info_from_repo()
        date = datetime.datetime.fromtimestamp(ext.commit_date).strftime("%Y-%m-%d %H:%M") if ext.commit_date else ""
        url = "built-in" if ext.is_builtin else (ext.remote or "")
        rows.append(f"<tr><td>{html.escape(ext.name)}</td><td>{'✅' if ext.enabled else '⛔'}</td><td>{html.escape(url)}</td>"
                    f"<td>{html.escape(ext.branch or '')}</td><td>{html.escape(ext.version or '')}</td><td>{date}</td>"
                    f"<td>{html.escape(ext.status or '')}</td></tr>")
    body = "".join(rows) or "<tr><td colspan='7'>No extensions installed: drop folders into extensions/ or install one below.</td></tr>"
    return ("<table id='extensions_table'><thead><tr><th>Extension</th><th>Enabled</th><th>URL</th><th>Branch</th>"
            f"<th>Version</th><th>Date</th><th>Update</th></tr></thead><tbody>{body}</tbody></table>")


def extension_names():
    return [ext.name for ext in extensions.extensions if not ext.is_builtin]


def enabled_names():
    return [ext.name for ext in extensions.extensions if ext.enabled and not ext.is_builtin]


def access_note():
    if shared.cmd_opts.disable_extension_access:
        return _message("Extension changes are disabled because the UI is exposed (--listen, --share or --server-name); "
                        "restart with --enable-insecure-extension-access to allow them.", error=True)
    return ""


def create_tab(ctx):
    gr.HTML(access_note(), elem_id="extensions_access_note")
    with gr.Tabs(elem_id="tabs_extensions"):
        with gr.Tab("Installed", elem_id="extensions_installed_tab"):
            with gr.Row():
                apply = gr.Button("Apply and restart UI", variant="primary", elem_id="extensions_apply")
                check = gr.Button("Check for updates", elem_id="extensions_check")
            disable_all = gr.Radio(["none", "extra", "all"], label="Disable all extensions", value=shared.opts.disable_all_extensions, elem_id="extensions_disable_all")
            enabled = gr.CheckboxGroup(label="Enabled extensions", choices=extension_names(), value=enabled_names(), elem_id="extensions_enabled")
            to_update = gr.CheckboxGroup(label="Update these on apply", choices=[], value=[], elem_id="extensions_to_update")
            table = gr.HTML(installed_table(), elem_id="extensions_installed_html")
            result = gr.HTML("", elem_id="extensions_installed_result")

        with gr.Tab("Available", elem_id="extensions_available_tab"):
            index_url = gr.Textbox(label="Extension index URL or local JSON file", value=extension_manager.DEFAULT_INDEX_URL, elem_id="extensions_index_url")
            load_index = gr.Button("Load from:", elem_id="extensions_load_index")
            available = gr.HTML("", elem_id="extensions_available_html")

        with gr.Tab("Install from URL", elem_id="extensions_install_tab"):
            url = gr.Textbox(label="URL for extension's git repository", elem_id="extensions_install_url")
            branch = gr.Textbox(label="Specific branch name", placeholder="Leave empty for default main branch", elem_id="extensions_install_branch")
            dirname = gr.Textbox(label="Local directory name", placeholder="Leave empty for auto", elem_id="extensions_install_dirname")
            install = gr.Button("Install", variant="primary", elem_id="extensions_install_button")
            install_result = gr.HTML("", elem_id="extensions_install_result")

    def do_apply(enabled_list, disable_mode, update_list):
        try:
            extension_manager.apply_enabled(enabled_list, disable_mode)
            updated = extension_manager.update(update_list)
        except Exception as e:
            return _message(str(e), error=True), installed_table()
        shared.state.request_restart()
        note = "; ".join(f"{k}: {v}" for k, v in updated.items())
        return _message("Saved; the UI is restarting." + (f" Updates: {note}" if note else "")), installed_table()

    def do_check():
        try:
            statuses = extension_manager.check_for_updates()
        except Exception as e:
            return _message(str(e), error=True), installed_table(), gr.update()
        updatable = [name for name, status in statuses.items() if status == "new commits"]
        return _message(f"Checked {len(statuses)} extensions; {len(updatable)} can be updated."), installed_table(), gr.update(choices=updatable, value=updatable)

    def do_install(url_value, branch_value, dirname_value):
        try:
            path = extension_manager.install_from_url(url_value, branch_value, dirname_value)
        except Exception as e:
            errors.report(f"Error installing extension from {url_value}", exc_info=False)
            return _message(str(e), error=True), installed_table(), gr.update()
        return (_message(f"Installed into {path}. Use Installed → Apply and restart UI to load it."), installed_table(),
                gr.update(choices=extension_names(), value=enabled_names()))

    def do_load_index(source):
        try:
            items = extension_manager.load_index(source)
        except Exception as e:
            return _message(str(e), error=True)
        rows = "".join(f"<tr><td><a href='{html.escape(i.get('url', ''))}' target='_blank'>{html.escape(i.get('name', ''))}</a></td>"
                       f"<td>{html.escape(i.get('description', ''))}</td><td>{'installed' if i['installed'] else ''}</td></tr>" for i in items)
        return f"<table id='extensions_available_table'><tbody>{rows}</tbody></table>" if rows else _message("The index lists no extensions.")

    apply.click(fn=do_apply, inputs=[enabled, disable_all, to_update], outputs=[result, table])
    check.click(fn=do_check, inputs=[], outputs=[result, table, to_update])
    install.click(fn=do_install, inputs=[url, branch, dirname], outputs=[install_result, table, enabled])
    load_index.click(fn=do_load_index, inputs=[index_url], outputs=[available])
    ctx.register_tab("extensions", install_result=install_result, enabled=enabled)
