"""eidemu: emulated Taiwan identity smart cards and a conformance test harness.

The distribution installs one import namespace of its own:

- :mod:`eidemu.emulator` — the card side (ISO 7816 codec, card OS, applications, transports,
  the TEST PKI);
- :mod:`eidemu.conformance` — the tester side (card connections, scripts, runner, flows,
  reports, the pytest plugin);
- :mod:`eidemu.fixtures` — shipped data (profiles, TEST PKI, card declarations);
- :mod:`eidemu.cards` — the ``emulator:`` and ``served:`` card URIs and the virtual reader,
  which need both halves (registered with the tester as ``eidemu.card_schemes`` entry points);
- :mod:`eidemu.cli` — the ``eidemu`` command, which drives both halves.
"""

__version__ = "0.2.0"
