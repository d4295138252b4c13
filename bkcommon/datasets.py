"""Names shared by the two exports of reviewed captures (the API's VOC zip for reviewers and
``brightkitchen export-captures`` for training)."""

from __future__ import annotations

NEEDS_LABEL = "needs_label"
"""Class of a dismissed capture's box. A dismissal says the violation was wrong, not what the
box holds (a "no mask" dismissed because the cook wore one is still a face), so the box keeps
the edge box's label beside it (``model_label``) and this name, which no training recipe
knows: ``models prepare`` refuses the file until a person renames or deletes the box."""
