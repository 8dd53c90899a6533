"""Every built-in setting, by section, with A1111's keys and defaults.

Components are named by string ("Slider", "Dropdown", ...) so the engine never imports gradio; the Settings tab
resolves the names. Extensions may still pass gradio classes, which the tab uses as they are.
"""
from modules import shared_items
from modules.options import OptionInfo, options_section, categories

categories.register_category("saving", "Saving images")
categories.register_category("sd", "Stable Diffusion")
categories.register_category("ui", "User Interface")
categories.register_category("system", "System")
categories.register_category("postprocessing", "Postprocessing")
categories.register_category("training", "Training")

restricted_opts = {
    "samples_filename_pattern", "directories_filename_pattern", "outdir_samples", "outdir_txt2img_samples",
    "outdir_img2img_samples", "outdir_extras_samples", "outdir_grids", "outdir_txt2img_grids", "outdir_save",
    "outdir_init_images", "temp_dir", "clean_temp_dir_at_start",
}


def _all_option_keys():
    from modules import shared
    return list(shared.opts.data_labels)


def _slider(minimum, maximum, step):
    return {"minimum": minimum, "maximum": maximum, "step": step}


options_templates = {}

options_templates.update(options_section(("saving-images", "Saving images/grids", "saving"), {
    "samples_save": OptionInfo(True, "Always save all generated images"),
    "samples_format": OptionInfo("png", "File format for images"),
    "samples_filename_pattern": OptionInfo("", "Images filename pattern"),
    "save_images_add_number": OptionInfo(True, "Add number to filename when saving", component="Checkbox"),
    "save_images_replace_action": OptionInfo("Replace", "Saving the image to an existing file", component="Radio", component_args={"choices": ["Replace", "Add number suffix"]}),
    "grid_save": OptionInfo(True, "Always save all generated image grids"),
    "grid_format": OptionInfo("png", "File format for grids"),
    "grid_extended_filename": OptionInfo(False, "Add extended info (seed, prompt) to filename when saving grid"),
    "grid_only_if_multiple": OptionInfo(True, "Do not save grids consisting of one picture"),
    "grid_prevent_empty_spots": OptionInfo(False, "Prevent empty spots in grid (when set to autodetect)"),
    "grid_zip_filename_pattern": OptionInfo("", "Archive filename pattern"),
    "n_rows": OptionInfo(-1, "Grid row count; use -1 for autodetect and 0 for it to be same as batch size", "Slider", _slider(-1, 16, 1)),
    "font": OptionInfo("", "Font for image grids that have text"),
    "grid_text_active_color": OptionInfo("#000000", "Text color for image grids", "ColorPicker"),
    "grid_text_inactive_color": OptionInfo("#999999", "Inactive text color for image grids", "ColorPicker"),
    "grid_background_color": OptionInfo("#ffffff", "Background color for image grids", "ColorPicker"),
    "save_images_before_face_restoration": OptionInfo(False, "Save a copy of image before doing face restoration."),
    "save_images_before_highres_fix": OptionInfo(False, "Save a copy of image before applying highres fix."),
    "save_images_before_color_correction": OptionInfo(False, "Save a copy of image before applying color correction to img2img results"),
    "save_mask": OptionInfo(False, "For inpainting, save a copy of the greyscale mask"),
    "save_mask_composite": OptionInfo(False, "For inpainting, save a masked composite"),
    "jpeg_quality": OptionInfo(80, "Quality for saved jpeg and avif images", "Slider", _slider(1, 100, 1)),
    "webp_lossless": OptionInfo(False, "Use lossless compression for webp images"),
    "export_for_4chan": OptionInfo(True, "Save copy of large images as JPG"),
    "img_downscale_threshold": OptionInfo(4.0, "File size limit for the above option, MB", "Number"),
    "target_side_length": OptionInfo(4000, "Width/height limit for the above option, in pixels", "Number"),
    "img_max_size_mp": OptionInfo(200, "Maximum grid size (in megapixels)", "Number"),
    "use_original_name_batch": OptionInfo(True, "Use original name for output filename during batch process in extras tab"),
    "use_upscaler_name_as_suffix": OptionInfo(False, "Use upscaler name as filename suffix in the extras tab"),
    "save_selected_only": OptionInfo(True, "When using 'Save' button, only save a single selected image"),
    "save_write_log_csv": OptionInfo(True, "Write log.csv when saving images using 'Save' button"),
    "save_init_img": OptionInfo(False, "Save init images when using img2img"),
    "temp_dir": OptionInfo("", "Directory for temporary images; leave empty for default"),
    "clean_temp_dir_at_start": OptionInfo(False, "Cleanup non-default temporary directory when starting webui"),
    "save_incomplete_images": OptionInfo(False, "Save incomplete images"),
}))

