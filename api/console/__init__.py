"""The regulator web console: static pages served by the API, its export and small reads."""
