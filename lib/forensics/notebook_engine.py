"""The papermill engine `forensics run` executes notebooks with: papermill's own (nbclient), saving the
executed notebook less often.

papermill writes the whole notebook (every output so far, figures as base64) at each cell's start and
end: 30-40 writes per notebook, about 0.6 s of the worker's CPU per notebook, which the 2 cores a run
shares with its kernels and its capture plan pay for. This engine saves at most every
``SAVE_EVERY_S`` seconds while cells run, and always when the notebook ends, whether it completed,
failed, timed out or lost its kernel (papermill's ``notebook_complete``), so a failed notebook keeps its
partial output as before. Only a worker killed outright (SIGKILL) may leave a notebook up to
``SAVE_EVERY_S`` seconds behind; the run marks that notebook failed anyway.
"""

from __future__ import annotations

from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

NAME = "forensics"
#: seconds between two saves of a notebook while its cells run
SAVE_EVERY_S = 5.0


class ThrottledSaves(NotebookExecutionManager):
    """papermill's execution manager whose saves during execution are at least ``SAVE_EVERY_S`` apart."""

    def save(self, **kwargs):
        ended = self.end_time is not None  # set by notebook_complete, which always saves
        if not ended and (self.now() - self.last_save_time).total_seconds() < SAVE_EVERY_S:
            return
        super().save(**kwargs)


class ForensicsEngine(NBClientEngine):
    """nbclient execution as papermill does it, with :class:`ThrottledSaves` as the execution manager
    (papermill's ``Engine.execute_notebook``, whose manager class is not a parameter)."""

    @classmethod
    def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=True, log_output=False,
                         autosave_cell_every=30, **kwargs):
        nb_man = ThrottledSaves(nb, output_path=output_path, progress_bar=progress_bar, log_output=log_output,
                                autosave_cell_every=autosave_cell_every)
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb


papermill_engines.register(NAME, ForensicsEngine)
