"""Many files at once: checking a batch (which file counts, annotated copies, history) and collecting it."""
