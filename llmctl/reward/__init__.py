"""Rewards: reward models (load, score), reward functions and registered rewards (``functions``, ``scoring``), WARM.

Shared by ``llmctl score``, ``llmctl merge`` and the methods that score sampled answers (GRPO, PPO, rejection sampling).
Heavy libraries are imported inside the modules, never by this package itself.
"""