options_templates.update(options_section(("saving-paths", "Paths for saving", "saving"), {
    "outdir_samples": OptionInfo("", "Output directory for images; if empty, defaults to three directories below"),
    "outdir_txt2img_samples": OptionInfo("outputs/txt2img-images", "Output directory for txt2img images"),
    "outdir_img2img_samples": OptionInfo("outputs/img2img-images", "Output directory for img2img images"),
    "outdir_extras_samples": OptionInfo("outputs/extras-images", "Output directory for images from extras tab"),
    "outdir_grids": OptionInfo("", "Output directory for grids; if empty, defaults to two directories below"),
    "outdir_txt2img_grids": OptionInfo("outputs/txt2img-grids", "Output directory for txt2img grids"),
    "outdir_img2img_grids": OptionInfo("outputs/img2img-grids", "Output directory for img2img grids"),
    "outdir_save": OptionInfo("log/images", "Directory for saving images using the Save button"),
    "outdir_init_images": OptionInfo("outputs/init-images", "Directory for saving init images when using img2img"),
}))

options_templates.update(options_section(("saving-to-dirs", "Saving to a directory", "saving"), {
    "save_to_dirs": OptionInfo(True, "Save images to a subdirectory"),
    "grid_save_to_dirs": OptionInfo(True, "Save grids to a subdirectory"),
    "use_save_to_dirs_for_ui": OptionInfo(False, "When using \"Save\" button, save images to a subdirectory"),
    "directories_filename_pattern": OptionInfo("[date]", "Directory name pattern"),
    "directories_max_prompt_words": OptionInfo(8, "Max prompt words for [prompt_words] pattern", "Slider", _slider(1, 20, 1)),
}))

options_templates.update(options_section(("upscaling", "Upscaling", "postprocessing"), {
    "ESRGAN_tile": OptionInfo(192, "Tile size for ESRGAN upscalers.", "Slider", _slider(0, 512, 16)).info("0 = no tiling"),
    "ESRGAN_tile_overlap": OptionInfo(8, "Tile overlap for ESRGAN upscalers.", "Slider", _slider(0, 48, 1)).info("Low values = visible seam"),
    "realesrgan_enabled_models": OptionInfo(["R-ESRGAN 4x+", "R-ESRGAN 4x+ Anime6B"], "Select which Real-ESRGAN models to show in the web UI.", "CheckboxGroup", lambda: {"choices": shared_items.realesrgan_models_names()}),
    "dat_enabled_models": OptionInfo(["DAT x2", "DAT x3", "DAT x4"], "Select which DAT models to show in the web UI.", "CheckboxGroup", lambda: {"choices": shared_items.dat_models_names()}),
    "DAT_tile": OptionInfo(192, "Tile size for DAT upscalers.", "Slider", _slider(0, 512, 16)).info("0 = no tiling"),
    "DAT_tile_overlap": OptionInfo(8, "Tile overlap for DAT upscalers.", "Slider", _slider(0, 48, 1)).info("Low values = visible seam"),
    "upscaler_for_img2img": OptionInfo(None, "Upscaler for img2img", "Dropdown", lambda: {"choices": shared_items.upscaler_names()}),
    "set_scale_by_when_changing_upscaler": OptionInfo(False, "Automatically set the Scale by factor based on the name of the selected Upscaler."),
    "upscaling_max_images_in_cache": OptionInfo(5, "Maximum number of images in upscaling cache", "Slider", _slider(0, 10, 1)),
}))

options_templates.update(options_section(("face-restoration", "Face restoration", "postprocessing"), {
    "face_restoration": OptionInfo(False, "Restore faces", infotext="Face restoration").info("will use a third-party model on generation result to reconstruct faces"),
    "face_restoration_model": OptionInfo("CodeFormer", "Face restoration model", "Radio", {"choices": ["CodeFormer", "GFPGAN"]}),
    "code_former_weight": OptionInfo(0.5, "CodeFormer weight", "Slider", _slider(0, 1, 0.01)).info("0 = maximum effect; 1 = minimum effect"),
    "face_restoration_unload": OptionInfo(False, "Move face restoration model from VRAM into RAM after processing"),
}))

options_templates.update(options_section(("system", "System", "system"), {
    "auto_launch_browser": OptionInfo("Local", "Automatically open webui in browser on startup", "Radio", {"choices": ["Disable", "Local", "Remote"]}),
    "enable_console_prompts": OptionInfo(False, "Print prompts to console when generating with txt2img and img2img."),
    "show_warnings": OptionInfo(False, "Show warnings in console.").needs_reload_ui(),
    "samples_log_stdout": OptionInfo(False, "Always print all generation info to standard output"),
    "multiple_tqdm": OptionInfo(True, "Add a second progress bar to the console that shows progress for an entire job."),
    "enable_upscale_progressbar": OptionInfo(True, "Show a progress bar in the console for tiled upscaling."),
    "list_hidden_files": OptionInfo(True, "Load models/files in hidden directories").info("directory is hidden if its name starts with \".\""),
    "disable_mmap_load_safetensors": OptionInfo(False, "Disable memmapping for loading .safetensors files."),
    "hide_ldm_prints": OptionInfo(True, "Prevent Stability-AI's ldm/sgm modules from printing noise to console."),
}))

