"""Loading, saving and describing models; heavy libraries are imported inside functions only."""
