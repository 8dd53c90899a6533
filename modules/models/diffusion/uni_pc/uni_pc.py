"""UniPC: "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of Diffusion Models" (Zhao et al. 2023).

The data-prediction (x0) multistep form, variants B(h)=h ("bh1"), B(h)=e^h-1 ("bh2") and "vary_coeff". Time is the
continuous VP time t in (0, 1]; a discrete 1000-step model is reached through NoiseScheduleVP('discrete').
"""
import torch


def interpolate_fn(x, xp, yp):
    """Piecewise-linear y(x) through the points (xp, yp), extended linearly past both ends.

    x: (N, 1); xp, yp: (1, K) with xp increasing. Returns (N, 1).
    """
    xs = xp[0]
    ys = yp[0].to(x.dtype)
    xq = x[:, 0].to(xs.dtype).contiguous()
    k = xs.shape[0]
    idx = torch.searchsorted(xs, xq).clamp(1, k - 1)  # right end of the segment used (ends extrapolate)
    x0, x1 = xs[idx - 1], xs[idx]
    y0, y1 = ys[idx - 1], ys[idx]
    out = y0 + (xq.to(x.dtype) - x0.to(x.dtype)) * (y1 - y0) / (x1 - x0).to(x.dtype)
    return out.reshape(-1, 1)


class NoiseScheduleVP:
    """alpha_t, sigma_t and lambda_t = log(alpha_t / sigma_t) of a VP diffusion, for continuous t.

    'discrete': from the model's betas or alphas_cumprod (t_n = n / N for the N training steps, interpolated in
    log alpha); 'linear': the continuous linear-beta VP-SDE.
    """

    def __init__(self, schedule='discrete', betas=None, alphas_cumprod=None, continuous_beta_0=0.1, continuous_beta_1=20.):
        if schedule not in ('discrete', 'linear'):
            raise ValueError(f"Unsupported noise schedule {schedule!r}; use 'discrete' or 'linear'")

        self.schedule = schedule
        if schedule == 'discrete':
            if betas is not None:
                log_alphas = 0.5 * torch.log(1 - betas).cumsum(dim=0)
            else:
                if alphas_cumprod is None:
                    raise ValueError("the discrete schedule needs betas or alphas_cumprod")
                log_alphas = 0.5 * torch.log(alphas_cumprod)
            self.total_N = len(log_alphas)
            self.T = 1.
            self.t_array = torch.linspace(0., 1., self.total_N + 1, device=log_alphas.device)[1:].reshape((1, -1))
            self.log_alpha_array = log_alphas.reshape((1, -1,)).float()
        else:
            self.total_N = 1000
            self.beta_0 = continuous_beta_0
            self.beta_1 = continuous_beta_1
            self.T = 1.

    def marginal_log_mean_coeff(self, t):
        """log alpha_t."""
        if self.schedule == 'discrete':
            return interpolate_fn(t.reshape((-1, 1)), self.t_array.to(t.device), self.log_alpha_array.to(t.device)).reshape((-1))
        return -0.25 * t ** 2 * (self.beta_1 - self.beta_0) - 0.5 * t * self.beta_0

    def marginal_alpha(self, t):
        return torch.exp(self.marginal_log_mean_coeff(t))

    def marginal_std(self, t):
        return torch.sqrt(1. - torch.exp(2. * self.marginal_log_mean_coeff(t)))

    def marginal_lambda(self, t):
        """lambda_t = log alpha_t - log sigma_t (half the log-SNR)."""
        log_mean_coeff = self.marginal_log_mean_coeff(t)
        log_std = 0.5 * torch.log(1. - torch.exp(2. * log_mean_coeff))
        return log_mean_coeff - log_std

    def inverse_lambda(self, lamb):
        """The t with lambda_t = lamb."""
        if self.schedule == 'discrete':
            log_alpha = -0.5 * torch.logaddexp(torch.zeros((1,)).to(lamb), -2. * lamb)
            t = interpolate_fn(log_alpha.reshape((-1, 1)), torch.flip(self.log_alpha_array.to(lamb.device), [1]), torch.flip(self.t_array.to(lamb.device), [1]))
            return t.reshape((-1,))
        tmp = 2. * (self.beta_1 - self.beta_0) * torch.logaddexp(-2. * lamb, torch.zeros((1,)).to(lamb))
        delta = self.beta_0 ** 2 + tmp
        return tmp / (torch.sqrt(delta) + self.beta_0) / (self.beta_1 - self.beta_0)


