"""Runnable scripts (``python experiments/<name>.py``)."""