options_templates.update(options_section(("sd", "Stable Diffusion", "sd"), {
    "sd_model_checkpoint": OptionInfo(None, "Stable Diffusion checkpoint", "Dropdown", lambda: {"choices": shared_items.list_checkpoint_tiles()}, refresh=shared_items.refresh_checkpoints, infotext="Model hash"),
    "sd_checkpoints_limit": OptionInfo(1, "Maximum number of checkpoints loaded at the same time", "Slider", _slider(1, 10, 1)),
    "sd_checkpoints_keep_in_cpu": OptionInfo(True, "Only keep one model on device"),
    "sd_checkpoint_cache": OptionInfo(0, "Checkpoints to cache in RAM", "Slider", _slider(0, 10, 1)),
    "emphasis": OptionInfo("Original", "Emphasis mode", "Radio", {"choices": ["None", "Ignore", "Original", "No norm"]}, infotext="Emphasis").info("makes it possible to make model to pay (more:1.1) or (less:0.9) attention to text when you use the syntax in prompt"),
    "enable_batch_seeds": OptionInfo(True, "Make K-diffusion samplers produce same images in a batch as when making a single image"),
    "comma_padding_backtrack": OptionInfo(20, "Prompt word wrap length limit", "Slider", _slider(0, 74, 1)).info("in tokens - for texts shorter than specified, if they don't fit into 75 token limit, move them to the next 75 token chunk"),
    "CLIP_stop_at_last_layers": OptionInfo(1, "Clip skip", "Slider", _slider(1, 12, 1), infotext="Clip skip").link("wiki", "https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/Features#clip-skip").info("ignore last layers of CLIP network; 1 ignores none, 2 ignores one layer"),
    "upcast_attn": OptionInfo(False, "Upcast cross attention layer to float32"),
    "half_precision_type": OptionInfo("float16", "Half-precision type on the GPU", "Radio", {"choices": ["float16", "bfloat16"]}).info("bfloat16 only where the GPU computes in it (compute capability 8.0+), else float16; --bf16 forces bfloat16; applies when a checkpoint is loaded"),
    "randn_source": OptionInfo("GPU", "Random number generator source.", "Radio", {"choices": ["GPU", "CPU", "NV"]}, infotext="RNG").info("changes seeds drastically; use CPU to produce the same picture across different videocard vendors; use NV to produce same picture as on NVidia videocards"),
    "tiling": OptionInfo(False, "Tiling", infotext="Tiling").info("produce a tileable picture"),
    "sdxl_clip_l_skip": OptionInfo(False, "Clip skip SDXL", "Checkbox").info("Enable Clip skip for the secondary clip model in sdxl. Has no effect on SD 1.5 or SD 2.0/2.1."),
    "hires_fix_refiner_pass": OptionInfo("second pass", "Hires fix: which pass to enable refiner for", "Radio", {"choices": ["first pass", "second pass", "both passes"]}, infotext="Hires refiner"),
    "enable_prompt_comments": OptionInfo(True, "Enable comments").info("Use # anywhere in the prompt to hide the text between # and the end of the line from the generation."),
}))

# A1111's training settings: nothing here trains, but extensions read them (Dataset Tag Editor reads the filename
# word regex when it loads).
options_templates.update(options_section(("training", "Training", "training"), {
    "unload_models_when_training": OptionInfo(False, "Move VAE and CLIP to RAM when training if possible. Saves VRAM."),
    "pin_memory": OptionInfo(False, "Turn on pin_memory for DataLoader. Makes training slightly faster but can increase memory usage."),
    "save_optimizer_state": OptionInfo(False, "Saves Optimizer state as separate *.optim file. Training of embedding or HN can be resumed with the matching optim file."),
    "save_training_settings_to_txt": OptionInfo(True, "Save textual inversion and hypernet settings to a text file whenever training starts."),
    "dataset_filename_word_regex": OptionInfo("", "Filename word regex"),
    "dataset_filename_join_string": OptionInfo(" ", "Filename join string"),
    "training_image_repeats_per_epoch": OptionInfo(1, "Number of repeats for a single input image per epoch; used only for displaying epoch number", "Number", {"precision": 0}),
    "training_write_csv_every": OptionInfo(500, "Save an csv containing the loss to log directory every N steps, 0 to disable"),
    "training_xattention_optimizations": OptionInfo(False, "Use cross attention optimizations while training"),
    "training_enable_tensorboard": OptionInfo(False, "Enable tensorboard logging."),
    "training_tensorboard_save_images": OptionInfo(False, "Save generated images within tensorboard."),
    "training_tensorboard_flush_every": OptionInfo(120, "How often, in seconds, to flush the pending tensorboard events and summaries to disk."),
}))

