"""Machine learning: backbones, self-supervision, embeddings, estimators, query strategies (no service code)."""
