"""LyCORIS GLoRA: weight change = (W @ A_down @ A_up + B_up @ B_down) × alpha / rank, from `a1`, `a2`, `b1`, `b2`
(optional Tucker `bm`). Current LyCORIS files name the input-side factor of A `a1` ([in, r]); older ones `a2`;
the factors are told apart by their shapes (A1111: `network_glora`)."""
import torch

from modules.lora import network


class ModuleTypeGLora(network.ModuleType):
    def create_module(self, net: network.Network, weights: network.NetworkWeights):
        if all(x in weights.w for x in ["a1.weight", "a2.weight", "b1.weight", "b2.weight"]):
            return NetworkModuleGLora(net, weights)
        return None


def as_matrix(t):
    return t.reshape(t.shape[0], -1)


class NetworkModuleGLora(network.NetworkModule):
    def __init__(self, net: network.Network, weights: network.NetworkWeights):
        super().__init__(net, weights)
        a1, a2 = weights.w["a1.weight"], weights.w["a2.weight"]
        b1, b2 = weights.w["b1.weight"], weights.w["b2.weight"]
        in_dim = self.shape[1]
        # A maps W's input features to the rank and back ([in, r] then [r, in]); B is up [out, r] @ down [r, in(, k, k)].
        # Whichever of the pair ends in the input width is the second (A) or the down (B) factor.
        self.a_in, self.a_out = (a1, a2) if a2.shape[1] == in_dim else (a2, a1)
        self.b_up, self.b_down = (b1, b2) if b2.shape[1] == in_dim else (b2, b1)
        self.bm = weights.w.get("bm.weight")
        self.dim = as_matrix(self.a_in).shape[1]

    def calc_updown(self, orig_weight):
        def cast(t):
            return t.to(orig_weight.device, dtype=orig_weight.dtype)

        b_up, b_down = as_matrix(cast(self.b_up)), as_matrix(cast(self.b_down))
        if self.bm is not None:
            wb = torch.einsum("m n ..., i m, n j -> i j ...", cast(self.bm), b_up, b_down)
        else:
            wb = (b_up @ b_down).reshape(orig_weight.shape)
        a_in, a_out = as_matrix(cast(self.a_in)), as_matrix(cast(self.a_out))
        wa = torch.einsum("o i ..., i j -> o j ...", orig_weight, a_in)
        wa = torch.einsum("o i ..., i j -> o j ...", wa, a_out)
        updown = wb.reshape(orig_weight.shape) + wa
        return self.finalize_updown(updown, orig_weight, list(orig_weight.shape))
