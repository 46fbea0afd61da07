"""HTTP service for sigscore (FastAPI)."""
