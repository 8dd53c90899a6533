"""LyCORIS LoHa: weight change = (w1_a @ w1_b) ⊙ (w2_a @ w2_b) × alpha / rank, each factor optionally Tucker
(`hada_t1`, `hada_t2`) (A1111: the Lora extension's `network_hada`)."""
from modules.lora import lyco_helpers, network


class ModuleTypeHada(network.ModuleType):
    def create_module(self, net: network.Network, weights: network.NetworkWeights):
        if all(x in weights.w for x in ["hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"]):
            return NetworkModuleHada(net, weights)
        return None


class NetworkModuleHada(network.NetworkModule):
    def __init__(self, net: network.Network, weights: network.NetworkWeights):
        super().__init__(net, weights)
        self.w1a = weights.w["hada_w1_a"]
        self.w1b = weights.w["hada_w1_b"]
        self.w2a = weights.w["hada_w2_a"]
        self.w2b = weights.w["hada_w2_b"]
        self.t1 = weights.w.get("hada_t1")
        self.t2 = weights.w.get("hada_t2")
        self.dim = self.w1b.shape[0]

    def calc_updown(self, orig_weight):
        def half(wa, wb, t):
            wa = wa.to(orig_weight.device, dtype=orig_weight.dtype)
            wb = wb.to(orig_weight.device, dtype=orig_weight.dtype)
            if t is not None:
                t = t.to(orig_weight.device, dtype=orig_weight.dtype)
                return lyco_helpers.make_weight_cp(t, wa, wb)
            shape = [wa.size(0), wb.size(1)] + list(wb.shape[2:])
            return lyco_helpers.rebuild_conventional(wa, wb, shape)

        updown = half(self.w1a, self.w1b, self.t1) * half(self.w2a, self.w2b, self.t2)
        return self.finalize_updown(updown, orig_weight, list(updown.shape))
