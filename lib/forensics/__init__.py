"""Incident forensic notebooks: live evidence during an incident, a dated verifiable record after it.

Notebooks use :func:`open_incident`; everything else is reached through its submodules
(``forensics.sources.cloudwatch``, ``forensics.analysis.onset``, ...).
"""

__version__ = "0.1.0"


def open_incident(*args, **kwargs):
    """Open the incident a notebook works on (see :func:`forensics.session.open_incident`)."""
    from .session import open_incident as _open

    return _open(*args, **kwargs)


__all__ = ["__version__", "open_incident"]
