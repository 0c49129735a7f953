"""Identity resolution: deterministic edges, ML matching, clustering of match edges."""
