"""Exception hierarchy shared by every ampkit package (robots is the lowest layer)."""

from __future__ import annotations

from pathlib import Path


class AmpkitError(Exception):
    """Base class of every error ampkit raises on purpose."""


class UnknownRobotError(AmpkitError, ValueError):
    """A robot name that has no folder under ``robots/``."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown robot {name!r}; known robots: {', '.join(known) or 'none'}")


class InputFileError(AmpkitError, ValueError):
    """A file that cannot be used, with the file and the problem named."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class MotionFileError(InputFileError):
    """A robot-motion file (DESIGN 4.3) that is unreadable or breaks the schema."""
