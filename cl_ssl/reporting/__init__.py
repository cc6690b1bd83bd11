"""Tables (pandas) built from the tidy metric rows of a bench."""
