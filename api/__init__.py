"""firelane's outward interfaces: the FastAPI app (OGC API Features, checks, ledger, auth) and the CLI."""
