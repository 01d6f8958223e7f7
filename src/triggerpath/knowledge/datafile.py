"""Reading one data file of ``knowledge/data`` into its model: the one way every loader does it.

:func:`validated` reads a YAML file, validates it against its model and turns each way it
can fail into :class:`~triggerpath.errors.FieldProblem` s with the file's name: a missing
file, a file that is not YAML, and every schema problem with its path
(``pathway.yaml:red_flags.0.when``). ``load_knowledge``, ``review.yaml``, ``measures.yaml``,
``procedure_coding.yaml`` and ``integrity.yaml`` all load through it.

PyYAML is imported on first read, not with this module: a CLI command that finds the
validated knowledge base in its cache (``knowledge/cache.py``) never parses YAML.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from triggerpath.errors import FieldProblem, KnowledgeError

DATA_PACKAGE = "triggerpath.knowledge.data"
M = TypeVar("M", bound=BaseModel)


class NotYaml(ValueError):
    """A data file that PyYAML cannot parse (the message is PyYAML's)."""


def read_yaml(name: str) -> Any:
    """The parsed data file ``name``; ``FileNotFoundError`` or :class:`NotYaml`.

    libyaml's safe loader when PyYAML has it: the same documents as ``yaml.safe_load``,
    about ten times faster.
    """
    import yaml

    text = resources.files(DATA_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise NotYaml(str(exc)) from None


def schema_problems(file: str, err: ValidationError) -> Iterator[FieldProblem]:
    """Each schema problem of ``file``, named ``file:dotted.path``."""
    for e in err.errors():
        yield FieldProblem(f"{file}:" + ".".join(str(p) for p in e["loc"]), e["msg"])


def validated(name: str, model: type[M], read: Callable[[str], Any] = read_yaml) -> M:
    """``knowledge/data/<name>`` read with ``read`` and validated as ``model``.

    Raises :class:`KnowledgeError` listing every problem of the file.
    """
    try:
        return model.model_validate(read(name))
    except FileNotFoundError:
        raise KnowledgeError([FieldProblem(name, "file is missing")]) from None
    except NotYaml as exc:
        raise KnowledgeError([FieldProblem(name, f"not valid YAML: {exc}")]) from None
    except ValidationError as exc:
        raise KnowledgeError(list(schema_problems(name, exc))) from None


__all__ = ["DATA_PACKAGE", "NotYaml", "read_yaml", "schema_problems", "validated"]
