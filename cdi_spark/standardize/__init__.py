"""Standardize: bronze records of every source into one canonical customer schema.

The field cleaners live in one module per kind of field (``names``, ``emails``, ``phones``,
``dates``, ``places``, ``money``); each is a ``Column -> Column`` function or a factory
returning one, composed by the stage with ``withColumns``.
"""
