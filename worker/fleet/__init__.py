"""Scale-out on Redis: a stream of ids drained by many workers under one org-wide rate."""
