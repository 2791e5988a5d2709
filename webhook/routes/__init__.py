"""The service's routers: KPN ingest, the read API, health and metrics."""
