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
        # A1111's attribute names (extensions such as lora-block-weight scale them): w1a/w2a = a1/a2, w1b/w2b = b1/b2
        self.w1a = weights.w["a1.weight"]
        self.w2a = weights.w["a2.weight"]
        self.w1b = weights.w["b1.weight"]
        self.w2b = weights.w["b2.weight"]
        self.bm = weights.w.get("bm.weight")
        self.dim = min(as_matrix(self.w1a).shape)

    def calc_updown(self, orig_weight):
        def cast(t):
            return as_matrix(t.to(orig_weight.device, dtype=orig_weight.dtype))

        in_dim = orig_weight.shape[1]
        # A maps W's input features to the rank and back ([in, r] then [r, in]); B is up [out, r] @ down [r, in(·k·k)].
        # Whichever of each pair ends in the input width is the second (A) or the down (B) factor.
        a_in, a_out = (self.w1a, self.w2a) if self.w2a.shape[1] == in_dim else (self.w2a, self.w1a)
        b_up, b_down = (self.w1b, self.w2b) if self.w2b.shape[1] == in_dim else (self.w2b, self.w1b)
        if self.bm is not None:
            wb = torch.einsum("m n ..., i m, n j -> i j ...", self.bm.to(orig_weight.device, dtype=orig_weight.dtype), cast(b_up), cast(b_down))
        else:
            wb = cast(b_up) @ cast(b_down)
        wa = torch.einsum("o i ..., i j -> o j ...", orig_weight, cast(a_in))
        wa = torch.einsum("o i ..., i j -> o j ...", wa, cast(a_out))
        updown = wb.reshape(orig_weight.shape) + wa
        return self.finalize_updown(updown, orig_weight, list(orig_weight.shape))
