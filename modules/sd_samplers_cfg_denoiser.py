"""Classifier-free guidance around the model: one batched call for cond and uncond, composable (AND) weights,
inpainting mask blend, NGMS / early-CFG skipping and the cfg callbacks (A1111: modules.sd_samplers_cfg_denoiser)."""
import torch

from modules import devices, prompt_parser, script_callbacks, scripts, sd_samplers_common, shared
from modules.shared import opts, state


def catenate_conds(conds):
    if not isinstance(conds[0], dict):
        return torch.cat(conds)

    return {key: torch.cat([x[key] for x in conds]) for key in conds[0].keys()}


def subscript_cond(cond, a, b):
    if not isinstance(cond, dict):
        return cond[a:b]

    return {key: vec[a:b] for key, vec in cond.items()}


def pad_cond(tensor, repeats, empty):
    """Append `repeats` copies of the empty prompt's 77-token encoding (so cond and uncond lengths match)."""
    if not isinstance(tensor, dict):
        return torch.cat([tensor, empty.repeat((tensor.shape[0], repeats, 1))], axis=1)

    tensor['crossattn'] = pad_cond(tensor['crossattn'], repeats, empty)
    return tensor


def cond_shape(cond):
    """The shape of a cond tensor, or of its cross-attention part for dict conds (SDXL)."""
    return cond['crossattn'].shape if isinstance(cond, dict) else cond.shape


def is_plain_cond(c):
    return isinstance(c, (torch.Tensor, dict))


