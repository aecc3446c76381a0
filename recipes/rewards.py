"""Rule-based rewards for ``--method ppo`` and ``--method rejection-sampling``.

Name one as ``reward=recipes.rewards:brevity`` from the project folder (the folder you run llmctl in is searched
for the module, after the installed packages). A reward function takes the prompts and the sampled completions as
keyword arguments (plus others it may ignore) and returns one float per completion, the shape trl's reward
functions use.
"""

from __future__ import annotations


def brevity(prompts, completions, **_):
    """Shorter answers score higher: minus a tenth of a point per word."""
    return [-0.1 * len(text.split()) for text in completions]
