"""The REST API's request and response models, with A1111's class names (extensions `from modules.api.models import
*`). The txt2img/img2img request models are generated from the processing classes' fields, as A1111 does, so a new
processing field is a new request field; unknown request fields are ignored."""
import dataclasses
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from modules import processing_request

# Processing fields whose Python type is not JSON: they arrive as base64 images.
IMAGE_FIELDS = {"init_images": Optional[list[str]], "mask": Optional[str], "latent_mask": Optional[str],
                "firstpass_image": Optional[str]}
# A1111's extra request fields, after the processing fields.
API_EXTRAS = [
    ("sampler_index", Optional[str], "Euler"),
    ("script_name", Optional[str], None),
    ("script_args", Optional[list], []),
    ("send_images", Optional[bool], True),
    ("save_images", Optional[bool], False),
    ("alwayson_scripts", Optional[dict], {}),
    ("infotext", Optional[str], None),
]
_PLAIN_TYPES = {int, float, str, bool, list, dict}


def _json_type(annotation):
    if annotation in _PLAIN_TYPES:
        return annotation
    if annotation is list:
        return list
    return Any


class PydanticModelGenerator:
    """A pydantic model of a processing class's init fields (less A1111's not-allowed ones) plus extra fields."""

    def __init__(self, model_name: str, kind: str, additional_fields: list):
        self.model_name = model_name
        self.kind = kind
        self.additional_fields = additional_fields

    def generate_model(self):
        fields = {}
        for name, field in processing_request.request_fields(self.kind).items():
            default = field.default
            if default is dataclasses.MISSING or isinstance(default, property):  # mask_blur is a property
                default = None
            annotation = IMAGE_FIELDS.get(name, Optional[_json_type(field.type if not isinstance(field.type, str) else _named_type(field.type))])
            fields[name] = (annotation, Field(default=default, title=name))
        for name, annotation, default in self.additional_fields:
            fields[name] = (annotation, Field(default=default, title=name))
        return create_model(self.model_name, __config__=ConfigDict(extra="ignore", protected_namespaces=()), **fields)


def _named_type(name: str):
    return {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}.get(name.split(" ")[0], Any)


StableDiffusionTxt2ImgProcessingAPI = PydanticModelGenerator("StableDiffusionProcessingTxt2Img", "txt2img", API_EXTRAS).generate_model()
StableDiffusionImg2ImgProcessingAPI = PydanticModelGenerator(
    "StableDiffusionProcessingImg2Img", "img2img", API_EXTRAS + [("include_init_images", bool, False)]).generate_model()


class TextToImageResponse(BaseModel):
    images: Optional[list[str]] = Field(default=None, title="Image", description="The generated images in base64 format.")
    parameters: dict
    info: str


class ImageToImageResponse(BaseModel):
    images: Optional[list[str]] = Field(default=None, title="Image", description="The generated images in base64 format.")
    parameters: dict
    info: str


class ExtrasBaseRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    resize_mode: Literal[0, 1] = Field(default=0, title="Resize Mode", description="0: scale by upscaling_resize; 1: to upscaling_resize_w x upscaling_resize_h.")
    show_extras_results: bool = Field(default=True, title="Show results", description="Should the backend return the generated image?")
    gfpgan_visibility: float = Field(default=0, title="GFPGAN Visibility", ge=0, le=1, allow_inf_nan=False)
    codeformer_visibility: float = Field(default=0, title="CodeFormer Visibility", ge=0, le=1, allow_inf_nan=False)
    codeformer_weight: float = Field(default=0, title="CodeFormer Weight", ge=0, le=1, allow_inf_nan=False)
    upscaling_resize: float = Field(default=2, title="Upscaling Factor", gt=0, le=8)
    upscaling_resize_w: int = Field(default=512, title="Target Width", ge=1, le=processing_request.MAX_SIDE)
    upscaling_resize_h: int = Field(default=512, title="Target Height", ge=1, le=processing_request.MAX_SIDE)
    upscaling_crop: bool = Field(default=True, title="Crop to fit")
    upscaler_1: str = Field(default="None", title="Main upscaler")
    upscaler_2: str = Field(default="None", title="Secondary upscaler")
    extras_upscaler_2_visibility: float = Field(default=0, title="Secondary upscaler visibility", ge=0, le=1, allow_inf_nan=False)
    upscale_first: bool = Field(default=False, title="Upscale first", description="Accepted for compatibility; the order is the scripts' order.")


class ExtraBaseResponse(BaseModel):
    html_info: str = Field(title="HTML info", description="A series of HTML tags containing the process info.")


class ExtrasSingleImageRequest(ExtrasBaseRequest):
    image: str = Field(default="", title="Image", description="Image to work on, must be a Base64 string containing the image's data.")


class ExtrasSingleImageResponse(ExtraBaseResponse):
    image: Optional[str] = Field(default=None, title="Image", description="The generated image in base64 format.")


class FileData(BaseModel):
    data: str = Field(title="File data", description="Base64 representation of the file")
    name: str = Field(title="File name")


