"""The console's static files (HTML, CSS, ES modules), shipped as package data."""
