"""The MOICA-shaped test PKI: synthetic identities, certificate generation, CRL and OCSP services.

Everything produced here is TEST ONLY (see ``fixtures/pki/PROVENANCE.md`` and ``docs/test-pki.md``).
"""