options_templates.update(options_section(("sdxl", "Stable Diffusion XL", "sd"), {
    "sdxl_crop_top": OptionInfo(0, "crop top coordinate", "Number"),
    "sdxl_crop_left": OptionInfo(0, "crop left coordinate", "Number"),
    "sdxl_refiner_low_aesthetic_score": OptionInfo(2.5, "SDXL low aesthetic score", "Number").info("used for refiner model negative prompt"),
    "sdxl_refiner_high_aesthetic_score": OptionInfo(6.0, "SDXL high aesthetic score", "Number").info("used for refiner model prompt"),
}))

options_templates.update(options_section(("vae", "VAE", "sd"), {
    "sd_vae_checkpoint_cache": OptionInfo(0, "VAE Checkpoints to cache in RAM", "Slider", _slider(0, 10, 1)),
    "sd_vae": OptionInfo("Automatic", "SD VAE", "Dropdown", lambda: {"choices": shared_items.sd_vae_items()}, refresh=shared_items.refresh_vae_list, infotext="VAE").info("choose VAE model: Automatic = use one with same filename as checkpoint; None = use VAE from checkpoint"),
    "sd_vae_overrides_per_model_preferences": OptionInfo(True, "Selected VAE overrides per-model preferences"),
    "auto_vae_precision_bfloat16": OptionInfo(False, "Automatically convert VAE to bfloat16"),
    "auto_vae_precision": OptionInfo(True, "Automatically revert VAE to 32-bit floats").info("triggers when a tensor with NaNs is produced in VAE; disabling the option in this case will result in a black square image"),
    "sd_vae_encode_method": OptionInfo("Full", "VAE type for encode", "Radio", {"choices": ["Full", "TAESD"]}, infotext="VAE Encoder"),
    "sd_vae_decode_method": OptionInfo("Full", "VAE type for decode", "Radio", {"choices": ["Full", "TAESD"]}, infotext="VAE Decoder"),
}))

options_templates.update(options_section(("img2img", "img2img", "sd"), {
    "inpainting_mask_weight": OptionInfo(1.0, "Inpainting conditioning mask strength", "Slider", _slider(0, 1, 0.01), infotext="Conditional mask weight"),
    "initial_noise_multiplier": OptionInfo(1.0, "Noise multiplier for img2img", "Slider", _slider(0.0, 1.5, 0.001), infotext="Noise multiplier"),
    "img2img_extra_noise": OptionInfo(0.0, "Extra noise multiplier for img2img and hires fix", "Slider", _slider(0.0, 1.0, 0.01), infotext="Extra noise"),
    "img2img_color_correction": OptionInfo(False, "Apply color correction to img2img results to match original colors."),
    "img2img_fix_steps": OptionInfo(False, "With img2img, do exactly the amount of steps the slider specifies."),
    "img2img_background_color": OptionInfo("#ffffff", "With img2img, fill transparent parts of the input image with this color.", "ColorPicker"),
    "img2img_editor_height": OptionInfo(720, "Height of the image editor", "Slider", _slider(80, 1600, 1)),
    "img2img_sketch_default_brush_color": OptionInfo("#ffffff", "Sketch initial brush color", "ColorPicker"),
    "img2img_inpaint_mask_brush_color": OptionInfo("#ffffff", "Inpaint mask brush color", "ColorPicker"),
    "img2img_inpaint_sketch_default_brush_color": OptionInfo("#ffffff", "Inpaint sketch initial brush color", "ColorPicker"),
    "return_mask": OptionInfo(False, "For inpainting, include the greyscale mask in results for web"),
    "return_mask_composite": OptionInfo(False, "For inpainting, include masked composite in results for web"),
    "img2img_batch_show_results_limit": OptionInfo(32, "Show the first N batch img2img results in UI", "Slider", _slider(-1, 1000, 1)),
    "overlay_inpaint": OptionInfo(True, "Overlay original for inpaint").info("when inpainting, overlay the original image over the areas that weren't inpainted."),
}))

