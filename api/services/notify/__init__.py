"""Notification delivery: the message content, one module per channel, and the dispatcher."""
