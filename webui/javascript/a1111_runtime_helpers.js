// The global helpers of A1111's javascript/ folder that extensions call (census of 48 extensions): switching tabs,
// the submit/progress trio their own Generate buttons use, gallery selection, translations, hover titles and the
// img2img aspect-ratio overlay. Same names and arguments as A1111's script.js, ui.js, progressbar.js, hints.js,
// localization.js and aspectRatioOverlay.js.

var titles = window.titles || {};  // button/label text -> hover hint; extensions add their own

function args_to_array(args) {
    return Array.from(args);
}

function randomId() {
    const part = () => Math.random().toString(36).slice(2, 7);
    return "task(" + part() + part() + part() + ")";
}

function localSet(key, value) {
    try { localStorage[key] = value; } catch (e) { console.warn("localStorage:", e); }
}

function localGet(key, def) {
    try { return key in localStorage ? localStorage[key] : def; } catch (e) { return def; }
}

function localRemove(key) {
    try { delete localStorage[key]; } catch (e) { console.warn("localStorage:", e); }
}

function getTranslation(text) {
    const table = window.localization || {};
    return text in table ? table[text] : undefined;
}

// --------------------------------------------------------------------------------------------- tabs

function clickTab(elemId) {
    const button = gradioApp().getElementById(elemId + "-button") ||
        gradioApp().querySelector('button[role="tab"][aria-controls="' + elemId + '"]');
    if (button) button.click();
    return button;
}

function switch_to_txt2img() {
    clickTab("tab_txt2img");
    return Array.from(arguments);
}

function switch_to_img2img_tab(no) {
    clickTab("tab_img2img");
    const modes = gradioApp().querySelectorAll('#mode_img2img button[role="tab"]');
    if (modes[no]) modes[no].click();
}

function switch_to_img2img() { switch_to_img2img_tab(0); return Array.from(arguments); }
function switch_to_sketch() { switch_to_img2img_tab(1); return Array.from(arguments); }
function switch_to_inpaint() { switch_to_img2img_tab(2); return Array.from(arguments); }
function switch_to_inpaint_sketch() { switch_to_img2img_tab(3); return Array.from(arguments); }

function switch_to_extras() {
    clickTab("tab_extras");
    return Array.from(arguments);
}

// --------------------------------------------------------------------------------------------- galleries

function all_gallery_buttons() {
    const tab = get_uiCurrentTabContent() || gradioApp();
    return Array.from(tab.querySelectorAll('[id$="_gallery"] .thumbnail-item, [id$="_gallery"] .thumbnail-small'))
        .filter((elem) => elem.offsetParent !== null);
}

function selected_gallery_button() {
    return all_gallery_buttons().find((elem) => elem.classList.contains("selected")) || null;
}

function selected_gallery_index() {
    return all_gallery_buttons().findIndex((elem) => elem.classList.contains("selected"));
}

// Swaps a tab's Width and Height sliders (A1111's ⇅ button; mov2mov calls it for its own tab).
function switchWidthHeight(tabname) {
    const width = gradioApp().querySelector("#" + tabname + "_width input[type=number]");
    const height = gradioApp().querySelector("#" + tabname + "_height input[type=number]");
    if (!width || !height) return [];
    const previousWidth = width.value;
    width.value = height.value;
    height.value = previousWidth;
    updateInput(width);
    updateInput(height);
    return [];
}

// --------------------------------------------------------------------------------------------- submit and progress

// A1111's tabs send their previous gallery back with every submit; drop it (third argument from the end).
function create_submit_args(args) {
    const res = Array.from(args);
    if (Array.isArray(res[res.length - 3])) res[res.length - 3] = null;
    return res;
}

function showSubmitButtons(tabname, show) {
    const set = (id, display) => { const el = gradioApp().getElementById(id); if (el) el.style.display = display; };
    set(tabname + "_interrupt", show ? "none" : "block");
    set(tabname + "_skip", show ? "none" : "block");
}

function showRestoreProgressButton(tabname, show) {
    const el = gradioApp().getElementById(tabname + "_restore_progress");
    if (el) el.style.display = show ? "flex" : "none";
}

function submitFor(tabname, args) {
    showSubmitButtons(tabname, false);
    const id = randomId();
    localSet(tabname + "_task_id", id);
    requestProgress(id, gradioApp().getElementById(tabname + "_gallery_container") || gradioApp().getElementById(tabname + "_gallery"),
        gradioApp().getElementById(tabname + "_gallery"), function() {
            showSubmitButtons(tabname, true);
            localRemove(tabname + "_task_id");
        });
    const res = create_submit_args(args);
    res[0] = id;
    return res;
}

function submit() { return submitFor("txt2img", arguments); }
function submit_txt2img() { return submitFor("txt2img", arguments); }
function submit_img2img() {
    const res = submitFor("img2img", arguments);
    res[1] = get_tab_index("mode_img2img");
    return res;
}
function submit_extras() {
    const res = Array.from(arguments);
    res[0] = randomId();
    return res;
}

