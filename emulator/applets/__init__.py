"""Card applications, one module per application, registered by profile type name.

The registry imports an application's module the first time a profile names its type, so a
card that uses only the ISO commands does not load (say) the eID chip's ICAO codec: start-up
of ``eidemu serve`` stays short.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping

from ..cardos.card import Application

# type name -> (module, class), relative to this package.
_BUILT_IN: dict[str, tuple[str, str]] = {
    "iso": ("..cardos.commands", "IsoApplication"),
    "moica-gen1": (".moica", "MoicaGen1Application"),
    "emrtd": (".emrtd", "EmrtdApplication"),
    "eid": (".eid", "EidApplication"),
    "eid-pki": (".eid_pki", "EidPkiApplication"),
}


class ApplicationTypes(MutableMapping[str, type[Application]]):
    """Application classes by profile type name, imported on first use."""

    def __init__(self, built_in: dict[str, tuple[str, str]]) -> None:
        self._where = dict(built_in)
        self._loaded: dict[str, type[Application]] = {}

    def __getitem__(self, name: str) -> type[Application]:
        if name not in self._loaded:
            module, attribute = self._where[name]  # KeyError for an unknown type
            cls = getattr(importlib.import_module(module, __package__), attribute)
            self._loaded[name] = cls
        return self._loaded[name]

    def __setitem__(self, name: str, cls: type[Application]) -> None:
        self._loaded[name] = cls
        self._where.setdefault(name, (cls.__module__, cls.__qualname__))

    def __delitem__(self, name: str) -> None:
        self._loaded.pop(name, None)
        del self._where[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


APPLICATION_TYPES = ApplicationTypes(_BUILT_IN)
