"""Local test doubles of MOICA's relying-party back-end services (``docs/moica-services.md``):
the mobile citizen certificate service with a scripted phone (:mod:`.fido`, :mod:`.phone`)
and ICS identity confirmation (:mod:`.ics`). TEST ONLY."""
