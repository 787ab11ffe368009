"""Glue for other libraries, each an optional extra: :mod:`.huggingface` (``isomax[huggingface]``)."""
