# A private file the prelude does not have: it still loads from disk.
REGISTRY = "localhost:5000"