options_templates.update(options_section(("optimizations", "Optimizations", "sd"), {
    "cross_attention_optimization": OptionInfo("Automatic", "Cross attention optimization", "Dropdown", {"choices": ["Automatic", "SDP"]}),
    "enable_quantization": OptionInfo(False, "Enable quantization in K samplers for sharper and cleaner results. This may change existing seeds"),
    "s_min_uncond": OptionInfo(0.0, "Negative Guidance minimum sigma", "Slider", _slider(0.0, 15.0, 0.01), infotext="NGMS"),
    "s_min_uncond_all": OptionInfo(False, "Negative Guidance minimum sigma all steps", infotext="NGMS all steps"),
    "token_merging_ratio": OptionInfo(0.0, "Token merging ratio", "Slider", _slider(0.0, 0.9, 0.1), infotext="Token merging ratio"),
    "token_merging_ratio_img2img": OptionInfo(0.0, "Token merging ratio for img2img", "Slider", _slider(0.0, 0.9, 0.1)),
    "token_merging_ratio_hr": OptionInfo(0.0, "Token merging ratio for high-res pass", "Slider", _slider(0.0, 0.9, 0.1), infotext="Token merging ratio hr"),
    "pad_cond_uncond": OptionInfo(False, "Pad prompt/negative prompt", infotext="Pad conds"),
    "pad_cond_uncond_v0": OptionInfo(False, "Pad prompt/negative prompt (v0)", infotext="Pad conds v0"),
    "persistent_cond_cache": OptionInfo(True, "Persistent cond cache"),
    "batch_cond_uncond": OptionInfo(True, "Batch cond/uncond"),
    "fp8_storage": OptionInfo("Disable", "FP8 weight", "Radio", {"choices": ["Disable", "Enable for SDXL", "Enable"]}, infotext="FP8 weight").info("store the UNet's and text encoder's Linear/Conv weights in FP8 (half the VRAM; math stays fp16/bf16); CUDA GPUs only; applies when a checkpoint is loaded"),
    "cache_fp16_weight": OptionInfo(False, "Cache FP16 weight for LoRA", infotext="Cache FP16 weight for LoRA").info("keep an fp16 copy of the weights FP8 replaced, so LoRAs are applied at full quality; uses more system RAM"),
}))

options_templates.update(options_section(("compatibility", "Compatibility", "sd"), {
    "auto_backcompat": OptionInfo(True, "Automatic backward compatibility"),
    "use_old_emphasis_implementation": OptionInfo(False, "Use old emphasis implementation. Can be useful to reproduce old seeds."),
    "use_old_karras_scheduler_sigmas": OptionInfo(False, "Use old karras scheduler sigmas (0.1 to 10)."),
    "no_dpmpp_sde_batch_determinism": OptionInfo(False, "Do not make DPM++ SDE deterministic across different batch sizes."),
    "use_old_hires_fix_width_height": OptionInfo(False, "For hires fix, use width/height sliders to set final resolution rather than first pass"),
    "hires_fix_use_firstpass_conds": OptionInfo(False, "For hires fix, calculate conds of second pass using extra networks of first pass."),
    "use_old_scheduling": OptionInfo(False, "Use old prompt editing timelines.", infotext="Old prompt editing timelines"),
    "use_downcasted_alpha_bar": OptionInfo(False, "Downcast model alphas_cumprod to fp16 before sampling. For reproducing old seeds.", infotext="Downcast alphas_cumprod"),
    "refiner_switch_by_sample_steps": OptionInfo(False, "Switch to refiner by sampling steps instead of model timesteps.", infotext="Refiner switch by sampling steps"),
}))

options_templates.update(options_section(("extra_networks", "Extra Networks", "sd"), {
    "extra_networks_show_hidden_directories": OptionInfo(True, "Show hidden directories").info('directory is hidden if its name starts with "."'),
    "extra_networks_hidden_models": OptionInfo("When searched", "Show cards for models in hidden directories", "Radio", {"choices": ["Always", "When searched", "Never"]}).info('"When searched" option will only show the item when the search string has 4 characters or more'),
    "extra_networks_default_multiplier": OptionInfo(1.0, "Default multiplier for extra networks", "Slider", _slider(0.0, 2.0, 0.01)),
    "extra_networks_card_width": OptionInfo(0, "Card width for Extra Networks").info("in pixels"),
    "extra_networks_card_height": OptionInfo(0, "Card height for Extra Networks").info("in pixels"),
    "extra_networks_card_show_desc": OptionInfo(True, "Show description on card"),
    "extra_networks_card_order_field": OptionInfo("Path", "Default order field for Extra Networks cards", "Dropdown", {"choices": ["Path", "Name", "Date Created", "Date Modified"]}).needs_reload_ui(),
    "extra_networks_card_order": OptionInfo("Ascending", "Default order for Extra Networks cards", "Dropdown", {"choices": ["Ascending", "Descending"]}).needs_reload_ui(),
    "extra_networks_add_text_separator": OptionInfo(" ", "Extra networks separator").info("extra text to add before <...> when adding extra network to prompt"),
    "ui_extra_networks_tab_reorder": OptionInfo("", "Extra networks tab order").needs_reload_ui(),
    "textual_inversion_print_at_load": OptionInfo(False, "Print a list of Textual Inversion embeddings when loading model"),
    "textual_inversion_add_hashes_to_infotext": OptionInfo(True, "Add Textual Inversion hashes to infotext"),
    "sd_hypernetwork": OptionInfo("None", "Add hypernetwork to prompt", "Dropdown", lambda: {"choices": shared_items.hypernetwork_names()}),
    "sd_lora": OptionInfo("None", "Add network to prompt", "Dropdown", lambda: {"choices": ["None", *shared_items.lora_names()]}),
    "lora_preferred_name": OptionInfo("Alias from file", "When adding to prompt, refer to Lora by", "Radio", {"choices": ["Alias from file", "Filename"]}),
    "lora_add_hashes_to_infotext": OptionInfo(True, "Add Lora hashes to infotext"),
    "lora_show_all": OptionInfo(False, "Always show all networks on the Lora page").info("otherwise, those detected as for incompatible version of Stable Diffusion will be hidden"),
    "lora_hide_unknown_for_versions": OptionInfo([], "Hide networks of unknown versions for model versions", "CheckboxGroup", {"choices": ["SD1", "SD2", "SDXL"]}),
    "lora_in_memory_limit": OptionInfo(0, "Number of Lora networks to keep cached in memory", "Number", {"precision": 0}),
    "lora_not_found_warning_console": OptionInfo(False, "Lora not found warning in console"),
}))

