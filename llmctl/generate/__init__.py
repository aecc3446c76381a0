"""Text generation: sampling, the cached decode loop, chat sessions, engines' common interface, proxy-tuning."""
