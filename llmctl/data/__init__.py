"""Training data: reading JSONL/JSON/CSV with file:line errors, formats, chat templates, batching and packing."""