class ExtrasBatchImagesRequest(ExtrasBaseRequest):
    imageList: list[FileData] = Field(title="Images", description="List of images to work on. Must be Base64 strings")


class ExtrasBatchImagesResponse(ExtraBaseResponse):
    images: list[str] = Field(title="Images", description="The generated images in base64 format.")


class PNGInfoRequest(BaseModel):
    image: str = Field(title="Image", description="The base64 encoded PNG image")


class PNGInfoResponse(BaseModel):
    info: str = Field(title="Image info", description="A string with the parameters used to generate the image")
    items: dict = Field(title="Items", description="A dictionary containing all the other fields the image had")
    parameters: dict = Field(title="Parameters", description="A dictionary with parsed generation info fields")


class ProgressRequest(BaseModel):
    skip_current_image: bool = Field(default=False, title="Skip current image", description="Skip current image serialization")


class ProgressResponse(BaseModel):
    progress: float = Field(title="Progress", description="The progress with a range of 0 to 1")
    eta_relative: float = Field(title="ETA in secs")
    state: dict = Field(title="State", description="The current state snapshot")
    current_image: Optional[str] = Field(default=None, title="Current image", description="The current image in base64 format. opts.show_progress_every_n_steps is required for this to work.")
    textinfo: Optional[str] = Field(default=None, title="Info text", description="Info text used by WebUI.")
    current_task: Optional[str] = Field(default=None, title="Current task", description="The task id of the running job.")
    queued: int = Field(default=0, title="Queued", description="Jobs waiting in the queue.")


class InternalProgressRequest(BaseModel):
    id_task: Optional[str] = Field(default=None, title="Task ID", description="id of the task to get progress for")
    id_live_preview: int = Field(default=-1, title="Live preview image ID", description="id of last received last preview image")
    live_preview: bool = Field(default=True, title="Include live preview", description="boolean flag indicating whether to include the live preview image")


class InternalProgressResponse(BaseModel):
    active: bool = Field(title="Whether the task is being worked on right now")
    queued: bool = Field(title="Whether the task is in queue")
    completed: bool = Field(title="Whether the task has already finished")
    progress: Optional[float] = Field(default=None, title="Progress", description="The progress with a range of 0 to 1")
    eta: Optional[float] = Field(default=None, title="ETA in secs")
    live_preview: Optional[str] = Field(default=None, title="Live preview image", description="Current live preview; a data: uri")
    id_live_preview: Optional[int] = Field(default=None, title="Live preview image ID", description="Send this together with next request to prevent receiving same image")
    textinfo: Optional[str] = Field(default=None, title="Info text", description="Info text used by WebUI.")
    queue_position: Optional[int] = Field(default=None, title="Jobs ahead", description="While the task waits: how many jobs run before it")


class CancelRequest(BaseModel):
    id_task: str = Field(title="Task ID", description="The task to cancel (force_task_id of the request)")


class CancelResponse(BaseModel):
    cancelled: bool = Field(title="Removed from the queue before it started")
    interrupted: bool = Field(title="Interrupted while running")


class InterrogateRequest(BaseModel):
    image: str = Field(default="", title="Image", description="Image to work on, must be a Base64 string containing the image's data.")
    model: str = Field(default="clip", title="Model", description="The interrogate model used.")


class InterrogateResponse(BaseModel):
    caption: Optional[str] = Field(default=None, title="Caption", description="The generated caption for the image.")


class TrainResponse(BaseModel):
    info: str = Field(title="Train info", description="Response string from train embedding or hypernetwork task.")


class CreateResponse(BaseModel):
    info: str = Field(title="Create info", description="Response string from create embedding or hypernetwork task.")


class SamplerItem(BaseModel):
    name: str = Field(title="Name")
    aliases: list[str] = Field(title="Aliases")
    options: dict[str, Any] = Field(title="Options")


class SchedulerItem(BaseModel):
    name: str = Field(title="Name")
    label: str = Field(title="Label")
    aliases: Optional[list[str]] = Field(default=None, title="Aliases")
    default_rho: Optional[float] = Field(default=None, title="Default Rho")
    need_inner_model: Optional[bool] = Field(default=None, title="Needs Inner Model")


