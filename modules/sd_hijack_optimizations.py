"""Cross-attention optimizations (A1111: modules.sd_hijack_optimizations). The engine always uses PyTorch's scaled
dot-product attention; the name extensions ask for is answered as A1111 answers it without xformers."""


def get_xformers_flash_attention_op(q, k, v):
    """xformers' flash-attention operator for these tensors: None, as in A1111 when xformers is not in use."""
    return None
