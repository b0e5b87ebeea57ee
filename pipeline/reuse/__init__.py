"""KV-cache block reuse: LRU stack distances, miss-ratio curves, prefix trees, sessions from prefix chains."""
