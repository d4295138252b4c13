"""Domain logic of the backend: the ticket engine and notification delivery."""
