"""LyCORIS norm: changes to a GroupNorm/LayerNorm's weight and bias (`w_norm`, `b_norm`)
(A1111: the Lora extension's `network_norm`)."""
from modules.lora import network


class ModuleTypeNorm(network.ModuleType):
    def create_module(self, net: network.Network, weights: network.NetworkWeights):
        if "w_norm" in weights.w:
            return NetworkModuleNorm(net, weights)
        return None


class NetworkModuleNorm(network.NetworkModule):
    def __init__(self, net: network.Network, weights: network.NetworkWeights):
        super().__init__(net, weights)
        self.w_norm = weights.w["w_norm"]
        self.b_norm = weights.w.get("b_norm")

    def calc_updown(self, orig_weight):
        updown = self.w_norm.to(orig_weight.device, dtype=orig_weight.dtype)
        ex_bias = self.b_norm.to(orig_weight.device, dtype=orig_weight.dtype) if self.b_norm is not None else None
        return self.finalize_updown(updown, orig_weight, list(orig_weight.shape), ex_bias)
