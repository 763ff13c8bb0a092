"""Where the human motion comes from: the ``source:`` and ``body_model:`` params sections."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.params import ConfigError, build_config, load_section
from retarget.body_models import BODY_MODEL_KINDS
from retarget.stages import DEFAULT_EXCLUDE, DEFAULT_INCLUDE

SOURCE_KINDS = ("synthetic", "amass", "bvh")
SYNTHETIC_DIR = "data/raw/synthetic"


@dataclass(frozen=True)
class SourceConfig:
    """``source:`` section.

    Attributes:
        kind: ``synthetic`` (the embedded default clips), ``amass`` (your AMASS clips) or
            ``bvh`` (BVH motion capture: no body model, the file's skeleton is the subject).
            Every kind takes both ``.npz`` and ``.bvh`` files found under ``dir``; the kind
            says what you meant, for the synthesize stage and for the reader.
        dir: Directory of the clips (searched recursively). For ``synthetic`` it is where the
            synthesize stage writes.
        include: Globs (relative to ``dir``) of the files to take.
        exclude: Globs of files to leave out; shape-only AMASS files by default.
    """

    kind: str = "synthetic"
    dir: str = SYNTHETIC_DIR
    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ConfigError(f"source.kind {self.kind!r}; valid kinds: {', '.join(SOURCE_KINDS)}")


@dataclass(frozen=True)
class BodyModelConfig:
    """``body_model:`` section.

    Attributes:
        kind: ``skeleton`` (license-free, default) or ``smplx`` (needs the model files).
        dir: Directory holding ``smplx/SMPLX_NEUTRAL.npz`` etc.; only for ``smplx``.
    """

    kind: str = "skeleton"
    dir: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in BODY_MODEL_KINDS:
            raise ConfigError(
                f"body_model.kind {self.kind!r}; valid kinds: {', '.join(BODY_MODEL_KINDS)}")
        if self.kind == "smplx" and not self.dir:
            raise ConfigError("body_model.kind is smplx but body_model.dir is not set")


def load_source(params: str | Path) -> SourceConfig:
    return build_config(SourceConfig, load_section("source", params), f"{params}: source")


def load_body_model(params: str | Path) -> BodyModelConfig:
    return build_config(BodyModelConfig, load_section("body_model", params),
                        f"{params}: body_model")
