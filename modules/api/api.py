"""The REST API, A1111's `/sdapi/v1` routes (A1111: modules.api.api). Generation goes through the same engine entry
points and the same job queue as the web UI; lists and settings come from the engine's own registries.

`Api(app)` adds the routes to a FastAPI app (the web UI's with --api, a bare one with --nowebui). Extensions import
`decode_base64_to_image` and `encode_pil_to_base64` from here.
"""
import asyncio
import base64
import binascii
import io
import math
import os
import threading

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from PIL import Image, PngImagePlugin
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from modules import errors, images, job_queue, processing_request, shared
from modules.api import listings, models, settings_api
from modules.processing_request import RequestError

MAX_IMAGE_BYTES = 64 * 1024 * 1024       # one base64-decoded image
MAX_IMAGE_PIXELS = 8192 * 8192           # one decoded image
MAX_REQUEST_PIXELS = 4 * MAX_IMAGE_PIXELS  # all the images of one request together


# ---------------------------------------------------------------------------------------------- images

class PixelBudget:
    """The pixels one request's images may decode to together: a body of many large images, each within the
    per-image limit (a plain 8192x8192 PNG is a few hundred KB), would otherwise be decoded until memory ran out."""

    def __init__(self):
        self.left = MAX_REQUEST_PIXELS

    def take(self, field, image):
        self.left -= image.width * image.height
        if self.left < 0:
            raise RequestError(field, f"{field}: the images of this request come to more than {MAX_REQUEST_PIXELS} "
                                      f"pixels together; send fewer or smaller images", 413)


def decode_base64_to_image(encoding: str, field: str = "image", budget: PixelBudget | None = None) -> Image.Image:
    """A base64 string (with or without a `data:image/...;base64,` prefix) -> PIL image; a bad or oversized image
    (or one past the request's `budget`) raises RequestError naming `field`. The size is checked from the header,
    before the pixels are decoded."""
    if not isinstance(encoding, str) or not encoding.strip():
        raise RequestError(field, f"{field} is empty: send the image as a base64 string")
    if encoding.startswith(("http://", "https://")):
        raise RequestError(field, f"{field}: image URLs are not fetched; send the image itself as base64")
    if encoding.startswith("data:image/"):
        encoding = encoding.split(";", 1)[1].split(",", 1)[1] if ";" in encoding and "," in encoding else ""
    if len(encoding) * 3 // 4 > MAX_IMAGE_BYTES:
        raise RequestError(field, f"{field} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB", 413)
    try:
        data = base64.b64decode(encoding, validate=False)
    except (binascii.Error, ValueError):
        raise RequestError(field, f"{field} is not valid base64") from None
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise RequestError(field, f"{field} has more than {MAX_IMAGE_PIXELS} pixels", 413) from None
    except Exception:
        raise RequestError(field, f"{field} is not an image this server can read (PNG, JPEG, WebP, ...)") from None
    if image.width * image.height > MAX_IMAGE_PIXELS:
        raise RequestError(field, f"{field} is {image.width}x{image.height}: more than {MAX_IMAGE_PIXELS} pixels", 413)
    if budget is not None:
        budget.take(field, image)
    try:
        image.load()  # the pixels now: a truncated or corrupt file is this field's error, not the job's
        return images.fix_image(image)  # (and the EXIF orientation)
    except Exception as e:
        raise RequestError(field, f"{field} could not be decoded: {e}") from None


def encode_pil_to_base64(image) -> bytes:
    """An image as base64 bytes in the samples_format setting; PNG keeps text chunks, JPEG/WebP carry the
    infotext in EXIF UserComment (A1111)."""
    if isinstance(image, str):
        return image.encode() if not isinstance(image, bytes) else image
    with io.BytesIO() as output_bytes:
        fmt = (shared.opts.samples_format or "png").lower()
        if fmt == "png":
            metadata = None
            for key, value in image.info.items():
                if isinstance(key, str) and isinstance(value, str):
                    metadata = metadata or PngImagePlugin.PngInfo()
                    metadata.add_text(key, value)
            image.save(output_bytes, format="PNG", pnginfo=metadata)
        elif fmt in ("jpg", "jpeg", "webp"):
            import piexif
            import piexif.helper
            if image.mode in ("RGBA", "P", "LA"):
                image = image.convert("RGB")
            parameters = image.info.get("parameters", None)
            exif_bytes = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(parameters or "", encoding="unicode")}})
            save_format = "JPEG" if fmt in ("jpg", "jpeg") else "WEBP"
            image.save(output_bytes, format=save_format, exif=exif_bytes, quality=shared.opts.jpeg_quality)
        elif images.saver_format(fmt) is not None:  # another format the engine saves files in (gif, bmp, ...)
            image.save(output_bytes, format=images.saver_format(fmt))
        else:
            raise HTTPException(status_code=500, detail=f"Invalid image format {fmt!r} in the samples_format setting")
        return base64.b64encode(output_bytes.getvalue())


