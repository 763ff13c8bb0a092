"""Training: MJX environments, AMP+PPO, checkpoints, evaluation, export.

Importing the package makes the later import of MuJoCo MJX quiet on stdout (see
:mod:`training.quiet_imports`).
"""

from training.quiet_imports import install_quiet_import

install_quiet_import()
