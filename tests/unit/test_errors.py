"""One error root: every exception class the tool defines (outside the sandbox) is a ForensicsError,
so the CLI's one ``except ForensicsError`` turns each into a one-line message and an exit code."""

import importlib
import inspect
import pkgutil

import pytest

import forensics
from forensics.errors import ForensicsError, ObjectError, QueryError, ShortLine


def _modules():
    for info in pkgutil.walk_packages(forensics.__path__, "forensics."):
        if info.name.startswith("forensics.sandbox"):
            continue  # its own package (issue 16): SandboxError is checked there
        yield importlib.import_module(info.name)


def test_every_exception_class_of_the_library_is_under_the_root():
    found, outside = [], []
    for module in _modules():
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.append(f"{module.__name__}.{name}")
                if not issubclass(obj, ForensicsError):
                    outside.append(f"{module.__name__}.{name}")
    assert "forensics.errors.QueryError" in found, found
    assert outside == []


@pytest.mark.parametrize("cls, also", [(QueryError, ValueError), (ShortLine, ValueError), (ObjectError, None)])
def test_the_former_strays_keep_their_names_and_catchers(cls, also):
    assert issubclass(cls, ForensicsError)
    if also:
        assert issubclass(cls, also)  # callers that catch ValueError still catch it
    from forensics import queries
    from forensics.sources import alb_logs, s3_objects

    assert queries.QueryError is QueryError
    assert alb_logs.ShortLine is ShortLine
    assert s3_objects.ObjectError is ObjectError


def test_a_malformed_query_is_a_user_error_with_exit_2(tmp_path):
    from forensics.queries import _parse

    path = tmp_path / "broken.yaml"
    path.write_text("- not\n- a mapping\n")
    with pytest.raises(ForensicsError) as info:
        _parse(path)
    assert info.value.exit_code == 2
    assert "\n" not in str(info.value)
