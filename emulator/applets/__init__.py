"""Card applications, one module per application, registered by profile type name."""

from __future__ import annotations

from ..cardos.card import Application
from ..cardos.commands import IsoApplication
from .eid_pki import EidPkiApplication
from .emrtd import EmrtdApplication
from .moica import MoicaGen1Application

APPLICATION_TYPES: dict[str, type[Application]] = {
    IsoApplication.type_name: IsoApplication,
    MoicaGen1Application.type_name: MoicaGen1Application,
    EmrtdApplication.type_name: EmrtdApplication,
    EidPkiApplication.type_name: EidPkiApplication,
}
