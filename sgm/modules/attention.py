"""Original path: sgm.modules.attention; the same classes as ldm.modules.attention."""
from ldm.modules.attention import (  # noqa: F401
    BasicTransformerBlock, CrossAttention, FeedForward, GEGLU, MemoryEfficientCrossAttention, SpatialTransformer,
)