class UpscalerItem(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    name: str = Field(title="Name")
    model_name: Optional[str] = Field(default=None, title="Model Name")
    model_path: Optional[str] = Field(default=None, title="Path")
    model_url: Optional[str] = Field(default=None, title="URL")
    scale: Optional[float] = Field(default=None, title="Scale")


class LatentUpscalerModeItem(BaseModel):
    name: str = Field(title="Name")


class SDModelItem(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    title: str = Field(title="Title")
    model_name: str = Field(title="Model Name")
    hash: Optional[str] = Field(default=None, title="Short hash")
    sha256: Optional[str] = Field(default=None, title="sha256 hash")
    filename: str = Field(title="Filename")
    config: Optional[str] = Field(default=None, title="Config file")


class SDVaeItem(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model_name: str = Field(title="Model Name")
    filename: str = Field(title="Filename")


class HypernetworkItem(BaseModel):
    name: str = Field(title="Name")
    path: Optional[str] = Field(default=None, title="Path")


class FaceRestorerItem(BaseModel):
    name: str = Field(title="Name")
    cmd_dir: Optional[str] = Field(default=None, title="Path")


class RealesrganItem(BaseModel):
    name: str = Field(title="Name")
    path: Optional[str] = Field(default=None, title="Path")
    scale: Optional[int] = Field(default=None, title="Scale")


class PromptStyleItem(BaseModel):
    name: str = Field(title="Name")
    prompt: Optional[str] = Field(default=None, title="Prompt")
    negative_prompt: Optional[str] = Field(default=None, title="Negative Prompt")


class EmbeddingItem(BaseModel):
    step: Optional[int] = Field(default=None, title="Step", description="The number of steps that were used to train this embedding, if available")
    sd_checkpoint: Optional[str] = Field(default=None, title="SD Checkpoint", description="The hash of the checkpoint this embedding was trained on, if available")
    sd_checkpoint_name: Optional[str] = Field(default=None, title="SD Checkpoint Name", description="The name of the checkpoint this embedding was trained on, if available. Note that this is the name that was used by the trainer; for a stable identifier, use `sd_checkpoint` instead")
    shape: int = Field(title="Shape", description="The length of each individual vector in the embedding")
    vectors: int = Field(title="Vectors", description="The number of vectors in the embedding")


class EmbeddingsResponse(BaseModel):
    loaded: dict[str, EmbeddingItem] = Field(title="Loaded", description="Embeddings loaded for the current model")
    skipped: dict[str, EmbeddingItem] = Field(title="Skipped", description="Embeddings skipped for the current model (likely due to architecture incompatibility)")


class MemoryResponse(BaseModel):
    ram: dict = Field(title="RAM", description="System memory stats")
    cuda: dict = Field(title="CUDA", description="nVidia CUDA memory stats")
    workers: list | None = Field(default=None, title="Workers", description="With Ray workers: each worker's name, "
                                 "status, host, device, checkpoint, running task, queue and memory (ram, cuda)")


class ScriptsList(BaseModel):
    txt2img: list = Field(default=None, title="Txt2img", description="Titles of scripts (txt2img)")
    img2img: list = Field(default=None, title="Img2img", description="Titles of scripts (img2img)")


class ScriptArg(BaseModel):
    label: Optional[str] = Field(default=None, title="Label", description="Name of the argument in UI")
    value: Optional[Any] = Field(default=None, title="Value", description="Default value of the argument")
    minimum: Optional[Any] = Field(default=None, title="Minimum", description="Minimum allowed value for the argumentin UI")
    maximum: Optional[Any] = Field(default=None, title="Minimum", description="Maximum allowed value for the argumentin UI")
    step: Optional[Any] = Field(default=None, title="Minimum", description="Step for changing value of the argumentin UI")
    choices: Optional[list[str]] = Field(default=None, title="Choices", description="Possible values for the argument")


class ScriptInfo(BaseModel):
    name: Optional[str] = Field(default=None, title="Name", description="Script name")
    is_alwayson: Optional[bool] = Field(default=None, title="IsAlwayson", description="Flag specifying whether this script is an alwayson script")
    is_img2img: Optional[bool] = Field(default=None, title="IsImg2img", description="Flag specifying whether this script is an img2img script")
    args: list[ScriptArg] = Field(title="Arguments", description="List of script's arguments")


class ExtensionItem(BaseModel):
    name: str = Field(title="Name", description="Extension name")
    remote: Optional[str] = Field(default=None, title="Remote", description="Extension Repository URL")
    branch: Optional[str] = Field(default=None, title="Branch", description="Extension Repository Branch")
    commit_hash: Optional[str] = Field(default=None, title="Commit Hash", description="Extension Repository Commit Hash")
    version: Optional[str] = Field(default=None, title="Version", description="Extension Version")
    commit_date: Optional[Any] = Field(default=None, title="Commit Date", description="Extension Repository Commit Date")
    enabled: bool = Field(title="Enabled", description="Flag specifying whether this extension is enabled")


class LoraItem(BaseModel):
    name: str = Field(title="Name")
    alias: Optional[str] = Field(default=None, title="Alias")
    path: Optional[str] = Field(default=None, title="Path")
    metadata: dict = Field(default_factory=dict, title="Metadata")


def options_model():
    """A model of every setting (extensions add theirs at start-up, so it is built when the API is)."""
    from modules import shared
    fields = {key: (Optional[Any], Field(default=info.default, title=info.label or key))
              for key, info in shared.opts.data_labels.items() if info.component is not False}
    return create_model("Options", __config__=ConfigDict(extra="allow", protected_namespaces=()), **fields)


def flags_model():
    """A model of every command-line flag (A1111's Flags)."""
    from modules import shared
    fields = {}
    for action in shared.parser._actions:
        if action.dest in ("help", None) or action.dest in fields:
            continue
        fields[action.dest] = (Optional[Any], Field(default=action.default, description=action.help))
    return create_model("Flags", __config__=ConfigDict(extra="allow", protected_namespaces=()), **fields)
