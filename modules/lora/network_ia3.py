"""(IA)³: a learned vector scales the weight's output rows (or input columns with `on_input`); the weight change is
W × vector (A1111: the Lora extension's `network_ia3`)."""
from modules.lora import network


class ModuleTypeIa3(network.ModuleType):
    def create_module(self, net: network.Network, weights: network.NetworkWeights):
        if "weight" in weights.w:
            return NetworkModuleIa3(net, weights)
        return None


class NetworkModuleIa3(network.NetworkModule):
    def __init__(self, net: network.Network, weights: network.NetworkWeights):
        super().__init__(net, weights)
        self.w = weights.w["weight"]
        self.on_input = bool(weights.w["on_input"].item()) if "on_input" in weights.w else False

    def calc_updown(self, orig_weight):
        w = self.w.to(orig_weight.device, dtype=orig_weight.dtype).flatten()
        axis = 1 if self.on_input else 0
        shape = [1] * orig_weight.dim()
        shape[axis] = w.numel()
        updown = orig_weight * w.reshape(shape)
        return self.finalize_updown(updown, orig_weight, list(orig_weight.shape))
