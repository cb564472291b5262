"""Blob storage: a small driver interface (``driver``) and the on-disk layout (``paths``)."""