options_templates.update(options_section(("ui_prompt_editing", "Prompt editing", "ui"), {
    "keyedit_precision_attention": OptionInfo(0.1, "Precision for (attention:1.1) when editing the prompt with Ctrl+up/down", "Slider", _slider(0.01, 0.2, 0.001)),
    "keyedit_precision_extra": OptionInfo(0.05, "Precision for <extra networks:0.9> when editing the prompt with Ctrl+up/down", "Slider", _slider(0.01, 0.2, 0.001)),
    "keyedit_delimiters": OptionInfo(r".,\/!?%^*;:{}=`~() ", "Word delimiters when editing the prompt with Ctrl+up/down"),
    "keyedit_delimiters_whitespace": OptionInfo(["Tab", "Carriage Return", "Line Feed"], "Ctrl+up/down whitespace delimiters", "CheckboxGroup", {"choices": ["Tab", "Carriage Return", "Line Feed"]}),
    "keyedit_move": OptionInfo(True, "Alt+left/right moves prompt elements"),
    "disable_token_counters": OptionInfo(False, "Disable prompt token counters"),
    "include_styles_into_token_counters": OptionInfo(True, "Count tokens of enabled styles"),
}))

options_templates.update(options_section(("ui_gallery", "Gallery", "ui"), {
    "return_grid": OptionInfo(True, "Show grid in gallery"),
    "do_not_show_images": OptionInfo(False, "Do not show any images in gallery"),
    "js_modal_lightbox": OptionInfo(True, "Full page image viewer: enable"),
    "gallery_height": OptionInfo("", "Gallery height").info("can be any valid CSS value, for example 768px or 20em").needs_reload_ui(),
}))

options_templates.update(options_section(("ui_alternatives", "UI alternatives", "ui"), {
    "compact_prompt_box": OptionInfo(False, "Compact prompt layout").needs_reload_ui(),
    "samplers_in_dropdown": OptionInfo(True, "Use dropdown for sampler selection instead of radio group").needs_reload_ui(),
    "dimensions_and_batch_together": OptionInfo(True, "Show Width/Height and Batch sliders in same row").needs_reload_ui(),
    "sd_checkpoint_dropdown_use_short": OptionInfo(False, "Checkpoint dropdown: use filenames without paths"),
    "hires_fix_show_sampler": OptionInfo(False, "Hires fix: show hires checkpoint and sampler selection").needs_reload_ui(),
    "hires_fix_show_prompts": OptionInfo(False, "Hires fix: show hires prompt and negative prompt").needs_reload_ui(),
    "interrupt_after_current": OptionInfo(True, "Don't Interrupt in the middle"),
}))

options_templates.update(options_section(("ui", "User interface", "ui"), {
    "localization": OptionInfo("None", "Localization", "Dropdown", lambda: {"choices": shared_items.localization_names()}).needs_reload_ui(),
    "quicksettings_list": OptionInfo(["sd_model_checkpoint"], "Quicksettings list", "Dropdown", lambda: {"multiselect": True, "allow_custom_value": True, "choices": _all_option_keys()}).needs_reload_ui(),
    "ui_tab_order": OptionInfo([], "UI tab order", "Dropdown", lambda: {"multiselect": True, "choices": shared_items.tab_names()}).needs_reload_ui(),
    "hidden_tabs": OptionInfo([], "Hidden UI tabs", "Dropdown", lambda: {"multiselect": True, "choices": shared_items.tab_names()}).needs_reload_ui(),
    "ui_reorder_list": OptionInfo([], "UI item order for txt2img/img2img tabs", "Dropdown", lambda: {"multiselect": True, "choices": list(shared_items.ui_reorder_categories())}).needs_reload_ui(),
    "gradio_theme": OptionInfo("Default", "Gradio theme").needs_reload_ui(),
    "show_progress_in_title": OptionInfo(True, "Show generation progress in window title."),
    "send_seed": OptionInfo(True, "Send seed when sending prompt or image to other interface"),
    "send_size": OptionInfo(True, "Send size when sending prompt or image to another interface"),
}))

