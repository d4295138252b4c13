"""Cold-chain rules: excursion, low battery and sensor-offline alarms, with persisted state."""
