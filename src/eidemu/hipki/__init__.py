"""A local signing service compatible with HiPKI (``http://localhost:61161``), over eidemu's cards.

Web relying parties of the citizen certificate card talk to the vendor's local service, not
to the card; this package serves the same HTTP API (``docs/hipki.md``) over any card eidemu
reaches (``emulator:`` in process, ``pcsc:`` behind pcscd), following readers and cards as
they come and go. Modules: :mod:`.errors` (answer codes), :mod:`.cards` (slots and tokens),
:mod:`.cms` (PKCS#1 and CMS signatures), :mod:`.service` (the calls), :mod:`.app` (routes),
:mod:`.trust`, :mod:`.user`, :mod:`.bmp`, :mod:`.server` (running it on eidemu's one HTTP
base, :mod:`eidemu.emulator.pki.http_service`).
"""
