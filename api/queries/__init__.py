"""Read queries of the HTTP API, one module per resource, apart from the routes."""
