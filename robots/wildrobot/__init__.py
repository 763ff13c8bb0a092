"""The default robot: a WildRobot-class 11-DOF servo humanoid (DESIGN.md section 5)."""

from robots.wildrobot.spec import SPEC

__all__ = ["SPEC"]
