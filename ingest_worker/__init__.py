"""freshindex ingest side: sources, pipeline, embedder and the Postgres+pgvector store."""
