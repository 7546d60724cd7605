"""Looking inside the exception groups trio's nurseries raise: the plain exceptions they hold."""

from __future__ import annotations


def leaves(exc: BaseException) -> list[BaseException]:
    """Every exception in ``exc`` that is not itself a group, however deeply nested, in order;
    ``[exc]`` for a plain exception: what went wrong, rather than the nursery that reported it."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]