class UniPC:
    """The UniPC multistep sampler over a noise-prediction model `model_fn(x, t_continuous)`.

    Subclasses may override `model(x, t)` to call the network differently (the web UI's CFG denoiser does).
    `after_update(x, model_x)` is called after every step (model_x: the x0 prediction, None on the final step).
    """

    def __init__(self, model_fn, noise_schedule, predict_x0=True, thresholding=False, max_val=1., variant='bh1', after_update=None):
        if variant not in ('bh1', 'bh2', 'vary_coeff'):
            raise ValueError(f"Unknown UniPC variant {variant!r}; valid: bh1, bh2, vary_coeff")
        if not predict_x0:
            raise ValueError("this UniPC implements the data-prediction (predict_x0=True) form only")
        self.model_fn_ = model_fn
        self.noise_schedule = noise_schedule
        self.variant = variant
        self.predict_x0 = predict_x0
        self.thresholding = thresholding
        self.max_val = max_val
        self.after_update = after_update

    def model(self, x, t):
        return self.model_fn_(x, t.expand((x.shape[0])))

    def dynamic_thresholding_fn(self, x0, t=None):
        """Imagen's dynamic thresholding of the x0 prediction (off unless thresholding=True)."""
        dims = x0.dim()
        p = 0.995
        s = torch.quantile(torch.abs(x0).reshape((x0.shape[0], -1)), p, dim=1)
        s = torch.maximum(s, self.max_val * torch.ones_like(s).to(s.device))[(...,) + (None,) * (dims - 1)]
        return torch.clamp(x0, -s, s) / s

    def noise_prediction_fn(self, x, t):
        return self.model(x, t)

    def data_prediction_fn(self, x, t):
        """x0 = (x - sigma_t * eps) / alpha_t."""
        noise = self.noise_prediction_fn(x, t)
        alpha_t, sigma_t = self.noise_schedule.marginal_alpha(t), self.noise_schedule.marginal_std(t)
        x0 = (x - sigma_t.reshape(-1, *([1] * (x.dim() - 1))) * noise) / alpha_t.reshape(-1, *([1] * (x.dim() - 1)))
        if self.thresholding:
            x0 = self.dynamic_thresholding_fn(x0)
        return x0

    def model_fn(self, x, t):
        return self.data_prediction_fn(x, t)

    def get_time_steps(self, skip_type, t_T, t_0, N, device):
        """N+1 times from t_T down to t_0, uniform in logSNR, in t, or in sqrt(t)."""
        if skip_type == 'logSNR':
            lambda_T = self.noise_schedule.marginal_lambda(torch.tensor(t_T).to(device))
            lambda_0 = self.noise_schedule.marginal_lambda(torch.tensor(t_0).to(device))
            logSNR_steps = torch.linspace(lambda_T.cpu().item(), lambda_0.cpu().item(), N + 1).to(device)
            return self.noise_schedule.inverse_lambda(logSNR_steps)
        if skip_type == 'time_uniform':
            return torch.linspace(t_T, t_0, N + 1).to(device)
        if skip_type == 'time_quadratic':
            t_order = 2
            return torch.linspace(t_T ** (1. / t_order), t_0 ** (1. / t_order), N + 1).pow(t_order).to(device)
        raise ValueError(f"Unsupported UniPC skip type {skip_type!r}; valid: logSNR, time_uniform, time_quadratic")

    def _step_basics(self, model_prev_list, t_prev_list, t, order):
        """Shared quantities of a multistep update: h, scalings, and the scaled differences D1s with their ratios rks."""
        ns = self.noise_schedule
        t_prev_0 = t_prev_list[-1]
        # every image is at the same time, so these are scalars
        lambda_prev_0 = ns.marginal_lambda(t_prev_0)[0]
        lambda_t = ns.marginal_lambda(t)[0]
        model_prev_0 = model_prev_list[-1]
        sigma_prev_0, sigma_t = ns.marginal_std(t_prev_0)[0], ns.marginal_std(t)[0]
        alpha_t = torch.exp(ns.marginal_log_mean_coeff(t))[0]

        h = lambda_t - lambda_prev_0

        rks = []
        D1s = []
        for i in range(1, order):
            lambda_prev_i = ns.marginal_lambda(t_prev_list[-(i + 1)])[0]
            rk = (lambda_prev_i - lambda_prev_0) / h
            rks.append(rk)
            D1s.append((model_prev_list[-(i + 1)] - model_prev_0) / rk)
        rks.append(torch.ones_like(h))
        rks = torch.stack(rks)

        return model_prev_0, sigma_prev_0, sigma_t, alpha_t, h, rks, D1s

    def multistep_uni_pc_bh_update(self, x, model_prev_list, t_prev_list, t, order, x_t=None, use_corrector=True):
        """One UniPC step with B(h) = h (bh1) or e^h - 1 (bh2). Returns (x_t, model output at t or None)."""
        model_prev_0, sigma_prev_0, sigma_t, alpha_t, h, rks, D1s = self._step_basics(model_prev_list, t_prev_list, t, order)

        hh = -h  # data prediction
        h_phi_1 = torch.expm1(hh)  # e^{-h} - 1
        h_phi_k = h_phi_1 / hh - 1

        if self.variant == 'bh1':
            B_h = hh
        else:
            B_h = torch.expm1(hh)

        factorial_i = 1
        R = []
        b = []
        for i in range(1, order + 1):
            R.append(torch.pow(rks, i - 1))
            b.append(h_phi_k * factorial_i / B_h)
            factorial_i *= (i + 1)
            h_phi_k = h_phi_k / hh - 1 / factorial_i

        R = torch.stack(R)
        b = torch.stack(b)

        use_predictor = len(D1s) > 0 and x_t is None
        if len(D1s) > 0:
            D1s = torch.stack(D1s, dim=1)  # (B, K, ...)
            if x_t is None:
                if order == 2:
                    rhos_p = torch.tensor([0.5], device=x.device, dtype=b.dtype)
                else:
                    rhos_p = torch.linalg.solve(R[:-1, :-1], b[:-1])
        else:
            D1s = None

        if use_corrector:
            if order == 1:
                rhos_c = torch.tensor([0.5], device=x.device, dtype=b.dtype)
            else:
                rhos_c = torch.linalg.solve(R, b)

        x_t_ = sigma_t / sigma_prev_0 * x - alpha_t * h_phi_1 * model_prev_0

        if x_t is None:
            pred_res = torch.einsum('k,bk...->b...', rhos_p.to(x.dtype), D1s) if use_predictor else 0
            x_t = x_t_ - alpha_t * B_h * pred_res

        model_t = None
        if use_corrector:
            model_t = self.model_fn(x_t, t)
            corr_res = torch.einsum('k,bk...->b...', rhos_c[:-1].to(x.dtype), D1s) if D1s is not None else 0
            D1_t = model_t - model_prev_0
            x_t = x_t_ - alpha_t * B_h * (corr_res + rhos_c[-1] * D1_t)

        return x_t, model_t

    def multistep_uni_pc_vary_update(self, x, model_prev_list, t_prev_list, t, order, use_corrector=True):
        """One UniPC step with coefficients varying with the step ratios (the "vary_coeff" variant).

        The differences D1 = (x0_i - x0_0) / r_i are Taylor combinations of h^n x0^(n) with coefficients
        C[i, n-1] = r_i^(n-1) / n!; inverting C recovers the derivatives, each integrated exactly with phi_(n+1).
        The corrector uses every derivative it recovers, including the new difference's share of the low orders.
        """
        model_prev_0, sigma_prev_0, sigma_t, alpha_t, h, rks, D1s = self._step_basics(model_prev_list, t_prev_list, t, order)
        K = len(rks)

        # C[i, k] = rks[i]^k / (k+1)!  (Taylor coefficients of the differences)
        C = []
        col = torch.ones_like(rks)
        for k in range(1, K + 1):
            C.append(col)
            col = col * rks / (k + 1)
        C = torch.stack(C, dim=1)

        if len(D1s) > 0:
            D1s = torch.stack(D1s, dim=1)
            A_p = torch.linalg.inv(C[:-1, :-1])
        if use_corrector:
            A_c = torch.linalg.inv(C)

        hh = -h
        h_phi_1 = torch.expm1(hh)
        h_phi_ks = []
        factorial_k = 1
        h_phi_k = h_phi_1
        for k in range(1, K + 2):
            h_phi_ks.append(h_phi_k)
            h_phi_k = h_phi_k / hh - 1 / factorial_k
            factorial_k *= (k + 1)

        x_t_ = sigma_t / sigma_prev_0 * x - alpha_t * h_phi_1 * model_prev_0

        x_t = x_t_
        if len(D1s) > 0:
            for k in range(K - 1):
                x_t = x_t - alpha_t * h_phi_ks[k + 1] * torch.einsum('bk...,k->b...', D1s, A_p[k].to(x.dtype))

        model_t = None
        if use_corrector:
            model_t = self.model_fn(x_t, t)
            D1_t = model_t - model_prev_0
            # h^n x0^(n) for n = 1..K from all K differences (the history and the new one), each with its phi
            x_t = x_t_
            for k in range(K):
                derivative = D1_t * A_c[k][-1].to(x.dtype)
                if len(D1s) > 0:
                    derivative = derivative + torch.einsum('bk...,k->b...', D1s, A_c[k][:-1].to(x.dtype))
                x_t = x_t - alpha_t * h_phi_ks[k + 1] * derivative

        return x_t, model_t

    def multistep_uni_pc_update(self, x, model_prev_list, t_prev_list, t, order, **kwargs):
        if self.variant == 'vary_coeff':
            return self.multistep_uni_pc_vary_update(x, model_prev_list, t_prev_list, t, order, **kwargs)
        return self.multistep_uni_pc_bh_update(x, model_prev_list, t_prev_list, t, order, **kwargs)

    def sample(self, x, steps=20, t_start=None, t_end=None, order=3, skip_type='time_uniform', method='multistep', lower_order_final=True, denoise_to_zero=False):
        """Integrate from t_start (default T) to t_end (default 1/N) in `steps` model-call steps."""
        if method != 'multistep':
            raise ValueError(f"Unsupported UniPC method {method!r}; only 'multistep'")

        t_0 = 1. / self.noise_schedule.total_N if t_end is None else t_end
        t_T = self.noise_schedule.T if t_start is None else t_start
        t_T = float(t_T)
        order = max(1, min(int(order), steps))  # the order cannot exceed the number of steps
        device = x.device

        timesteps = self.get_time_steps(skip_type=skip_type, t_T=t_T, t_0=t_0, N=steps, device=device)

        with torch.no_grad():
            t_prev_list = [timesteps[0]]
            model_prev_list = [self.model_fn(x, timesteps[0])]

            # warm-up: lower orders until there is enough history
            for init_order in range(1, order):
                t = timesteps[init_order]
                x, model_x = self.multistep_uni_pc_update(x, model_prev_list, t_prev_list, t, init_order, use_corrector=True)
                if model_x is None:
                    model_x = self.model_fn(x, t)
                if self.after_update is not None:
                    self.after_update(x, model_x)
                model_prev_list.append(model_x)
                t_prev_list.append(t)

            for step in range(order, steps + 1):
                t = timesteps[step]
                step_order = min(order, steps + 1 - step) if lower_order_final else order
                use_corrector = step != steps  # the final step needs no corrector (it would cost a model call)
                x, model_x = self.multistep_uni_pc_update(x, model_prev_list, t_prev_list, t, step_order, use_corrector=use_corrector)
                if self.after_update is not None:
                    self.after_update(x, model_x)

                t_prev_list = t_prev_list[1:] + [t] if len(t_prev_list) >= order else t_prev_list + [t]
                if step < steps:
                    if model_x is None:
                        model_x = self.model_fn(x, t)
                    model_prev_list = model_prev_list[1:] + [model_x] if len(model_prev_list) >= order else model_prev_list + [model_x]

            if denoise_to_zero:
                x = self.data_prediction_fn(x, torch.ones((1,)).to(device) * t_0)

        return x

