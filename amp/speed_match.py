"""Reference transitions drawn at the speeds the policy is commanded to walk at.

The merged dataset's transitions are drawn in proportion to their clips' weights, so the
discriminator's "data" is spread over speeds as the clips happen to be: the embedded clips hold
18 % standing and 21 % at 0.5 m/s or faster, and 4 % between 0.1 and 0.2 m/s. An unconditional
discriminator then scores a policy walking at a 0.3 m/s command as rare (so unlike the data).
Measured (run w10, ``cpu-walk`` at a 1.0 Hz clock): matching lowered the flat error from 0.204
to 0.162 m/s and the yaw error from 0.120 to 0.065 rad/s, but the robot still walked at
0.49 m/s at a 0.3 command, a speed the clock's fixed step rate and the data's step lengths
set. :func:`speed_matched_probability` reweights the transitions so that their forward speed,
averaged over a window about a stride long, is spread uniformly over the command range, as the
policy's commands are: bin b of width ``bin_width_mps`` gets the weight ``(1 / bins) / m_b``
(``m_b`` its share before), capped at ``max_ratio``; transitions outside the range get none.
Within a bin the clips keep their relative weights (feasibility included).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amp.features import FORWARD_SPEED_COLUMN
from robots.errors import AmpkitError


class SpeedMatchError(AmpkitError, ValueError):
    """The dataset holds no transition at the commanded speeds, or the settings cannot work."""


@dataclass(frozen=True)
class SpeedMatch:
    """How the reference transitions are matched to the commanded speeds.

    Attributes:
        speed_range_mps: (low, high) forward speeds the policy is commanded [m/s], low < high.
        window_s: Forward speed is averaged over this window centred on each frame [s]
            (clipped at the clip's ends), so a stride's in-step surge does not move a frame
            between bins.
        bin_width_mps: Width of the speed bins [m/s]; the range is split into
            ``ceil((high - low) / bin_width_mps)`` equal bins.
        max_ratio: A bin's weight is raised at most this many times (a bin held by a few
            frames would otherwise be drawn again and again).
    """

    speed_range_mps: tuple[float, float]
    window_s: float = 1.0
    bin_width_mps: float = 0.05
    max_ratio: float = 4.0

    def bin_edges(self) -> np.ndarray:
        low, high = self.speed_range_mps
        if not high > low:
            raise SpeedMatchError(f"speed_range_mps={self.speed_range_mps} needs low < high")
        if not (self.bin_width_mps > 0 and self.max_ratio >= 1 and self.window_s > 0):
            raise SpeedMatchError(f"bin_width_mps={self.bin_width_mps} must be > 0, "
                                  f"max_ratio={self.max_ratio} >= 1, window_s={self.window_s} > 0")
        bins = int(np.ceil((high - low) / self.bin_width_mps - 1e-9))
        return np.linspace(low, high, bins + 1)


@dataclass(frozen=True)
class SpeedMatchReport:
    """Per speed bin, the share of reference transitions before and after matching.

    Attributes:
        bin_edges: [K + 1] bin edges [m/s].
        share_before: [K] share of the transitions' probability in each bin, as drawn before.
        share_after: [K] the same after matching (sums to 1).
        outside_before: Share of the probability outside the range before (dropped).
        capped_bins: Bins whose weight hit ``max_ratio`` (they stay below a uniform share).
    """

    bin_edges: np.ndarray
    share_before: np.ndarray
    share_after: np.ndarray
    outside_before: float
    capped_bins: tuple[int, ...]

    def summary(self) -> str:
        """One line: each bin's share before -> after, in percent."""
        parts = [f"{lo:.2f}-{hi:.2f}: {100 * b:.0f}->{100 * a:.0f}%"
                 for lo, hi, b, a in zip(self.bin_edges[:-1], self.bin_edges[1:],
                                         self.share_before, self.share_after, strict=True)]
        return (f"reference transitions matched to commanded speeds ({'; '.join(parts)}; "
                f"{100 * self.outside_before:.0f}% outside the range dropped)")


def windowed_speed(forward_speed: np.ndarray, clip_start: np.ndarray, clip_length: np.ndarray,
                   window_frames: int) -> np.ndarray:
    """Forward speed [N] averaged over ``window_frames`` frames centred on each frame, within
    its clip (near a clip's ends over the frames the clip has).

    Args:
        forward_speed: [N] per-frame forward speed of all clips, back to back [m/s].
        clip_start, clip_length: [C] each clip's first frame and its frame count.
        window_frames: Window length in frames (>= 1).
    """
    out = np.empty(len(forward_speed), np.float64)
    half = window_frames // 2
    for start, length in zip(np.asarray(clip_start), np.asarray(clip_length), strict=True):
        clip = np.asarray(forward_speed[start:start + length], np.float64)
        cumulative = np.concatenate([[0.0], np.cumsum(clip)])
        index = np.arange(length)
        low, high = np.maximum(index - half, 0), np.minimum(index + half + 1, length)
        out[start:start + length] = (cumulative[high] - cumulative[low]) / (high - low)
    return out


def speed_matched_probability(features: np.ndarray, clip_start: np.ndarray,
                              clip_length: np.ndarray, pair_start: np.ndarray,
                              pair_probability: np.ndarray, fps: float,
                              match: SpeedMatch) -> tuple[np.ndarray, SpeedMatchReport]:
    """The transitions' probabilities [P] reweighted to spread their windowed forward speed
    uniformly over ``match.speed_range_mps`` (module docstring).

    Args:
        features: [N, 29] AMP frames of all clips, back to back.
        clip_start, clip_length: [C] the clip index.
        pair_start: [P] each transition's first frame; pair_probability: [P] as drawn now.
        fps: Frame rate [Hz].
        match: The range, window, bins and cap.
    Returns:
        The new probabilities [P] (float64, summing to 1) and a :class:`SpeedMatchReport`.
    Raises:
        SpeedMatchError: no transition lies in the range, or the settings are invalid.
    """
    edges = match.bin_edges()
    window_frames = max(1, int(round(match.window_s * fps)))
    speed = windowed_speed(features[:, FORWARD_SPEED_COLUMN], clip_start, clip_length,
                           window_frames)[pair_start]
    probability = np.asarray(pair_probability, np.float64)
    probability = probability / probability.sum()
    bin_of = np.searchsorted(edges, speed, side="right") - 1
    bin_of[speed == edges[-1]] = len(edges) - 2  # the top edge belongs to the last bin
    inside = (bin_of >= 0) & (bin_of < len(edges) - 1)
    if not inside.any():
        raise SpeedMatchError(
            f"no reference transition moves at the commanded {match.speed_range_mps} m/s "
            f"(windowed forward speeds span {speed.min():.2f} to {speed.max():.2f} m/s)")
    num_bins = len(edges) - 1
    share_before = np.bincount(bin_of[inside], probability[inside], num_bins)
    wanted = np.divide(1.0 / num_bins, share_before, out=np.zeros(num_bins),
                       where=share_before > 0)  # an empty bin has nothing to raise
    ratio = np.minimum(wanted, match.max_ratio)
    matched = np.where(inside, probability * ratio[np.where(inside, bin_of, 0)], 0.0)
    matched /= matched.sum()
    report = SpeedMatchReport(
        bin_edges=edges, share_before=share_before,
        share_after=np.bincount(bin_of[inside], matched[inside], num_bins),
        outside_before=float(probability[~inside].sum()),
        capped_bins=tuple(int(b) for b in np.flatnonzero(wanted > match.max_ratio)))
    return matched, report
