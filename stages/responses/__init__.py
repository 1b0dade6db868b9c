"""responses: register responses produced outside the recipe as a source artifact."""
