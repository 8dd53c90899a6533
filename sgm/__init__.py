"""SDXL's model code under its original package name (Stability's generative-models: `sgm`), because extensions
import and hook these classes as they do `ldm.*`. The UNet and attention classes are ldm's own (the same objects)."""
