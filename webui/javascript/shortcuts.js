// Keyboard shortcuts A1111 users expect: Ctrl+Enter generates, Alt+Enter skips, Esc interrupts.
document.addEventListener('keydown', function(e) {
    const tab = document.querySelector('#tabs button[aria-selected="true"]');
    const name = tab ? tab.textContent.trim() : 'txt2img';
    const prefix = name === 'img2img' ? 'img2img' : 'txt2img';
    const click = (id) => { const b = document.getElementById(id); if (b) b.click(); };
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { click(prefix + '_generate'); e.preventDefault(); }
    else if (e.key === 'Enter' && e.altKey) { click(prefix + '_skip'); e.preventDefault(); }
    else if (e.key === 'Escape') { click(prefix + '_interrupt'); }
});
