"""LoRA and LoCon (kohya `lora_up`/`lora_down`, optional Tucker `lora_mid`; PEFT `lora_A`/`lora_B` arrive renamed to
these): weight change = up @ down × alpha / rank (A1111: the Lora extension's `network_lora`)."""
import torch

from modules.lora import lyco_helpers, network


class ModuleTypeLora(network.ModuleType):
    def create_module(self, net: network.Network, weights: network.NetworkWeights):
        if all(x in weights.w for x in ["lora_up.weight", "lora_down.weight"]):
            return NetworkModuleLora(net, weights)
        return None


class NetworkModuleLora(network.NetworkModule):
    def __init__(self, net: network.Network, weights: network.NetworkWeights):
        super().__init__(net, weights)
        self.up_model = self.create_module(weights.w, "lora_up.weight")
        self.down_model = self.create_module(weights.w, "lora_down.weight")
        self.mid_model = self.create_module(weights.w, "lora_mid.weight", none_ok=True)
        self.dim = weights.w["lora_down.weight"].shape[0]

    def create_module(self, weights, key, none_ok=False):
        """The factor as a bias-free Linear/Conv2d holding the file's tensor (no copy): extensions call
        `module.up_model(module.down_model(x))`."""
        weight = weights.get(key)
        if weight is None and none_ok:
            return None
        is_conv = isinstance(self.sd_module, torch.nn.Conv2d)
        if not is_conv:
            weight = weight.reshape(weight.shape[0], -1)
            module = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, device="meta")
        else:
            if weight.dim() == 2:
                weight = weight.reshape(weight.shape[0], -1, 1, 1)
            full_kernel = key == "lora_mid.weight" or (key == "lora_down.weight" and weight.shape[2:] != (1, 1))
            if full_kernel:
                module = torch.nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:], self.sd_module.stride,
                                         self.sd_module.padding, bias=False, device="meta")
            else:
                module = torch.nn.Conv2d(weight.shape[1], weight.shape[0], (1, 1), bias=False, device="meta")
        module.weight = torch.nn.Parameter(weight, requires_grad=False)
        return module

    def calc_updown(self, orig_weight):
        up = self.up_model.weight.to(orig_weight.device, dtype=orig_weight.dtype)
        down = self.down_model.weight.to(orig_weight.device, dtype=orig_weight.dtype)
        output_shape = [up.size(0), down.size(1)]
        if self.mid_model is not None:
            mid = self.mid_model.weight.to(orig_weight.device, dtype=orig_weight.dtype)
            updown = lyco_helpers.rebuild_cp_decomposition(up, down, mid)
            output_shape += mid.shape[2:]
        else:
            if down.dim() == 4:
                output_shape += down.shape[2:]
            updown = lyco_helpers.rebuild_conventional(up, down, output_shape, self.network.dyn_dim)
        return self.finalize_updown(updown, orig_weight, output_shape)

    def forward(self, x, y):
        self.up_model.to(device=x.device, dtype=x.dtype)
        self.down_model.to(device=x.device, dtype=x.dtype)
        if self.mid_model is not None:
            self.mid_model.to(device=x.device, dtype=x.dtype)
            x = self.mid_model(self.down_model(x))
        else:
            x = self.down_model(x)
        return y + self.up_model(x) * self.multiplier() * self.calc_scale()
