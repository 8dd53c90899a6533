// Drag a picture from a gallery (or any page image) onto an image input: img2img's init image, the inpainting
// editors, Extras, PNG Info. A dragged <img> carries only its URL, not a file, so Gradio's own drop handler sees
// nothing; here the URL is fetched and handed to the input's file field as if the user had picked that file.
(function() {
    const DROP_ZONES = ['#img2img_image', '#img2img_sketch', '#img2maskimg', '#inpaint_sketch', '#img_inpaint_base',
        '#img_inpaint_mask', '#extras_image', '#pnginfo_image'];

    function dropZoneOf(element) {
        for (const selector of DROP_ZONES) {
            const zone = element && element.closest ? element.closest(selector) : null;
            if (zone) return zone;
        }
        return null;
    }

    function draggedImageUrl(dataTransfer) {
        const uris = (dataTransfer.getData('text/uri-list') || '').split('\n').map((s) => s.trim())
            .filter((s) => s && !s.startsWith('#'));
        if (uris.length) return uris[0];
        const html = dataTransfer.getData('text/html') || '';
        const match = html.match(/<img[^>]+src="([^"]+)"/i);
        return match ? match[1].replace(/&amp;/g, '&') : null;
    }

    function clearButtonOf(zone) {
        return zone.querySelector('button[aria-label="Clear"], button[aria-label="Remove Image"], button[title="Clear"]');
    }

    // An input showing a picture has no file field until it is cleared; wait for Gradio to put it back.
    async function fileInputOf(zone) {
        for (let i = 0; i < 40; i++) {
            const input = zone.querySelector('input[type=file]');
            if (input) return input;
            if (i === 0) { const clear = clearButtonOf(zone); if (clear) clear.click(); }
            await new Promise((resolve) => setTimeout(resolve, 50));
        }
        return null;
    }

    async function dropUrl(zone, url) {
        const response = await fetch(url);
        if (!response.ok) throw new Error('could not read the dragged image (' + response.status + ')');
        const blob = await response.blob();
        const name = (new URL(url, window.location.href).pathname.split('/').pop() || 'image.png').split('?')[0];
        const file = new File([blob], name.includes('.') ? name : name + '.png', {type: blob.type || 'image/png'});
        const input = await fileInputOf(zone);
        if (!input) throw new Error('this image input takes no uploads right now');
        const transfer = new DataTransfer();
        transfer.items.add(file);
        input.files = transfer.files;
        input.dispatchEvent(new Event('change', {bubbles: true}));
    }

    document.addEventListener('dragover', function(e) {
        if (dropZoneOf(e.target)) e.preventDefault();
    }, true);

    document.addEventListener('drop', function(e) {
        const zone = dropZoneOf(e.target);
        if (!zone || !e.dataTransfer || e.dataTransfer.files.length) return;  // real files: Gradio handles them
        const url = draggedImageUrl(e.dataTransfer);
        if (!url) return;
        e.preventDefault();
        e.stopPropagation();
        dropUrl(zone, url).catch((error) => console.error('image drop:', error));
    }, true);
})();
