"""Moved to :mod:`forensics.sandbox.moto_ext` (one module per AWS service); this name re-exports it for
code written against the single module."""

from .moto_ext import *  # noqa: F401,F403
from .moto_ext import __all__  # noqa: F401
