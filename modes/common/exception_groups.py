"""Looking inside the exception groups trio's nurseries raise: the plain exceptions they hold."""

from __future__ import annotations


def leaves(group: BaseExceptionGroup) -> list[BaseException]:
    """Every exception in ``group`` that is not itself a group, however deeply nested."""
    found: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        else:
            found.append(exc)
    return found
