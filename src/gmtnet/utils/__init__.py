"""Small helpers with no domain knowledge (paths, atomic writes)."""