def _b64(image) -> str:
    return encode_pil_to_base64(image).decode("ascii")


# ---------------------------------------------------------------------------------------------- errors

def error_response(status_code: int, error: str, detail, errors_text: str):
    """A1111's error body: {"error", "detail", "body", "errors"}."""
    return JSONResponse(status_code=status_code, content={"error": error, "detail": detail, "body": "", "errors": errors_text})


def request_error_response(e: RequestError):
    detail = [{"loc": ["body", *e.field.split(".")], "msg": e.message, "type": "value_error"}] if e.status_code == 422 else e.message
    text = e.message if e.message.startswith(e.field) else f"{e.field}: {e.message}"
    return error_response(e.status_code, "RequestError", detail, text)


class ApiRoute(APIRoute):
    """Answers of the API's own routes: bad fields name the field, exceptions become A1111's error body, and the
    server goes on (the web UI's own routes are left as Gradio answers them)."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def answer(request: Request):
            try:
                return await handler(request)
            except RequestValidationError as e:
                problems = e.errors()
                text = "; ".join(f"{'.'.join(str(x) for x in p.get('loc', ()))}: {p.get('msg')}" for p in problems)
                return JSONResponse(status_code=422, content={"error": "RequestValidationError", "detail": jsonable(problems), "body": "", "errors": text})
            except RequestError as e:
                return request_error_response(e)
            except StarletteHTTPException as e:  # FastAPI's own (a body that is not UTF-8 JSON) and ours
                detail = e.detail
                if e.status_code == 400 and isinstance(e.__cause__, UnicodeDecodeError):
                    detail = f"the request body is not UTF-8 JSON: {e.__cause__}"
                return error_response(e.status_code, "HTTPException", detail, f"{e.status_code}: {detail}")
            except job_queue.TaskIdInUse as e:
                return error_response(409, type(e).__name__, str(e), str(e))
            except job_queue.JobCancelled as e:
                return error_response(409, type(e).__name__, str(e), str(e))
            except Exception as e:
                errors.report(f"API error: {request.method} {request.url.path}", exc_info=True)
                return error_response(500, type(e).__name__, "", str(e))

        return answer


def jsonable(problems):
    """Validation problems as JSON; the bad inputs they quote may be NaN or Infinity, which JSON cannot hold."""
    from fastapi.encoders import jsonable_encoder
    return _finite(jsonable_encoder(problems, custom_encoder={Exception: str, bytes: lambda b: b.decode("utf8", "replace")}))


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def not_available(what: str, why: str):
    raise HTTPException(status_code=501, detail=f"{what} is not available in this web UI: {why}")


# ---------------------------------------------------------------------------------------------- requests

# Infotext keys -> request fields, for the `infotext` request field (A1111's paste fields with an api name).
INFOTEXT_FIELDS = {
    "Prompt": "prompt", "Negative prompt": "negative_prompt", "Steps": "steps", "Sampler": "sampler_name",
    "Schedule type": "scheduler", "CFG scale": "cfg_scale", "Image CFG scale": "image_cfg_scale", "Seed": "seed",
    "Size-1": "width", "Size-2": "height", "Batch size": "batch_size", "Variation seed": "subseed",
    "Variation seed strength": "subseed_strength", "Seed resize from-1": "seed_resize_from_w",
    "Seed resize from-2": "seed_resize_from_h", "Denoising strength": "denoising_strength",
    "Hires upscale": "hr_scale", "Hires upscaler": "hr_upscaler", "Hires steps": "hr_second_pass_steps",
    "Hires resize-1": "hr_resize_x", "Hires resize-2": "hr_resize_y", "Hires sampler": "hr_sampler_name",
    "Hires schedule type": "hr_scheduler", "Hires checkpoint": "hr_checkpoint_name", "Hires prompt": "hr_prompt",
    "Hires negative prompt": "hr_negative_prompt", "Mask blur": "mask_blur", "Styles array": "styles",
    "Refiner": "refiner_checkpoint", "Refiner switch at": "refiner_switch_at",
}


def apply_infotext(body: dict, set_fields: set, infotext: str) -> dict:
    """Fill the fields the request did not set from an infotext; its settings go into override_settings. Returns
    the parsed parameters."""
    from modules import infotext_utils, script_callbacks
    params = infotext_utils.parse_generation_parameters(infotext)
    script_callbacks.infotext_pasted_callback(infotext, params)
    for key, name in INFOTEXT_FIELDS.items():
        if name in body and name not in set_fields and params.get(key) is not None:
            body[name] = params[key]
    if "enable_hr" in body and "enable_hr" not in set_fields and "Denoising strength" in params and any(
            k in params for k in ("Hires upscale", "Hires upscaler", "Hires resize-1")):
        body["enable_hr"] = True
    override = dict(body.get("override_settings") or {})
    for _, setting_name, value in infotext_utils.get_override_settings(params):
        override.setdefault(setting_name, value)
    body["override_settings"] = override
    return params


def script_args_from_infotext(kind: str, params: dict) -> dict:
    """{script_args position: value} for the scripts' controls an infotext mentions (their infotext_fields), cast to
    the control's type as pasting into the page would."""
    from modules import infotext_utils
    runner = processing_request.script_runner(kind)
    if runner is None:
        return {}
    positions = {id(control): i for i, control in enumerate(runner.inputs or []) if control is not None}
    found = {}
    for control, key in runner.infotext_fields or []:
        if id(control) not in positions:
            continue
        value = key(params) if callable(key) else params.get(key)
        if value is None or isinstance(value, dict):
            continue
        value = infotext_utils.cast_paste_value(value, getattr(control, "value", None))
        if value is not infotext_utils.KEEP:
            found[positions[id(control)]] = value
    return found


