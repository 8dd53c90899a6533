"""txt2img's engine entry point: a request (A1111's field names) in, a Processed out (A1111: modules.txt2img).

The web UI's Generate button, the REST API and job workers all come here through the job queue."""
from modules import processing_request


def txt2img_create_processing(request: dict):
    """The StableDiffusionProcessingTxt2Img for a request (normalised here), scripts attached."""
    return processing_request.create_processing("txt2img", processing_request.normalize("txt2img", request))


def txt2img(request: dict):
    """Generate; returns the Processed. A Generate pressed while the model still loads waits for it."""
    processing_request.ensure_model()
    return processing_request.run_processing(txt2img_create_processing(request))