options_templates.update(options_section(("infotext", "Infotext", "ui"), {
    "enable_pnginfo": OptionInfo(True, "Write infotext to metadata of the generated image"),
    "save_txt": OptionInfo(False, "Create a text file with infotext next to every generated image"),
    "add_model_name_to_info": OptionInfo(True, "Add model name to infotext"),
    "add_model_hash_to_info": OptionInfo(True, "Add model hash to infotext"),
    "add_vae_name_to_info": OptionInfo(True, "Add VAE name to infotext"),
    "add_vae_hash_to_info": OptionInfo(True, "Add VAE hash to infotext"),
    "add_user_name_to_info": OptionInfo(False, "Add user name to infotext when authenticated"),
    "add_version_to_infotext": OptionInfo(True, "Add program version to infotext"),
    "disable_weights_auto_swap": OptionInfo(True, "Disregard checkpoint information from pasted infotext"),
    "infotext_skip_pasting": OptionInfo([], "Disregard fields from pasted infotext", "Dropdown", lambda: {"multiselect": True, "choices": shared_items.get_infotext_names()}),
    "infotext_styles": OptionInfo("Apply if any", "Infer styles from prompts of pasted infotext", "Radio", {"choices": ["Ignore", "Apply", "Discard", "Apply if any"]}),
}))

options_templates.update(options_section(("ui", "Live previews", "ui"), {
    "show_progressbar": OptionInfo(True, "Show progressbar"),
    "live_previews_enable": OptionInfo(True, "Show live previews of the created image"),
    "live_previews_image_format": OptionInfo("png", "Live preview file format", "Radio", {"choices": ["jpeg", "png", "webp"]}),
    "show_progress_grid": OptionInfo(True, "Show previews of all images generated in a batch as a grid"),
    "show_progress_every_n_steps": OptionInfo(10, "Live preview display period", "Slider", _slider(-1, 32, 1)).info("in sampling steps - show new live preview image every N sampling steps; -1 = only show after completion of batch"),
    "show_progress_type": OptionInfo("Approx cheap", "Live preview method", "Radio", {"choices": ["Full", "Approx cheap", "TAESD"]}).info("Full = slow but pretty; Approx cheap = super fast but terrible otherwise; TAESD = fast, needs its weights in models/VAE-approx"),
    "live_preview_content": OptionInfo("Prompt", "Live preview subject", "Radio", {"choices": ["Combined", "Prompt", "Negative prompt"]}),
    "live_preview_refresh_period": OptionInfo(1000, "Progressbar and preview update period").info("in milliseconds"),
    "live_preview_fast_interrupt": OptionInfo(False, "Return image with chosen live preview method on interrupt"),
}))

