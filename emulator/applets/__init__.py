"""Card applications, one module per application, registered by profile type name."""

from __future__ import annotations

from ..iso7816.card import Application
from ..iso7816.commands import IsoApplication
from .moica import MoicaGen1Application

APPLICATION_TYPES: dict[str, type[Application]] = {
    IsoApplication.type_name: IsoApplication,
    MoicaGen1Application.type_name: MoicaGen1Application,
}
