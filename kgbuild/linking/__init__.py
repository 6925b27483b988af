"""Entity linking: mentions in, mentions with entity keys out; the entity table at the end of a run."""
