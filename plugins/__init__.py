"""llmctl's builtin plugins; each module registers through the ``llmctl`` entry-point group like any other."""
