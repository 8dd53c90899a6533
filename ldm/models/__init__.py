"""Stable Diffusion architecture under the original latent-diffusion module paths (extensions import and hook these)."""