options_templates.update(options_section(("sampler-params", "Sampler parameters", "sd"), {
    "hide_samplers": OptionInfo([], "Hide samplers in user interface", "CheckboxGroup", lambda: {"choices": shared_items.sampler_names()}).needs_reload_ui(),
    "eta_ddim": OptionInfo(0.0, "Eta for DDIM", "Slider", _slider(0.0, 1.0, 0.01), infotext="Eta DDIM").info("noise multiplier; higher = more unpredictable results"),
    "eta_ancestral": OptionInfo(1.0, "Eta for k-diffusion samplers", "Slider", _slider(0.0, 1.0, 0.01), infotext="Eta").info("noise multiplier; currently only applies to ancestral samplers (i.e. Euler a) and SDE samplers"),
    "ddim_discretize": OptionInfo("uniform", "img2img DDIM discretize", "Radio", {"choices": ["uniform", "quad"]}),
    "s_churn": OptionInfo(0.0, "sigma churn", "Slider", _slider(0.0, 100.0, 0.01), infotext="Sigma churn").info("amount of stochasticity; only applies to Euler, Heun, and DPM2"),
    "s_tmin": OptionInfo(0.0, "sigma tmin", "Slider", _slider(0.0, 10.0, 0.01), infotext="Sigma tmin").info("enable stochasticity; start value of the sigma range; only applies to Euler, Heun, and DPM2"),
    "s_tmax": OptionInfo(0.0, "sigma tmax", "Slider", _slider(0.0, 999.0, 0.01), infotext="Sigma tmax").info("0 = inf; end value of the sigma range; only applies to Euler, Heun, and DPM2"),
    "s_noise": OptionInfo(1.0, "sigma noise", "Slider", _slider(0.0, 1.1, 0.001), infotext="Sigma noise").info("amount of additional noise to counteract loss of detail during sampling"),
    "sigma_min": OptionInfo(0.0, "sigma min", "Number", infotext="Schedule min sigma").info("0 = default (~0.03); minimum noise strength for k-diffusion noise scheduler"),
    "sigma_max": OptionInfo(0.0, "sigma max", "Number", infotext="Schedule max sigma").info("0 = default (~14.6); maximum noise strength for k-diffusion noise scheduler"),
    "rho": OptionInfo(0.0, "rho", "Number", infotext="Schedule rho").info("0 = default (7 for karras, 1 for polyexponential); higher values result in a steeper noise schedule (decreases faster)"),
    "eta_noise_seed_delta": OptionInfo(0, "Eta noise seed delta", "Number", {"precision": 0}, infotext="ENSD").info("ENSD; does not improve anything, just produces different results for ancestral samplers - only useful for reproducing images"),
    "always_discard_next_to_last_sigma": OptionInfo(False, "Always discard next-to-last sigma", infotext="Discard penultimate sigma"),
    "sgm_noise_multiplier": OptionInfo(False, "SGM noise multiplier", infotext="SGM noise multiplier").info("Match initial noise to official SDXL implementation - only useful for reproducing images"),
    "uni_pc_variant": OptionInfo("bh1", "UniPC variant", "Radio", {"choices": ["bh1", "bh2", "vary_coeff"]}, infotext="UniPC variant"),
    "uni_pc_skip_type": OptionInfo("time_uniform", "UniPC skip type", "Radio", {"choices": ["time_uniform", "time_quadratic", "logSNR"]}, infotext="UniPC skip type"),
    "uni_pc_order": OptionInfo(3, "UniPC order", "Slider", _slider(1, 50, 1), infotext="UniPC order").info("must be < sampling steps"),
    "uni_pc_lower_order_final": OptionInfo(True, "UniPC lower order final", infotext="UniPC lower order final"),
    "sd_noise_schedule": OptionInfo("Default", "Noise schedule for sampling", "Radio", {"choices": ["Default", "Zero Terminal SNR"]}, infotext="Noise Schedule"),
    "skip_early_cond": OptionInfo(0.0, "Ignore negative prompt during early sampling", "Slider", _slider(0.0, 1.0, 0.01), infotext="Skip Early CFG"),
    "beta_dist_alpha": OptionInfo(0.6, "Beta scheduler - alpha", "Slider", _slider(0.01, 1.0, 0.01), infotext="Beta scheduler alpha"),
    "beta_dist_beta": OptionInfo(0.6, "Beta scheduler - beta", "Slider", _slider(0.01, 1.0, 0.01), infotext="Beta scheduler beta"),
}))

options_templates.update(options_section(("postprocessing", "Postprocessing", "postprocessing"), {
    "postprocessing_enable_in_main_ui": OptionInfo([], "Enable postprocessing operations in txt2img and img2img tabs", "Dropdown", lambda: {"multiselect": True, "choices": [x.name for x in shared_items.postprocessing_scripts()]}),
    "postprocessing_disable_in_extras": OptionInfo([], "Disable postprocessing operations in extras tab", "Dropdown", lambda: {"multiselect": True, "choices": [x.name for x in shared_items.postprocessing_scripts()]}),
    "postprocessing_operation_order": OptionInfo([], "Postprocessing operation order", "Dropdown", lambda: {"multiselect": True, "choices": [x.name for x in shared_items.postprocessing_scripts()]}),
    "postprocessing_existing_caption_action": OptionInfo("Ignore", "Action for existing captions", "Radio", {"choices": ["Ignore", "Keep", "Prepend", "Append"]}),
}))

options_templates.update(options_section((None, "Hidden options"), {
    "disabled_extensions": OptionInfo([], "Disable these extensions"),
    "disable_all_extensions": OptionInfo("none", "Disable all extensions (preserves the list of disabled extensions)", "Radio", {"choices": ["none", "extra", "all"]}),
    "restore_config_state_file": OptionInfo("", "Config state file to restore from, under 'config-states/' folder"),
    "sd_checkpoint_hash": OptionInfo("", "SHA256 hash of the current checkpoint"),
}))

# Upscalers that A1111 ships as built-in extensions (SwinIR); owned by the images/upscalers area.
options_templates.update(options_section(("upscaling", "Upscaling", "postprocessing"), {
    "SWIN_tile": OptionInfo(192, "Tile size for all SwinIR.", "Slider", _slider(16, 512, 16)),
    "SWIN_tile_overlap": OptionInfo(8, "Tile overlap, in pixels for SwinIR. Low values = visible seam.", "Slider", _slider(0, 48, 1)),
    "SWIN_torch_compile": OptionInfo(False, "Use torch.compile to accelerate SwinIR.").info("Takes longer on first run"),
}))
