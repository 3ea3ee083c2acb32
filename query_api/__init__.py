"""freshindex query side: the HTTP API over the live index."""