class CFGDenoiser(torch.nn.Module):
    """Wraps the model denoiser for classifier-free guidance.

    forward(x, sigma, uncond, cond, cond_scale, s_min_uncond, image_cond) -> the guided prediction: the x0 prediction
    for k-diffusion samplers, the noise prediction for timestep samplers. `cond` is a MulticondLearnedConditioning and
    `uncond` a list of scheduled conds (prompt_parser), or, for callers without prompt schedules, plain tensors.
    """

    def __init__(self, sampler):
        super().__init__()
        self.model_wrap = None
        self.mask = None
        self.nmask = None
        self.init_latent = None
        self.steps = None
        self.total_steps = None  # model calls of this pass, for "skip early CFG"
        self.step = 0  # model calls so far in this pass; the prompt-schedule step
        self.image_cfg_scale = None
        self.padded_cond_uncond = False
        self.padded_cond_uncond_v0 = False
        self.sampler = sampler
        self.p = None

        self.cond_scale_miltiplier = 1.0  # (sic) A1111's name; DDIM CFG++ sets 1/12.5

        self.need_last_noise_uncond = False
        self.last_noise_uncond = None

        # k-diffusion samplers blend the x0 prediction after CFG; timestep samplers blend the input before.
        self.mask_before_denoising = False

    @property
    def inner_model(self):
        raise NotImplementedError()

    @property
    def sd_model(self):
        model = getattr(self.sampler, "model", None)
        return model if model is not None else shared.sd_model

    def combine_denoised(self, x_out, conds_list, uncond, cond_scale):
        """U + cond_scale * sum_k w_k (C_k - U) per image (composable diffusion)."""
        denoised_uncond = x_out[-cond_shape(uncond)[0]:]
        denoised = torch.clone(denoised_uncond)

        for i, conds in enumerate(conds_list):
            for cond_index, weight in conds:
                denoised[i] += (x_out[cond_index] - denoised_uncond[i]) * (weight * cond_scale)

        return denoised

    def combine_denoised_for_edit_model(self, x_out, cond_scale):
        out_cond, out_img_cond, out_uncond = x_out.chunk(3)
        denoised = out_uncond + cond_scale * (out_cond - out_img_cond) + self.image_cfg_scale * (out_img_cond - out_uncond)

        return denoised

    def get_pred_x0(self, x_in, x_out, sigma):
        return x_out

    def update_inner_model(self):
        self.model_wrap = None

        c, uc = self.p.get_conds()
        self.sampler.sampler_extra_args['cond'] = c
        self.sampler.sampler_extra_args['uncond'] = uc

    def pad_cond_uncond(self, cond, uncond):
        empty = getattr(self.sd_model, "cond_stage_model_empty_prompt", None)
        if empty is None:
            return cond, uncond

        num_repeats = (cond_shape(cond)[1] - cond_shape(uncond)[1]) // empty.shape[1]

        if num_repeats < 0:
            cond = pad_cond(cond, -num_repeats, empty)
            self.padded_cond_uncond = True
        elif num_repeats > 0:
            uncond = pad_cond(uncond, num_repeats, empty)
            self.padded_cond_uncond = True

        return cond, uncond

    def pad_cond_uncond_v0(self, cond, uncond):
        """Old padding: repeat the negative prompt's last vector (or truncate it) to the prompt's length."""
        is_dict_cond = isinstance(uncond, dict)
        uncond_vec = uncond['crossattn'] if is_dict_cond else uncond
        cond_len = cond_shape(cond)[1]

        if uncond_vec.shape[1] < cond_len:
            last_vector = uncond_vec[:, -1:]
            last_vector_repeated = last_vector.repeat([1, cond_len - uncond_vec.shape[1], 1])
            uncond_vec = torch.hstack([uncond_vec, last_vector_repeated])
            self.padded_cond_uncond_v0 = True
        elif uncond_vec.shape[1] > cond_len:
            uncond_vec = uncond_vec[:, :cond_len]
            self.padded_cond_uncond_v0 = True

        if is_dict_cond:
            uncond['crossattn'] = uncond_vec
        else:
            uncond = uncond_vec

        return cond, uncond

    def _reconstruct_conds(self, cond, uncond, batch_size):
        """(conds_list, cond tensor, uncond tensor) for the current step of the prompt schedules."""
        if is_plain_cond(cond):
            conds_list = [[(i, 1.0)] for i in range(batch_size)]
            tensor = cond
        else:
            conds_list, tensor = prompt_parser.reconstruct_multicond_batch(cond, self.step)

        if not is_plain_cond(uncond):
            uncond = prompt_parser.reconstruct_cond_batch(uncond, self.step)

        return conds_list, tensor, uncond

    def forward(self, x, sigma, uncond, cond, cond_scale, s_min_uncond, image_cond):
        if state.interrupted or state.skipped:
            raise sd_samplers_common.InterruptedException

        if sd_samplers_common.apply_refiner(self, sigma):
            cond = self.sampler.sampler_extra_args['cond']
            uncond = self.sampler.sampler_extra_args['uncond']

        model = self.sd_model
        # With image CFG scale 1 an edit model gives the same result as normal sampling, which supports AND.
        is_edit_model = getattr(model, "cond_stage_key", None) == "edit" and self.image_cfg_scale is not None and self.image_cfg_scale != 1.0

        conds_list, tensor, uncond = self._reconstruct_conds(cond, uncond, x.shape[0])

        if is_edit_model and not all(len(conds) == 1 for conds in conds_list):
            raise ValueError("AND is not supported for InstructPix2Pix checkpoint (unless using Image CFG scale = 1.0)")

        def apply_blend(current_latent):
            blended_latent = current_latent * self.nmask + self.init_latent * self.mask

            scripts_runner = getattr(self.p, "scripts", None)
            if scripts_runner is not None:
                mba = scripts.MaskBlendArgs(current_latent, self.nmask, self.init_latent, self.mask, blended_latent, denoiser=self, sigma=sigma)
                scripts_runner.on_mask_blend(self.p, mba)
                blended_latent = mba.blended_latent

            return blended_latent

        if self.mask_before_denoising and self.mask is not None:
            x = apply_blend(x)

        batch_size = len(conds_list)
        repeats = [len(conds_list[i]) for i in range(batch_size)]

        if image_cond is None:
            image_cond = x.new_zeros([x.shape[0], 5, 1, 1])  # txt2img placeholder; ignored by 4-channel UNets

        conditioning_key = getattr(getattr(model, "model", None), "conditioning_key", "crossattn")
        if conditioning_key == "crossattn-adm":
            image_uncond = torch.zeros_like(image_cond)
            make_condition_dict = lambda c_crossattn, c_adm: {"c_crossattn": [c_crossattn], "c_adm": c_adm}  # noqa: E731
        else:
            image_uncond = image_cond
            if isinstance(uncond, dict):
                make_condition_dict = lambda c_crossattn, c_concat: {**c_crossattn, "c_concat": [c_concat]}  # noqa: E731
            else:
                make_condition_dict = lambda c_crossattn, c_concat: {"c_crossattn": [c_crossattn], "c_concat": [c_concat]}  # noqa: E731

        def per_cond(t):
            return [torch.stack([t[i] for _ in range(n)]) for i, n in enumerate(repeats)]

        if not is_edit_model:
            x_in = torch.cat(per_cond(x) + [x])
            sigma_in = torch.cat(per_cond(sigma) + [sigma])
            image_cond_in = torch.cat(per_cond(image_cond) + [image_uncond])
        else:
            x_in = torch.cat(per_cond(x) + [x] + [x])
            sigma_in = torch.cat(per_cond(sigma) + [sigma] + [sigma])
            image_cond_in = torch.cat(per_cond(image_cond) + [image_uncond] + [torch.zeros_like(self.init_latent)])

        denoiser_params = script_callbacks.CFGDenoiserParams(x_in, image_cond_in, sigma_in, state.sampling_step, state.sampling_steps, tensor, uncond, self)
        script_callbacks.cfg_denoiser_callback(denoiser_params)
        x_in = denoiser_params.x
        image_cond_in = denoiser_params.image_cond
        sigma_in = denoiser_params.sigma
        tensor = denoiser_params.text_cond
        uncond = denoiser_params.text_uncond

        skip_uncond = False
        if opts.skip_early_cond != 0. and self.step / max(self.total_steps or 1, 1) <= opts.skip_early_cond:
            skip_uncond = True
            self.p.extra_generation_params["Skip Early CFG"] = opts.skip_early_cond
        elif (self.step % 2 or opts.s_min_uncond_all) and s_min_uncond > 0 and sigma[0] < s_min_uncond:
            skip_uncond = True
            self.p.extra_generation_params["NGMS"] = s_min_uncond
            if opts.s_min_uncond_all:
                self.p.extra_generation_params["NGMS all steps"] = opts.s_min_uncond_all

        if skip_uncond:
            x_in = x_in[:-batch_size]
            sigma_in = sigma_in[:-batch_size]

        self.padded_cond_uncond = False
        self.padded_cond_uncond_v0 = False
        if opts.pad_cond_uncond_v0 and cond_shape(tensor)[1] != cond_shape(uncond)[1]:
            tensor, uncond = self.pad_cond_uncond_v0(tensor, uncond)
        elif opts.pad_cond_uncond and cond_shape(tensor)[1] != cond_shape(uncond)[1]:
            tensor, uncond = self.pad_cond_uncond(tensor, uncond)

        n_uncond = cond_shape(uncond)[0]
        if cond_shape(tensor)[1] == cond_shape(uncond)[1] or skip_uncond:
            if is_edit_model:
                cond_in = catenate_conds([tensor, uncond, uncond])
            elif skip_uncond:
                cond_in = tensor
            else:
                cond_in = catenate_conds([tensor, uncond])

            if opts.batch_cond_uncond:
                x_out = self.inner_model(x_in, sigma_in, cond=make_condition_dict(cond_in, image_cond_in))
            else:
                x_out = torch.zeros_like(x_in)
                for batch_offset in range(0, x_out.shape[0], batch_size):
                    a = batch_offset
                    b = a + batch_size
                    x_out[a:b] = self.inner_model(x_in[a:b], sigma_in[a:b], cond=make_condition_dict(subscript_cond(cond_in, a, b), image_cond_in[a:b]))
        else:
            # Prompt and negative prompt of different lengths: cond rows in chunks, uncond in its own call.
            x_out = torch.zeros_like(x_in)
            chunk = batch_size * 2 if opts.batch_cond_uncond else batch_size
            n_cond = cond_shape(tensor)[0]
            for batch_offset in range(0, n_cond, chunk):
                a = batch_offset
                b = min(a + chunk, n_cond)

                if not is_edit_model:
                    c_crossattn = subscript_cond(tensor, a, b)
                else:
                    c_crossattn = torch.cat([tensor[a:b]], uncond)

                x_out[a:b] = self.inner_model(x_in[a:b], sigma_in[a:b], cond=make_condition_dict(c_crossattn, image_cond_in[a:b]))

            if not skip_uncond:
                x_out[-n_uncond:] = self.inner_model(x_in[-n_uncond:], sigma_in[-n_uncond:], cond=make_condition_dict(uncond, image_cond_in[-n_uncond:]))

        devices.test_for_nans(x_out, "unet")

        denoised_image_indexes = [x[0][0] for x in conds_list]
        if skip_uncond:
            # The uncond pass was skipped: the first sub-prompt's result stands in for it.
            fake_uncond = torch.cat([x_out[i:i + 1] for i in denoised_image_indexes])
            x_out = torch.cat([x_out, fake_uncond])

        denoised_params = script_callbacks.CFGDenoisedParams(x_out, state.sampling_step, state.sampling_steps, self.inner_model)
        script_callbacks.cfg_denoised_callback(denoised_params)
        x_out = denoised_params.x

        if self.need_last_noise_uncond:
            self.last_noise_uncond = torch.clone(x_out[-n_uncond:])

        if is_edit_model:
            denoised = self.combine_denoised_for_edit_model(x_out, cond_scale * self.cond_scale_miltiplier)
        elif skip_uncond:
            denoised = self.combine_denoised(x_out, conds_list, uncond, 1.0)
        else:
            denoised = self.combine_denoised(x_out, conds_list, uncond, cond_scale * self.cond_scale_miltiplier)

        if not self.mask_before_denoising and self.mask is not None:
            denoised = apply_blend(denoised)

        x_first = torch.cat([x_in[i:i + 1] for i in denoised_image_indexes])
        self.sampler.last_latent = self.get_pred_x0(x_first, torch.cat([x_out[i:i + 1] for i in denoised_image_indexes]), sigma)

        if opts.live_preview_content == "Prompt":
            preview = self.sampler.last_latent
        elif opts.live_preview_content == "Negative prompt":
            preview = self.get_pred_x0(x_in[-n_uncond:], x_out[-n_uncond:], sigma)
        else:
            preview = self.get_pred_x0(x_first, torch.cat([denoised[i:i + 1] for i in denoised_image_indexes]), sigma)

        sd_samplers_common.store_latent(preview)

        after_cfg_callback_params = script_callbacks.AfterCFGCallbackParams(denoised, state.sampling_step, state.sampling_steps)
        script_callbacks.cfg_after_cfg_callback(after_cfg_callback_params)
        denoised = after_cfg_callback_params.x

        self.step += 1
        return denoised
