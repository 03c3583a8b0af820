"""Parameter files read and written safely: one bounded UTF-8 YAML document, timestamps left as text
(window.py parses them with their timezone), no alias and no duplicate key; written back without aliases
so a record's params.yaml loads again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ParamsError

#: A parameter file is a few kilobytes; anything this large is not one (and is not read whole).
MAX_PARAMS_BYTES = 1024 * 1024


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves timestamps as strings (they are parsed, with a timezone, by window.py),
    refuses aliases (``*name``: a few hundred bytes of them expand to gigabytes, the "billion laughs",
    and every later walk of the parameters would go through each copy) and duplicate keys (``window:``
    twice: YAML keeps the last one silently, so the file would not mean what one reads)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"an alias (*{event.anchor}) is not allowed in a "
                                              "parameter file: write the value out", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:
                    continue  # an unhashable key: construct_mapping says so below
                if first is not key_node:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first on line {first.start_mark.line + 1})",
                        key_node.start_mark)
        return super().construct_mapping(node, deep)


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}



def load_yaml(path: Path) -> Any:
    """One YAML document, bounded: at most :data:`MAX_PARAMS_BYTES`, UTF-8, no alias, no duplicate key.
    Every problem is one line (:class:`ParamsError`)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_PARAMS_BYTES + 1)
    except FileNotFoundError:
        raise ParamsError(path, "no such file") from None
    except IsADirectoryError:
        raise ParamsError(path, "is a directory, not a parameter file") from None
    except OSError as exc:
        raise ParamsError(path, f"cannot read: {exc.strerror}") from None
    if len(raw) > MAX_PARAMS_BYTES:
        raise ParamsError(path, f"larger than {MAX_PARAMS_BYTES // 1024} KiB: not a parameter file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParamsError(path, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}): "
                                "save it as UTF-8") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParamsError(path, f"malformed YAML: {where}{problem}") from None



class _Dumper(yaml.SafeDumper):
    """Never writes an alias (a value used twice is written twice): :class:`_Loader` refuses them."""

    def ignore_aliases(self, data):
        return True


def dump(data: dict) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)
