"""Every public name of pyserf, and every public method and property of its classes, has a
docstring."""

import inspect
import types

import pyserf


def _public_api():
    """(name, object) for each class and function pyserf exports, and for each public method
    and property of those classes. Constants and type aliases (Event, QueryUpdate) cannot carry
    a docstring."""
    for name, obj in vars(pyserf).items():
        if name.startswith("_") or isinstance(obj, types.ModuleType):
            continue
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj):
            yield name, obj
            yield from _methods(name, obj)


def _methods(name, cls):
    """Public methods and properties of ``cls``, including those inherited from pyserf's own
    base classes (Handle.close...), but not from Exception, Enum or object."""
    for base in cls.__mro__:
        if base.__module__.partition(".")[0] != "pyserf":
            continue
        for attr, member in vars(base).items():
            if attr.startswith("_"):
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if inspect.isfunction(member) or isinstance(member, property):
                yield f"{name}.{attr}", member


def _own_doc(obj) -> str:
    if inspect.isclass(obj):
        doc = vars(obj).get("__doc__") or ""  # not inherited
        # A dataclass without a docstring gets "Name(field: type, ...)" invented for it.
        return "" if doc.startswith(f"{obj.__name__}(") else doc
    return obj.__doc__ or ""


def test_public_api_is_documented():
    api = dict(_public_api())
    # The walk itself reaches classes, methods, properties and inherited methods.
    assert {"Serf", "TooLargeError", "Serf.send_event", "Serf.port", "Query.close",
            "Member.address"} <= api.keys()
    missing = sorted(name for name, obj in api.items() if not _own_doc(obj).strip())
    assert not missing, f"public API without a docstring: {missing}"
