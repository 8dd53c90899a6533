"""Workers tab (shown with --workers ray / --ray-address): each Ray worker's state, and adding or removing workers
while jobs run."""
import html

import gradio as gr

from modules import job_queue
from modules.distributed import executor, front

REFRESH_S = 2.0
GB = 1024 ** 3


def _memory_text(memory):
    parts = []
    cuda = (memory or {}).get("cuda") or {}
    if "total" in cuda.get("system", {}):
        system = cuda["system"]
        parts.append(f"VRAM {system['used'] / GB:.1f}/{system['total'] / GB:.1f} GB")
    ram = (memory or {}).get("ram") or {}
    if "used" in ram:
        parts.append(f"RAM {ram['used'] / GB:.2f} GB")
    return ", ".join(parts) or "-"


def workers_html():
    pool = front.pool
    if pool is None:
        return "<div class='workers-state'>Starting the Ray workers…</div>"
    states = pool.worker_states()
    head = ["worker", "status", "host", "device", "checkpoint", "running", "queue", "jobs done", "memory", "restarts"]
    rows = []
    for w in states:
        status = w["status"] + (f": {w['error']}" if w.get("error") else "")
        cells = [w["name"], status, w.get("host", "-"), w.get("device", "-"), w.get("checkpoint") or "-",
                 w.get("task_id") or "-", w.get("queue", 0), w.get("jobs_done", 0), _memory_text(w.get("memory")),
                 w.get("deaths", 0)]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    waiting = len(job_queue.queue.pending()) + pool.waiting_count()
    return (f"<div class='workers-state'><p>{len(states)} workers, {waiting} job{'s' if waiting != 1 else ''} "
            f"waiting for one</p><table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) +
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _names():
    return [w["name"] for w in front.pool.worker_states()] if front.pool is not None else []


def add_worker(kind):
    if front.pool is None:
        return workers_html(), gr.update()
    if kind == "GPU":
        front.pool.add_worker(num_cpus=1, num_gpus=1)
    else:
        front.pool.add_worker(num_cpus=1, num_gpus=0, threads=1)
    executor.workers_changed()
    return workers_html(), gr.update(choices=_names())


def remove_worker(name):
    if front.pool is not None and name:
        try:
            front.pool.remove_worker(name)
        except KeyError as e:
            return f"<div class='error'>{html.escape(str(e))}</div>" + workers_html(), gr.update(choices=_names())
    return workers_html(), gr.update(choices=_names(), value=None)


def create_tab(ctx):
    state = gr.HTML(workers_html, elem_id="workers_state")
    with gr.Row():
        kind = gr.Radio(["GPU", "CPU"], value="GPU", label="New worker", elem_id="workers_add_kind")
        add = gr.Button("Add worker", elem_id="workers_add")
    with gr.Row():
        name = gr.Dropdown(choices=_names(), label="Worker", elem_id="workers_remove_name", allow_custom_value=False)
        remove = gr.Button("Remove worker (after its job)", elem_id="workers_remove")
    timer = gr.Timer(REFRESH_S)
    timer.tick(fn=workers_html, outputs=[state], show_progress="hidden", queue=False)
    add.click(fn=add_worker, inputs=[kind], outputs=[state, name], show_progress="hidden")
    remove.click(fn=remove_worker, inputs=[name], outputs=[state, name], show_progress="hidden")
    ctx.register_tab("workers", state=state)