def generation_request(kind: str, req) -> tuple[dict, bool, str | None]:
    """(normalised engine request, send_images, task id) for a txt2img/img2img API request."""
    body = req.model_dump()
    infotext_args = {}
    if body.get("infotext"):
        params = apply_infotext(body, set(req.model_fields_set), body["infotext"])
        infotext_args = script_args_from_infotext(kind, params)
    script_args = processing_request.script_args_from_api(kind, body.pop("script_name"), body.pop("script_args"),
                                                           body.pop("alwayson_scripts"), infotext_args)
    send_images, save_images = body.pop("send_images") is not False, bool(body.pop("save_images"))
    body.pop("infotext")
    body.pop("include_init_images", None)
    task_id = body.pop("force_task_id") or None
    body["do_not_save_samples"] = not save_images
    body["do_not_save_grid"] = not save_images
    budget = PixelBudget()
    if kind == "img2img":
        if not body.get("init_images"):
            raise HTTPException(status_code=404, detail="Init image not found")
        body["init_images"] = [decode_base64_to_image(x, f"init_images[{i}]", budget) for i, x in enumerate(body["init_images"])]
        for name in ("mask", "latent_mask"):
            body[name] = decode_base64_to_image(body[name], name, budget) if body.get(name) else None  # "" is no mask
    body["firstpass_image"] = decode_base64_to_image(body["firstpass_image"], "firstpass_image", budget) if body.get("firstpass_image") else None
    check_override_settings(body.get("override_settings") or {})
    request = processing_request.normalize(kind, {**body, "script_args": script_args})
    processing_request.check_answer_size(kind, request)
    request["is_api"] = True
    return request, send_images, task_id


def check_override_settings(override: dict):
    """A job's override_settings obey the same rules as setting them through POST /options, except that a setting
    this web UI does not have (one of A1111's or of an extension not installed here) is left out with a message in
    the log, as the engine always did: a client written for another UI still gets its images."""
    if not isinstance(override, dict):
        return  # normalize() answers this with the field named
    unknown = [key for key in override if key not in shared.opts.data_labels]
    if unknown:
        print(f"API: override_settings {', '.join(map(repr, unknown))} left out: there is no such setting here", flush=True)
        for key in unknown:
            del override[key]
    settings_api.check_settings(override, field="override_settings.")


