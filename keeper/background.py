"""``Background``: one call on a thread of its own, joined when its result is taken."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """Runs ``fn()`` on a thread at once; ``result()`` waits for it and returns its value or
    raises its exception. The thread has ended when ``result()`` returns, so a caller that
    forks worker processes next forks no thread in the middle of a network call."""

    def __init__(self, fn: Callable[[], T], name: str) -> None:
        self._fn = fn
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as e:  # handed to the caller by result()
            self._error = e

    def result(self) -> T:
        """The call's value (its exception is raised here)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


__all__ = ["Background"]
