"""Alignment core: preference losses (DPO, IPO), reward models, PPO mathematics and WARM weight averaging.

Everything here is independent of the training loop; the method plugins (dpo, reward, ppo, rejection-sampling)
wire these pieces into it. Heavy libraries are imported inside the modules, never by this package itself.
"""
