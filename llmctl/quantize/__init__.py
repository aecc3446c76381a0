"""Quantization: method look-up, the run that writes a quantized artefact, its quality check, and loading it."""