function formatTime(secs) {
    if (secs > 3600) return Math.floor(secs / 3600) + "h " + Math.floor((secs % 3600) / 60) + "m";
    if (secs > 60) return Math.floor(secs / 60) + "m " + Math.floor(secs % 60) + "s";
    return Math.floor(secs) + "s";
}

// Poll /internal/progress for task `id_task`, show a bar in `progressbarContainer`, a live preview over `gallery`,
// call onProgress(progress) each time and atEnd() once the task is done (or when this server has no such route).
function requestProgress(id_task, progressbarContainer, gallery, atEnd, onProgress, inactivityTimeout = 40) {
    const started = Date.now();
    let wasEverActive = false;
    const parent = progressbarContainer ? progressbarContainer.parentNode : null;
    const bar = document.createElement("div");
    bar.className = "progressDiv";
    const inner = document.createElement("div");
    inner.className = "progress";
    bar.appendChild(inner);
    if (parent) parent.insertBefore(bar, progressbarContainer);
    let preview = null;
    let idLivePreview = -1;

    const finish = function() {
        bar.remove();
        if (preview) preview.remove();
        if (atEnd) atEnd();
    };

    const poll = function() {
        fetch("./internal/progress", {
            method: "POST", headers: {"Content-Type": "application/json"},
            body: JSON.stringify({id_task: id_task, id_live_preview: idLivePreview, live_preview: !!gallery}),
        }).then((r) => r.ok ? r.json() : null).then(function(res) {
            if (!res) { finish(); return; }
            if (res.active) wasEverActive = true;
            if (res.completed || (!res.active && !res.queued && wasEverActive) ||
                (!res.active && !res.queued && Date.now() - started > inactivityTimeout * 1000)) {
                finish();
                return;
            }
            const percent = Math.round((res.progress || 0) * 100);
            inner.style.width = percent + "%";
            inner.textContent = (res.queued ? "In queue... " : percent + "% ") + (res.eta ? "ETA: " + formatTime(res.eta) : "");
            if (res.live_preview && gallery) {
                if (!preview) {
                    preview = document.createElement("div");
                    preview.className = "livePreview";
                    gallery.insertBefore(preview, gallery.firstElementChild);
                }
                const img = new Image();
                img.src = res.live_preview;
                preview.replaceChildren(img);
                idLivePreview = res.id_live_preview;
            }
            if (onProgress) onProgress(res);
            setTimeout(poll, (window.opts && opts.live_preview_refresh_period) || 500);
        }).catch(function(e) {
            console.warn("progress:", e);
            finish();
        });
    };
    poll();
}

// --------------------------------------------------------------------------------------------- hints

// Elements whose text (or value) is a key of `titles` get it as their hover title, as A1111's hints.js does.
function updateTooltip(element) {
    if (element.title) return;
    const text = element.textContent.trim() || element.value;
    const tooltip = getTranslation(titles[text]) || titles[text];
    if (tooltip) element.title = tooltip;
}

onUiUpdate(function() {
    if (Object.keys(titles).length === 0) return;
    gradioApp().querySelectorAll("button, span, label, option").forEach(updateTooltip);
});

// --------------------------------------------------------------------------------------------- aspect ratio overlay

// While the img2img width/height are edited, a box over the img2img picture shows the target aspect ratio.
var currentWidth = null;
var currentHeight = null;
var arFrameTimeout = null;

function dimensionChange(e, is_width, is_height) {
    if (is_width) currentWidth = e.target.value * 1.0;
    if (is_height) currentHeight = e.target.value * 1.0;
    const onImg2img = gradioApp().querySelector("#tab_img2img") && get_uiCurrentTabContent() &&
        get_uiCurrentTabContent().id === "tab_img2img";
    if (!onImg2img || !currentWidth || !currentHeight) return;

    const mode = gradioApp().querySelector('#mode_img2img [role="tabpanel"]:not([style*="none"])') || gradioApp();
    const target = mode.querySelector("img");
    if (!target) return;
    let frame = gradioApp().querySelector("#imageARPreview");
    if (!frame) {
        frame = document.createElement("div");
        frame.id = "imageARPreview";
        frame.style.cssText = "position:absolute;pointer-events:none;border:2px solid red;z-index:100;";
        document.body.appendChild(frame);
    }
    const rect = target.getBoundingClientRect();
    const scale = Math.min(rect.width / currentWidth, rect.height / currentHeight);
    const w = currentWidth * scale;
    const h = currentHeight * scale;
    frame.style.left = (window.scrollX + rect.left + (rect.width - w) / 2) + "px";
    frame.style.top = (window.scrollY + rect.top + (rect.height - h) / 2) + "px";
    frame.style.width = w + "px";
    frame.style.height = h + "px";
    frame.style.display = "block";
    clearTimeout(arFrameTimeout);
    arFrameTimeout = setTimeout(function() { frame.style.display = "none"; }, 2000);
}

onAfterUiUpdate(function() {
    ["img2img_width", "img2img_height"].forEach(function(id, i) {
        const inputs = gradioApp().querySelectorAll("#" + id + " input");
        inputs.forEach(function(input) {
            if (input.dataset.arWatched) return;
            input.dataset.arWatched = "1";
            input.addEventListener("input", (e) => dimensionChange(e, i === 0, i === 1));
        });
    });
});