def extras_script_args(req) -> dict:
    """The postprocessing scripts' args of an extras request (A1111's run_extras), upscaler names checked."""
    names = [x.name for x in shared.sd_upscalers]
    for field in ("upscaler_1", "upscaler_2"):
        value = getattr(req, field)
        if value not in names:
            match = next((n for n in names if n.lower() == str(value).lower()), None)
            if match is None:
                raise RequestError(field, f"Upscaler not found: {value!r}; valid upscalers: {', '.join(names)}", 400)
            setattr(req, field, match)
    return {
        "Upscale": {"upscale_enabled": True, "upscale_mode": req.resize_mode, "upscale_by": req.upscaling_resize,
                    "max_side_length": 0, "upscale_to_width": req.upscaling_resize_w,
                    "upscale_to_height": req.upscaling_resize_h, "upscale_crop": req.upscaling_crop,
                    "upscaler_1_name": req.upscaler_1, "upscaler_2_name": req.upscaler_2,
                    "upscaler_2_visibility": req.extras_upscaler_2_visibility},
        "GFPGAN": {"enable": True, "gfpgan_visibility": req.gfpgan_visibility},
        "CodeFormer": {"enable": True, "codeformer_visibility": req.codeformer_visibility, "codeformer_weight": req.codeformer_weight},
    }


def check_extras_size(req, image, field):
    """The upscaled size, refused before anything is allocated when it is absurd."""
    if req.resize_mode == 0:
        width, height = int(image.width * req.upscaling_resize), int(image.height * req.upscaling_resize)
    else:
        width, height = req.upscaling_resize_w, req.upscaling_resize_h
    if max(width, height) > processing_request.MAX_SIDE or width * height > processing_request.MAX_BATCH_PIXELS:
        raise RequestError("upscaling_resize", f"{field} would be upscaled to {width}x{height}: at most "
                                               f"{processing_request.MAX_SIDE} pixels a side")


# ---------------------------------------------------------------------------------------------- the routes

