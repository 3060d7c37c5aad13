"""The MOICA-shaped test PKI: synthetic identities, certificate generation, CRL and OCSP services.

Everything produced here is TEST ONLY (see ``fixtures/pki/PROVENANCE.md`` and ``docs/test-pki.md``).
"""

# Light constants, importable without cryptography (the CLI reads them at start-up).
DEFAULT_BASE_URL = "http://127.0.0.1:8765/"
DEFAULT_SEED = 20240811
