"""Business rules, one package per area. Nothing here imports FastAPI."""
