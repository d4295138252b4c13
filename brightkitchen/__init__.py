"""The composition root: the ``brightkitchen`` CLI, migrations, registry sync, the demo.

Only this package may start every part (edge, ingest, api); the parts never import
each other.
"""

__version__ = "0.1.0"
