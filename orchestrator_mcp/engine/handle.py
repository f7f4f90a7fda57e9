"""A run executing in this process, as the engine holds it: the way to cut it."""

from __future__ import annotations

from dataclasses import dataclass

import anyio


@dataclass(slots=True)
class RunHandle:
    """A run executing in this process; `cancel()` cuts it wherever it is."""

    run_id: str
    reason: str | None = None
    _scope: anyio.CancelScope | None = None
    _shield: anyio.CancelScope | None = None

    def shield(self) -> anyio.CancelScope:
        """The scope the whole execution runs in, deaf to outside cancellation until `kill()`."""
        self._shield = anyio.CancelScope(shield=True)
        return self._shield

    def kill(self) -> None:
        """Cut the execution now, recorded or not (after a shutdown grace ran out)."""
        if self._shield is not None:
            self._shield.cancel()

    def scope(self) -> anyio.CancelScope:
        """A new scope for the next phase of the run, cancelled at once if the run already is."""
        self._scope = anyio.CancelScope()
        if self.reason is not None:
            self._scope.cancel()
        return self._scope

    def cancel(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        if self._scope is not None:
            self._scope.cancel()
