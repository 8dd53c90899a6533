"""OFT and BOFT: the weight's output rows are rotated by learned orthogonal blocks (A1111: `network_oft`).

- kohya OFT and LyCORIS diag-OFT store `oft_blocks` [blocks, size, size]: skew-symmetric generators turned into
  rotations by the Cayley transform R = (I + Q)(I - Q)^-1, Q's norm clamped to the constraint (`alpha` × out dim);
- BOFT stores `oft_blocks` [stages, blocks, size, size]: a butterfly of such rotations, each stage mixing rows
  2^stage × size/2 apart;
- older LyCORIS files store the rotation blocks themselves as `oft_diag`.
An optional `rescale` multiplies each output row afterwards. The weight change is the rotated weight minus W.
"""
import torch

from modules.lora import network


class ModuleTypeOFT(network.ModuleType):
    def create_module(self, net: network.Network, weights: network.NetworkWeights):
        if "oft_blocks" in weights.w or "oft_diag" in weights.w:
            return NetworkModuleOFT(net, weights)
        return None


def cayley_rotations(generators, constraint):
    """Orthogonal blocks from (unconstrained) generator blocks, batched over the leading dimensions."""
    eye = torch.eye(generators.shape[-1], device=generators.device, dtype=generators.dtype)
    q = generators - generators.transpose(-1, -2)
    if constraint > 0:
        q_norm = torch.norm(q) + 1e-8
        if q_norm > constraint:
            q = q * (constraint / q_norm)
    return (eye + q) @ (eye - q).float().inverse().to(q.dtype)


def rotate_blockwise(weight, rotations):
    """Block k of the weight's rows (size n) becomes R_k^T · rows: the OFT rotation of the output features."""
    blocks, size, _ = rotations.shape
    rows = weight.reshape(blocks, size, *weight.shape[1:])
    return torch.einsum("k n m, k n ... -> k m ...", rotations, rows).reshape(weight.shape)


def rotate_butterfly(weight, rotations):
    """BOFT: stage i pairs rows 2^i × size/2 apart into blocks of `size` rows and multiplies each block by R."""
    stages, _, size, _ = rotations.shape
    half = size // 2
    x = weight
    for stage in range(stages):
        stride = 2 ** stage * half
        # gather rows into butterfly blocks: (groups, 2, stride) -> (groups, stride, 2) -> blocks of `size` rows
        x = x.unflatten(0, (-1, 2, stride)).transpose(1, 2).flatten(0, 2).unflatten(0, (-1, size))
        x = torch.einsum("b i j, b j ... -> b i ...", rotations[stage], x)
        x = x.flatten(0, 1).unflatten(0, (-1, stride, 2)).transpose(1, 2).flatten(0, 2)
    return x


class NetworkModuleOFT(network.NetworkModule):
    def __init__(self, net: network.Network, weights: network.NetworkWeights):
        super().__init__(net, weights)
        self.is_R = "oft_blocks" not in weights.w
        self.oft_blocks = weights.w["oft_diag"] if self.is_R else weights.w["oft_blocks"]
        self.is_boft = self.oft_blocks.dim() == 4
        self.rescale = weights.w.get("rescale")
        out_dim = self.shape[0]
        self.constraint = (self.alpha or 0) * out_dim
        self.alpha = None  # the constraint, not a scale
        self.dim = self.oft_blocks.shape[-3]

    def calc_updown(self, orig_weight):
        blocks = self.oft_blocks.to(orig_weight.device, dtype=orig_weight.dtype)
        rotations = blocks if self.is_R else cayley_rotations(blocks, self.constraint)
        if self.is_boft:
            rotated = rotate_butterfly(orig_weight, rotations)
        else:
            rotated = rotate_blockwise(orig_weight, rotations)
        if self.rescale is not None:
            rotated = rotated * self.rescale.to(orig_weight.device, dtype=orig_weight.dtype).reshape(-1, *[1] * (orig_weight.dim() - 1))
        updown = rotated - orig_weight
        return self.finalize_updown(updown, orig_weight, list(orig_weight.shape))
