"""LyCORIS LoKr: weight change = kron(w1, w2), each side whole (`lokr_w1`) or low-rank (`lokr_w1_a` @ `lokr_w1_b`,
`lokr_t2` Tucker core); × alpha / rank when a side is low-rank, else × 1 (A1111: `network_lokr`)."""
import torch

from modules.lora import lyco_helpers, network


class ModuleTypeLokr(network.ModuleType):
    def create_module(self, net: network.Network, weights: network.NetworkWeights):
        has_1 = "lokr_w1" in weights.w or ("lokr_w1_a" in weights.w and "lokr_w1_b" in weights.w)
        has_2 = "lokr_w2" in weights.w or ("lokr_w2_a" in weights.w and "lokr_w2_b" in weights.w)
        if has_1 and has_2:
            return NetworkModuleLokr(net, weights)
        return None


def make_kron(orig_shape, w1, w2):
    if w2.dim() == 4:
        w1 = w1[:, :, None, None]
    return torch.kron(w1, w2.contiguous()).reshape(orig_shape)


class NetworkModuleLokr(network.NetworkModule):
    def __init__(self, net: network.Network, weights: network.NetworkWeights):
        super().__init__(net, weights)
        self.w1 = weights.w.get("lokr_w1")
        self.w1a = weights.w.get("lokr_w1_a")
        self.w1b = weights.w.get("lokr_w1_b")
        self.w2 = weights.w.get("lokr_w2")
        self.w2a = weights.w.get("lokr_w2_a")
        self.w2b = weights.w.get("lokr_w2_b")
        self.t2 = weights.w.get("lokr_t2")
        # the rank of whichever side is factorised; both sides whole means no alpha scaling
        self.dim = self.w1b.shape[0] if self.w1b is not None else self.w2b.shape[0] if self.w2b is not None else None

    def calc_updown(self, orig_weight):
        def cast(t):
            return t.to(orig_weight.device, dtype=orig_weight.dtype) if t is not None else None

        w1 = cast(self.w1) if self.w1 is not None else cast(self.w1a) @ cast(self.w1b)
        if self.w2 is not None:
            w2 = cast(self.w2)
        elif self.t2 is not None:
            w2 = lyco_helpers.make_weight_cp(cast(self.t2), cast(self.w2a), cast(self.w2b))
        else:
            w2b = cast(self.w2b)
            w2 = (cast(self.w2a) @ w2b.reshape(w2b.shape[0], -1)).reshape(-1, *w2b.shape[1:])
        output_shape = [w1.size(0) * w2.size(0), w1.size(1) * w2.size(1)] + list(w2.shape[2:])
        updown = make_kron(output_shape, w1, w2)
        return self.finalize_updown(updown, orig_weight, output_shape)
