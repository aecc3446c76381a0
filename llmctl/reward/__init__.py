"""Rewards: reward models (load, score), reward functions (``module:function``), and WARM weight averaging.

Shared by ``llmctl score``, ``llmctl merge`` and the methods that score sampled answers (PPO, rejection sampling).
Heavy libraries are imported inside the modules, never by this package itself.
"""
