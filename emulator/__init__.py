"""eidemu's card side: emulated smart cards built from declarative profiles."""

__version__ = "0.1.0"
