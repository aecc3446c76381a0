"""The one training loop every fine-tuning and alignment method runs on."""
