"""LyCORIS full: the file stores the weight change itself (`diff`, and `diff_b` for the bias)
(A1111: the Lora extension's `network_full`)."""
from modules.lora import network


class ModuleTypeFull(network.ModuleType):
    def create_module(self, net: network.Network, weights: network.NetworkWeights):
        if "diff" in weights.w:
            return NetworkModuleFull(net, weights)
        return None


class NetworkModuleFull(network.NetworkModule):
    def __init__(self, net: network.Network, weights: network.NetworkWeights):
        super().__init__(net, weights)
        self.weight = weights.w["diff"]
        self.ex_bias = weights.w.get("diff_b")

    def calc_updown(self, orig_weight):
        updown = self.weight.to(orig_weight.device, dtype=orig_weight.dtype)
        ex_bias = self.ex_bias.to(orig_weight.device, dtype=orig_weight.dtype) if self.ex_bias is not None else None
        return self.finalize_updown(updown, orig_weight, list(orig_weight.shape), ex_bias)
