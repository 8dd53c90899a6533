// Extra Networks cards (A1111's extraNetworks.js names): a card click puts its tag into the prompt (or takes it out
// again), search / sort / subfolder buttons filter the cards in the browser, ⓘ shows a model's metadata, 🛠️ opens
// the metadata editor, a checkpoint card switches the model.

var extraNetworksActivePrompt = {};  // tabname -> the prompt textarea the user last typed in
var extraNetworksPaneState = {};     // pane id -> {search, dir, sort, descending, version}

function extraNetworksPromptTextarea(tabname, negative) {
    return gradioApp().querySelector('#' + tabname + (negative ? '_neg_prompt' : '_prompt') + ' textarea');
}

document.addEventListener('focusin', function(event) {
    const target = event.target;
    if (!target || target.tagName !== 'TEXTAREA') return;
    const box = target.closest('[id$="_prompt"]');
    if (!box) return;
    const match = box.id.match(/^(.*?)_(neg_)?prompt$/);
    if (match) extraNetworksActivePrompt[match[1]] = target;
});

function escapeRegExp(text) {
    return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// "<lora:name:0.8> activation" -> {head: "<lora:name:", after: " activation"}; plain text -> null.
function extraNetworksTagParts(text) {
    const match = text.match(/^(<[^:>]+:[^:>]+:)[^>]*>(.*)$/s);
    return match ? {head: match[1], after: match[2]} : null;
}

// If the prompt already holds this card's text, take it out (with the separator before it and the activation text
// after it) and return true; otherwise leave the prompt alone and return false.
function tryToRemoveExtraNetworkFromPrompt(textarea, text) {
    const separator = (typeof opts.extra_networks_add_text_separator === 'string') ? opts.extra_networks_add_text_separator : ' ';
    const parts = extraNetworksTagParts(text);
    let pattern;
    if (parts) {
        pattern = new RegExp('(?:' + escapeRegExp(separator) + ')?' + escapeRegExp(parts.head) + '[^>]*>' +
                             (parts.after ? '(?:' + escapeRegExp(parts.after) + ')?' : ''), 'g');
    } else {
        // a whole word only: taking "ink" out must leave "pink" alone
        pattern = new RegExp('(?:' + escapeRegExp(separator) + ')?(?<![\\w-])' + escapeRegExp(text) + '(?![\\w-])', 'g');
    }
    const updated = textarea.value.replace(pattern, '');
    if (updated === textarea.value) return false;
    textarea.value = separator && updated.startsWith(separator) ? updated.slice(separator.length) : updated;
    return true;
}

function updatePromptArea(text, textarea) {
    if (!textarea || !text) return;
    if (!tryToRemoveExtraNetworkFromPrompt(textarea, text)) {
        const separator = (typeof opts.extra_networks_add_text_separator === 'string') ? opts.extra_networks_add_text_separator : ' ';
        textarea.value = textarea.value ? textarea.value + separator + text : text;
    }
    updateInput(textarea);
}

function cardClicked(tabname, textToAdd, textToAddNegative, allowNegativePrompt) {
    const prompt = extraNetworksPromptTextarea(tabname, false);
    if (textToAddNegative) {
        updatePromptArea(textToAdd, prompt);
        updatePromptArea(textToAddNegative, extraNetworksPromptTextarea(tabname, true));
    } else {
        const active = extraNetworksActivePrompt[tabname];
        const negative = extraNetworksPromptTextarea(tabname, true);
        updatePromptArea(textToAdd, allowNegativePrompt && active && active === negative ? negative : prompt);
    }
    return false;
}

function selectCheckpoint(name) {
    const box = gradioApp().querySelector('#change_checkpoint_name textarea, #change_checkpoint_name input');
    const button = gradioApp().getElementById('change_checkpoint');
    if (!box || !button) return false;
    box.value = name;
    updateInput(box);
    button.click();
    return false;
}

function extraNetworksEditUserMetadata(event, tabname, extraPage, cardName) {
    event.stopPropagation();
    const box = gradioApp().querySelector('#' + tabname + '_extra_networks_edit_target textarea, #' + tabname + '_extra_networks_edit_target input');
    const button = gradioApp().getElementById(tabname + '_extra_networks_edit_open');
    if (!box || !button) return false;
    box.value = extraPage + '\n' + cardName;
    updateInput(box);
    button.click();
    return false;
}

function extraNetworksShowMetadata(title, metadata) {
    let popup = document.getElementById('extra-network-metadata-popup');
    if (!popup) {
        popup = document.createElement('div');
        popup.id = 'extra-network-metadata-popup';
        popup.className = 'extra-network-popup';
        popup.addEventListener('click', function(event) { if (event.target === popup) popup.remove(); });
        document.body.appendChild(popup);
    }
    popup.innerHTML = '';
    const box = document.createElement('div');
    box.className = 'extra-network-popup-box';
    const close = document.createElement('button');
    close.className = 'extra-network-popup-close';
    close.textContent = '✖';
    close.onclick = function() { popup.remove(); };
    const heading = document.createElement('h2');
    heading.textContent = title;
    const table = document.createElement('table');
    table.className = 'extra-network-metadata-table';
    for (const key of Object.keys(metadata).sort()) {
        const row = table.insertRow();
        const name = document.createElement('th');
        name.textContent = key;
        const value = row.insertCell();
        const v = metadata[key];
        if (v !== null && typeof v === 'object') {
            const pre = document.createElement('pre');
            pre.textContent = JSON.stringify(v, null, 2);
            value.appendChild(pre);
        } else {
            value.textContent = String(v);
        }
        row.insertBefore(name, value);
    }
    box.append(close, heading, table);
    popup.appendChild(box);
}

function extraNetworksRequestMetadata(event, extraPage, cardName) {
    event.stopPropagation();
    fetch('./sd_extra_networks/metadata?page=' + encodeURIComponent(extraPage) + '&item=' + encodeURIComponent(cardName))
        .then(function(response) { return response.json(); })
        .then(function(data) {
            if (data && data.metadata) extraNetworksShowMetadata(cardName, data.metadata);
        })
        .catch(function(error) { console.error('metadata of', cardName, error); });
    return false;
}

document.addEventListener('keydown', function(event) {
    if (event.key === 'Escape') {
        const popup = document.getElementById('extra-network-metadata-popup');
        if (popup) popup.remove();
    }
});

// ---- search, sort, subfolders -------------------------------------------------------------------------------

function extraNetworksState(pane) {
    if (!extraNetworksPaneState[pane.id]) {
        const sort = pane.querySelector('.extra-network-sort');
        const direction = pane.querySelector('.extra-network-sort-dir');
        extraNetworksPaneState[pane.id] = {search: '', dir: '', sort: sort ? sort.value : 'path',
                                           descending: direction ? direction.dataset.descending === '1' : false, version: null};
    }
    return extraNetworksPaneState[pane.id];
}

function extraNetworksCompare(a, b) {
    const x = Number(a), y = Number(b);
    if (a !== '' && b !== '' && !isNaN(x) && !isNaN(y)) return x - y;
    return (a || '').localeCompare(b || '', undefined, {numeric: true, sensitivity: 'base'});
}

function extraNetworksApplySort(pane) {
    const state = extraNetworksState(pane);
    const container = pane.querySelector('.extra-network-cards');
    if (!container) return;
    const attribute = 'data-sort-' + state.sort;
    const cards = Array.from(container.querySelectorAll(':scope > .card'));
    cards.sort(function(a, b) {
        const order = extraNetworksCompare(a.getAttribute(attribute) || '', b.getAttribute(attribute) || '');
        return (state.descending ? -order : order) || extraNetworksCompare(a.dataset.name, b.dataset.name);
    });
    const fragment = document.createDocumentFragment();
    for (const card of cards) fragment.appendChild(card);
    container.appendChild(fragment);
}

function extraNetworksApplyFilter(pane) {
    const state = extraNetworksState(pane);
    const search = state.search.toLowerCase().trim();
    const hiddenModels = opts.extra_networks_hidden_models || 'When searched';
    let shown = 0, total = 0;
    for (const card of pane.querySelectorAll('.extra-network-cards > .card')) {
        total++;
        const dir = card.dataset.dir || '';
        let visible = (!search || (card.dataset.search || '').indexOf(search) !== -1) &&
                      (!state.dir || dir === state.dir || dir.startsWith(state.dir + '/'));
        if (visible && card.dataset.hidden === '1') {
            visible = hiddenModels === 'Always' || (hiddenModels === 'When searched' && search.length >= 4);
        }
        card.style.display = visible ? '' : 'none';
        if (visible) shown++;
    }
    const count = pane.querySelector('.extra-network-count');
    if (count) count.textContent = total ? (shown === total ? total + ' items' : shown + ' of ' + total) : '';
}

// Called when a pane appears or its cards were replaced (refresh, a saved edit): the user's search, folder and
// order carry over to the new cards.
function extraNetworksSetupPane(pane) {
    const state = extraNetworksState(pane);
    if (state.version === pane.dataset.version) return;
    state.version = pane.dataset.version;
    const search = pane.querySelector('.extra-network-search');
    if (search && search.value !== state.search) search.value = state.search;
    const sort = pane.querySelector('.extra-network-sort');
    if (sort) sort.value = state.sort;
    const direction = pane.querySelector('.extra-network-sort-dir');
    if (direction) {
        direction.dataset.descending = state.descending ? '1' : '0';
        direction.textContent = state.descending ? '↓' : '↑';
    }
    for (const button of pane.querySelectorAll('.extra-network-dir')) {
        button.classList.toggle('selected', (button.dataset.dir || '') === state.dir);
    }
    if (pane.dataset.loaded === '1') {
        extraNetworksApplySort(pane);
        extraNetworksApplyFilter(pane);
    }
}

function extraNetworksSetupAll() {
    for (const pane of gradioApp().querySelectorAll('.extra-network-pane')) extraNetworksSetupPane(pane);
}

document.addEventListener('input', function(event) {
    const target = event.target;
    if (!target.classList || !target.classList.contains('extra-network-search')) return;
    const pane = target.closest('.extra-network-pane');
    extraNetworksState(pane).search = target.value;
    extraNetworksApplyFilter(pane);
});

document.addEventListener('change', function(event) {
    const target = event.target;
    if (!target.classList || !target.classList.contains('extra-network-sort')) return;
    const pane = target.closest('.extra-network-pane');
    extraNetworksState(pane).sort = target.value;
    extraNetworksApplySort(pane);
});

document.addEventListener('click', function(event) {
    const target = event.target.closest ? event.target.closest('.extra-network-sort-dir, .extra-network-dir, .extra-network-refresh') : null;
    if (!target) return;
    const pane = target.closest('.extra-network-pane');
    if (!pane) return;
    const state = extraNetworksState(pane);
    if (target.classList.contains('extra-network-sort-dir')) {
        state.descending = !state.descending;
        target.dataset.descending = state.descending ? '1' : '0';
        target.textContent = state.descending ? '↓' : '↑';
        extraNetworksApplySort(pane);
    } else if (target.classList.contains('extra-network-dir')) {
        state.dir = target.dataset.dir || '';
        for (const button of pane.querySelectorAll('.extra-network-dir')) button.classList.toggle('selected', button === target);
        extraNetworksApplyFilter(pane);
    } else {
        const button = gradioApp().getElementById(pane.dataset.tabname + '_' + pane.dataset.page + '_extra_refresh_internal');
        if (button) button.click();
    }
});

onUiUpdate(extraNetworksSetupAll);
// Gradio may redraw a pane in place (same elements, new attributes): its new data-version says the cards changed.
new MutationObserver(function(mutations) {
    for (const mutation of mutations) {
        if (mutation.target.classList && mutation.target.classList.contains('extra-network-pane')) extraNetworksSetupPane(mutation.target);
    }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-version']});
