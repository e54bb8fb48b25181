"""Repository-wide pytest hooks (loaded for ``pytest --nbval-lax source`` as well as ``tests``).

Exercise and test cells in source/ carry the ``raises-exception`` tag for the students:
nbgrader copies it into release/, so JupyterLab's Run All goes past an unfinished exercise.
nbval reads the same tag as "this cell may raise". In the instructor's notebooks every
cell must run cleanly, so there nbval accepts an exception only where the cell itself
says so with a ``# NBVAL_RAISES_EXCEPTION`` comment.
"""


def pytest_collection_modifyitems(items):
    from nbval.plugin import IPyNbCell, find_comment_markers

    for item in items:
        if isinstance(item, IPyNbCell) and "source" in item.path.parts:
            markers = dict(find_comment_markers(item.cell.source))
            item.options["check_exception"] = bool(markers.get("check_exception"))
