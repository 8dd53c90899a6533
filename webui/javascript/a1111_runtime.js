// The page-side API that A1111 extensions' javascript calls (A1111's script.js/ui.js names): gradioApp(), the
// onUiUpdate/onUiLoaded/onAfterUiUpdate/onUiTabChange/onOptionsChanged/onOptionsAvailable registries, `opts`
// (the settings' values, filled in by the page head before this file), updateInput(), get_uiCurrentTab() ...
// It loads before every extension's javascript.

function gradioApp() {
    const elems = document.getElementsByTagName('gradio-app');
    const elem = elems.length === 0 ? document : elems[0];
    if (elem !== document) {
        elem.getElementById = function(id) { return document.getElementById(id); };
    }
    return elem.shadowRoot ? elem.shadowRoot : elem;
}

var opts = window.opts || {};
window.opts = opts;

var uiUpdateCallbacks = [];
var uiAfterUpdateCallbacks = [];
var uiLoadedCallbacks = [];
var uiTabChangeCallbacks = [];
var optionsChangedCallbacks = [];
var optionsAvailableCallbacks = [];
var uiAfterUpdateTimeout = null;
var uiCurrentTab = null;
var executedOnLoaded = false;

function onUiUpdate(callback) { uiUpdateCallbacks.push(callback); }
function onAfterUiUpdate(callback) { uiAfterUpdateCallbacks.push(callback); }
function onUiLoaded(callback) {
    uiLoadedCallbacks.push(callback);
    if (executedOnLoaded) setTimeout(function() { executeCallbacks([callback]); }, 0);  // registered after the fact
}
function onUiTabChange(callback) { uiTabChangeCallbacks.push(callback); }
function onOptionsChanged(callback) { optionsChangedCallbacks.push(callback); }
function onOptionsAvailable(callback) {
    if (Object.keys(opts).length !== 0) { callback(); return; }
    optionsAvailableCallbacks.push(callback);
}

function executeCallbacks(queue, arg) {
    for (const callback of queue) {
        try {
            callback(arg);
        } catch (e) {
            console.error("error running callback", callback, ":", e);
        }
    }
}

function scheduleAfterUiUpdateCallbacks() {
    clearTimeout(uiAfterUpdateTimeout);
    uiAfterUpdateTimeout = setTimeout(function() { executeCallbacks(uiAfterUpdateCallbacks); }, 200);
}

function get_uiCurrentTab() {
    return gradioApp().querySelector('#tabs > .tab-nav > button.selected, #tabs button[role="tab"][aria-selected="true"]');
}

function get_uiCurrentTabContent() {
    const tabs = gradioApp().querySelectorAll('#tabs > .tabitem, #tabs > div[role="tabpanel"]');
    for (const tab of tabs) {
        if (tab.style.display !== 'none' && tab.offsetParent !== null) return tab;
    }
    return null;
}

function get_tab_index(tabId) {
    // The tab row is the first one inside the Tabs element; tabs nested in its panels have their own rows.
    const tabs = gradioApp().getElementById(tabId);
    const nav = tabs ? tabs.querySelector('.tab-wrapper, .tab-nav') : null;
    if (!nav) return 0;
    const buttons = Array.from(nav.querySelectorAll('button[role="tab"]'));
    const index = buttons.findIndex((b) => b.classList.contains('selected') || b.getAttribute('aria-selected') === 'true');
    return Math.max(index, 0);
}

function uiElementIsVisible(el) {
    if (el === document) return true;
    const style = window.getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden') return false;
    return el.parentNode ? uiElementIsVisible(el.parentNode) : true;
}

function uiElementInSightLine(el) {
    const rect = el.getBoundingClientRect();
    return rect.bottom >= 0 && rect.top <= window.innerHeight;
}

// Tell gradio a textbox/slider's value was changed by script, as if the user typed it.
function updateInput(target) {
    const e = new Event("input", {bubbles: true});
    Object.defineProperty(e, "target", {value: target});
    target.dispatchEvent(e);
}


function startUiObserver() {
    const observer = new MutationObserver(function(mutations) {
        if (!executedOnLoaded && gradioApp().querySelector('#txt2img_prompt')) {
            executedOnLoaded = true;
            executeCallbacks(uiLoadedCallbacks);
        }
        executeCallbacks(uiUpdateCallbacks, mutations);
        scheduleAfterUiUpdateCallbacks();
        const newTab = get_uiCurrentTab();
        if (newTab && newTab !== uiCurrentTab) {
            uiCurrentTab = newTab;
            executeCallbacks(uiTabChangeCallbacks);
        }
    });
    observer.observe(gradioApp(), {childList: true, subtree: true});
    if (Object.keys(opts).length !== 0) {
        executeCallbacks(optionsAvailableCallbacks);
        optionsAvailableCallbacks = [];
    }
}

// Settings -> Apply (and a quicksetting) write the new values into the hidden #settings_json box: `opts` follows and
// onOptionsChanged callbacks run, as in A1111's ui.js.
function optionsChanged(json) {
    try {
        const values = JSON.parse(json);
        for (const key of Object.keys(opts)) delete opts[key];
        Object.assign(opts, values);
    } catch (e) {
        console.error("settings_json:", e);
        return;
    }
    executeCallbacks(optionsAvailableCallbacks);
    optionsAvailableCallbacks = [];
    executeCallbacks(optionsChangedCallbacks);
}

// Gradio inserts the page head, and with it every extension's javascript, after the document has loaded; A1111
// loaded them before. A "DOMContentLoaded" (or window "load") listener added after that event still gets it.
(function() {
    function alreadyFired(target, type) {
        if (type === "DOMContentLoaded") return document.readyState !== "loading";
        return type === "load" && target === window && document.readyState === "complete";
    }
    for (const target of [document, window]) {
        const add = target.addEventListener;
        target.addEventListener = function(type, listener, options) {
            add.call(this, type, listener, options);
            if (listener && alreadyFired(target, type)) {
                setTimeout(function() {
                    try {
                        const event = new Event(type);
                        if (typeof listener === "function") listener.call(target, event);
                        else listener.handleEvent(event);
                    } catch (e) {
                        console.error("error running a " + type + " listener:", e);
                    }
                }, 0);
            }
        };
    }
})();

// The page head may be inserted after the document has loaded (gradio adds it at run time).
if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", startUiObserver);
} else {
    setTimeout(startUiObserver, 0);
}

// Gradio 3 put a textbox's <textarea>/<input> directly in its <label>; Gradio 6 wraps it in a div. Extensions
// select it with "#id > label > textarea", so selectors are read with that one step loosened.
(function() {
    const legacy = /label\s*>\s*(textarea|input)/g;
    function loosen(selector) {
        return (typeof selector === "string" && selector.indexOf("label") !== -1) ? selector.replace(legacy, "label $1") : selector;
    }
    for (const proto of [Document.prototype, Element.prototype, DocumentFragment.prototype]) {
        const one = proto.querySelector;
        const all = proto.querySelectorAll;
        proto.querySelector = function(selector) { return one.call(this, loosen(selector)); };
        proto.querySelectorAll = function(selector) { return all.call(this, loosen(selector)); };
    }
})();
