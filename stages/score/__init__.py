"""score: a responses artifact scored on its spec (outputs produced elsewhere)."""
