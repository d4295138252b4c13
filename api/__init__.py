"""The backend service: REST API, ticket engine and notification delivery."""
