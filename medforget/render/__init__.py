"""Rendering for people: the terminal (:mod:`.terminal`) and self-contained HTML pages (:mod:`.html`).

Nothing here computes a result; every function takes a library document and returns text or a
renderable. Number formats live in :mod:`.format`, colours and labels in :mod:`.palette`.
"""
