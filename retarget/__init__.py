"""Human motion in, robot motion out: AMASS loading, body models, synthesized clips, retargeting.

Importing the package is light: numpy/scipy only. ``torch`` and ``smplx`` load only when the
``smplx`` body model is built.
"""