class Api:
    """The routes on `app`: /internal/* (the page's progress requests) always, /sdapi/v1/* when `sdapi`."""

    def __init__(self, app, queue_lock=None, *, sdapi=True):
        from modules import call_queue
        self.app = app
        self.queue_lock = queue_lock or call_queue.queue_lock
        self.queue = job_queue.queue
        self.router = APIRouter(route_class=ApiRoute)
        self._preview_cache = (None, None)
        self._preview_lock = threading.Lock()
        self.add_internal_routes()
        if sdapi:
            self.add_routes("/sdapi/v1")
        app.include_router(self.router)

    def add_api_route(self, path, endpoint, **kwargs):
        self.router.add_api_route(path, endpoint, **kwargs)

    def add_internal_routes(self):
        self.add_api_route("/internal/progress", self.internal_progress, methods=["POST"], response_model=models.InternalProgressResponse)
        self.add_api_route("/internal/pending-tasks", self.pending_tasks, methods=["GET"])
        self.add_api_route("/internal/ping", lambda: {}, methods=["GET"])

    def add_routes(self, p):
        add = self.add_api_route
        add(f"{p}/txt2img", self.text2imgapi, methods=["POST"], response_model=models.TextToImageResponse)
        add(f"{p}/img2img", self.img2imgapi, methods=["POST"], response_model=models.ImageToImageResponse)
        add(f"{p}/extra-single-image", self.extras_single_image_api, methods=["POST"], response_model=models.ExtrasSingleImageResponse)
        add(f"{p}/extra-batch-images", self.extras_batch_images_api, methods=["POST"], response_model=models.ExtrasBatchImagesResponse)
        add(f"{p}/png-info", self.pnginfoapi, methods=["POST"], response_model=models.PNGInfoResponse)
        add(f"{p}/progress", self.progressapi, methods=["GET"], response_model=models.ProgressResponse)
        add(f"{p}/interrogate", self.interrogateapi, methods=["POST"], response_model=models.InterrogateResponse)
        add(f"{p}/interrupt", self.interruptapi, methods=["POST"])
        add(f"{p}/skip", self.skip, methods=["POST"])
        add(f"{p}/cancel", self.cancelapi, methods=["POST"], response_model=models.CancelResponse)
        add(f"{p}/options", self.get_config, methods=["GET"], response_model=models.options_model())
        add(f"{p}/options", self.set_config, methods=["POST"])
        add(f"{p}/cmd-flags", self.get_cmd_flags, methods=["GET"], response_model=models.flags_model())
        add(f"{p}/samplers", listings.samplers, methods=["GET"], response_model=list[models.SamplerItem])
        add(f"{p}/schedulers", listings.schedulers, methods=["GET"], response_model=list[models.SchedulerItem])
        add(f"{p}/upscalers", listings.upscalers, methods=["GET"], response_model=list[models.UpscalerItem])
        add(f"{p}/latent-upscale-modes", listings.latent_upscale_modes, methods=["GET"], response_model=list[models.LatentUpscalerModeItem])
        add(f"{p}/sd-models", listings.sd_models, methods=["GET"], response_model=list[models.SDModelItem])
        add(f"{p}/sd-vae", listings.sd_vaes, methods=["GET"], response_model=list[models.SDVaeItem])
        add(f"{p}/hypernetworks", listings.hypernetworks, methods=["GET"], response_model=list[models.HypernetworkItem])
        add(f"{p}/face-restorers", listings.face_restorers, methods=["GET"], response_model=list[models.FaceRestorerItem])
        add(f"{p}/realesrgan-models", listings.realesrgan_models, methods=["GET"], response_model=list[models.RealesrganItem])
        add(f"{p}/prompt-styles", listings.prompt_styles, methods=["GET"], response_model=list[models.PromptStyleItem])
        add(f"{p}/embeddings", listings.embeddings, methods=["GET"], response_model=models.EmbeddingsResponse)
        add(f"{p}/loras", listings.loras, methods=["GET"], response_model=list[models.LoraItem])
        add(f"{p}/refresh-embeddings", self.refresh_embeddings, methods=["POST"])
        add(f"{p}/refresh-checkpoints", self.refresh_checkpoints, methods=["POST"])
        add(f"{p}/refresh-vae", self.refresh_vae, methods=["POST"])
        add(f"{p}/refresh-loras", self.refresh_loras, methods=["POST"])
        add(f"{p}/create/embedding", self.create_embedding, methods=["POST"], response_model=models.CreateResponse)
        add(f"{p}/create/hypernetwork", self.create_hypernetwork, methods=["POST"], response_model=models.CreateResponse)
        add(f"{p}/train/embedding", self.train_embedding, methods=["POST"], response_model=models.TrainResponse)
        add(f"{p}/train/hypernetwork", self.train_hypernetwork, methods=["POST"], response_model=models.TrainResponse)
        add(f"{p}/memory", listings.memory, methods=["GET"], response_model=models.MemoryResponse)
        add(f"{p}/unload-checkpoint", self.unloadapi, methods=["POST"])
        add(f"{p}/reload-checkpoint", self.reloadapi, methods=["POST"])
        add(f"{p}/scripts", listings.scripts_list, methods=["GET"], response_model=models.ScriptsList)
        add(f"{p}/script-info", listings.script_info, methods=["GET"], response_model=list[models.ScriptInfo])
        add(f"{p}/extensions", listings.extensions_list, methods=["GET"], response_model=list[models.ExtensionItem])
        if shared.cmd_opts.api_server_stop:
            add(f"{p}/server-kill", self.kill_webui, methods=["POST"])
            add(f"{p}/server-restart", self.restart_webui, methods=["POST"])
            add(f"{p}/server-stop", self.stop_webui, methods=["POST"])

    # -- generation

    async def _run(self, kind, request, task_id):
        job = self.queue.submit(kind, request, task_id=task_id, source="api")
        return await asyncio.wrap_future(job.future)

    async def text2imgapi(self, txt2imgreq: models.StableDiffusionTxt2ImgProcessingAPI):
        request, send_images, task_id = await run_in_threadpool(generation_request, "txt2img", txt2imgreq)
        result = await self._run("txt2img", request, task_id)
        images = await run_in_threadpool(lambda: [_b64(x) for x in result.images]) if send_images else []
        return models.TextToImageResponse(images=images, parameters=txt2imgreq.model_dump(), info=result.info)

    async def img2imgapi(self, img2imgreq: models.StableDiffusionImg2ImgProcessingAPI):
        request, send_images, task_id = await run_in_threadpool(generation_request, "img2img", img2imgreq)
        result = await self._run("img2img", request, task_id)
        images = await run_in_threadpool(lambda: [_b64(x) for x in result.images]) if send_images else []
        parameters = img2imgreq.model_dump()
        if not img2imgreq.include_init_images:
            parameters["init_images"] = None
            parameters["mask"] = None
        return models.ImageToImageResponse(images=images, parameters=parameters, info=result.info)

    async def extras_single_image_api(self, req: models.ExtrasSingleImageRequest):
        def prepare():
            image = decode_base64_to_image(req.image, "image")
            check_extras_size(req, image, "image")
            return {"extras_mode": 0, "image": image, "show_extras_results": True, "save_output": False,
                    "script_args": extras_script_args(req)}
        result = await self._run("extras", await run_in_threadpool(prepare), None)
        image = await run_in_threadpool(_b64, result.images[0]) if result.images else None
        return models.ExtrasSingleImageResponse(image=image, html_info=result.html_info)

    async def extras_batch_images_api(self, req: models.ExtrasBatchImagesRequest):
        def prepare():
            images, budget = [], PixelBudget()
            for i, item in enumerate(req.imageList):
                image = decode_base64_to_image(item.data, f"imageList[{i}].data", budget)
                check_extras_size(req, image, f"imageList[{i}]")
                images.append(image)
            return {"extras_mode": 1, "image_folder": images, "show_extras_results": True, "save_output": False,
                    "script_args": extras_script_args(req)}
        result = await self._run("extras", await run_in_threadpool(prepare), None)
        return models.ExtrasBatchImagesResponse(images=await run_in_threadpool(lambda: [_b64(x) for x in result.images]), html_info=result.html_info)

    def pnginfoapi(self, req: models.PNGInfoRequest):
        from modules import images, infotext_utils, script_callbacks
        if not req.image.strip():
            return models.PNGInfoResponse(info="", items={}, parameters={})
        image = decode_base64_to_image(req.image.strip(), "image")
        geninfo, items = images.read_info_from_image(image)
        geninfo = geninfo or ""
        params = infotext_utils.parse_generation_parameters(geninfo)
        script_callbacks.infotext_pasted_callback(geninfo, params)
        items = {k: v if isinstance(v, (str, int, float, bool)) or v is None else str(v) for k, v in items.items()}
        return models.PNGInfoResponse(info=geninfo, items=items, parameters=params)

    # -- progress and control

    def _encoded_preview(self, progress, fmt):
        """The live preview as base64, encoded once per preview however many clients ask."""
        key = (progress.task_id, progress.preview_id, fmt)
        with self._preview_lock:
            if self._preview_cache[0] == key:
                return self._preview_cache[1]
            image = progress.preview
            if fmt == "jpeg" and image.mode in ("RGBA", "P", "LA"):
                image = image.convert("RGB")
            with io.BytesIO() as buffer:
                image.save(buffer, format=fmt.upper())
                encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
            self._preview_cache = (key, encoded)
            return encoded

    def progressapi(self, skip_current_image: bool = False, id_task: str | None = None):
        """The running job's progress (or task `id_task`'s, our addition), A1111's ProgressResponse."""
        running = self.queue.running()
        task_id = id_task or (running[0].task_id if running else None)
        if task_id is None:
            return models.ProgressResponse(progress=0, eta_relative=0, state=shared.state.dict(), textinfo=shared.state.textinfo,
                                           queued=len(self.queue.pending()))
        progress = self.queue.progress(task_id)
        current_image = None
        if not skip_current_image and progress.preview is not None:
            current_image = self._encoded_preview(progress, "png")
        if progress.status != "running":
            state = {**shared.state.dict(), "job": "", "job_count": 0} if progress.status == "queued" else shared.state.dict()
            return models.ProgressResponse(progress=progress.fraction if progress.completed else 0, eta_relative=0,
                                           state=state, textinfo=progress.error or ("In queue" if progress.status == "queued" else None),
                                           current_task=task_id, queued=progress.queued)
        fraction = min(1.0, 0.01 + progress.fraction)
        return models.ProgressResponse(progress=fraction, eta_relative=progress.eta or 0, state=progress.state,
                                       current_image=current_image, textinfo=progress.textinfo, current_task=task_id,
                                       queued=progress.queued)

    def internal_progress(self, req: models.InternalProgressRequest):
        """The web UI's progress request for one task (A1111's /internal/progress)."""
        progress = self.queue.progress(req.id_task or "")
        if progress.status != "running":
            if progress.status == "queued":
                textinfo = f"In queue: {progress.queue_position + 1}/{progress.queued}"
            else:
                textinfo = progress.error or "Waiting..."
            return models.InternalProgressResponse(active=False, queued=progress.status == "queued", completed=progress.completed,
                                                   id_live_preview=-1, textinfo=textinfo, queue_position=progress.queue_position)
        live_preview, id_live_preview = None, req.id_live_preview
        if req.live_preview and shared.opts.live_previews_enable and progress.preview is not None and progress.preview_id != req.id_live_preview:
            fmt = (shared.opts.live_previews_image_format or "png").lower()
            live_preview = f"data:image/{fmt};base64,{self._encoded_preview(progress, fmt)}"
            id_live_preview = progress.preview_id
        return models.InternalProgressResponse(active=True, queued=False, completed=False, progress=progress.fraction,
                                               eta=progress.eta, live_preview=live_preview, id_live_preview=id_live_preview,
                                               textinfo=progress.textinfo)

    def pending_tasks(self):
        pending = [job.task_id for job in self.queue.pending()]
        return {"size": len(pending), "tasks": pending}

    def interruptapi(self):
        self.queue.interrupt()
        return {}

    def skip(self):
        self.queue.skip()

    def cancelapi(self, req: models.CancelRequest):
        """Our addition: a waiting job (its force_task_id) leaves the queue; a running one is interrupted."""
        running = self.queue.progress(req.id_task).status == "running"
        cancelled = self.queue.cancel(req.id_task)
        return models.CancelResponse(cancelled=cancelled, interrupted=running and not cancelled)

    def interrogateapi(self, req: models.InterrogateRequest):
        not_available("Interrogate", "no CLIP or DeepBooru interrogator ships with it (a caption model would have to be downloaded)")

    # -- settings

    def get_config(self):
        return settings_api.get_options()

    def set_config(self, req: dict):
        settings_api.set_options(req)

    def get_cmd_flags(self):
        return vars(shared.cmd_opts)

    # -- models

    def refresh_checkpoints(self):
        from modules import sd_models
        with self.queue_lock:
            sd_models.list_models()

    def refresh_vae(self):
        from modules import sd_vae
        with self.queue_lock:
            sd_vae.refresh_vae_list()

    def refresh_embeddings(self):
        from modules import sd_hijack
        with self.queue_lock:
            if shared.sd_model is not None:
                sd_hijack.model_hijack.embedding_db.load_textual_inversion_embeddings(force_reload=True, model=shared.sd_model)

    def refresh_loras(self):
        listings.refresh_loras()

    def unloadapi(self):
        """Drops the model once the jobs ahead are done (the next generation loads it again)."""
        from modules import call_queue, sd_models
        call_queue.run_queued(sd_models.unload_model_weights, kind="unload-checkpoint")
        return {}

    def reloadapi(self):
        from modules import call_queue, sd_models
        call_queue.run_queued(sd_models.model_data_get_sd_model, kind="reload-checkpoint")
        return {}

    def create_embedding(self, args: dict):
        not_available("Creating embeddings", "training is not part of this project")

    def create_hypernetwork(self, args: dict):
        not_available("Creating hypernetworks", "training is not part of this project")

    def train_embedding(self, args: dict):
        not_available("Training embeddings", "training is not part of this project")

    def train_hypernetwork(self, args: dict):
        not_available("Training hypernetworks", "training is not part of this project")

    # -- the server

    def kill_webui(self):
        threading.Timer(0.2, lambda: os._exit(0)).start()
        return {}

    def restart_webui(self):
        shared.state.request_restart()
        return {}

    def stop_webui(self):
        shared.state.server_command = "stop"
        return {}
