"""The shipped Python-written conformance tests (see :mod:`eidemu.conformance.pythontests`).

- :mod:`.moica_certificates`: ``MOICA_CERT_*``, the profile of the certificates on a
  citizen digital certificate card (issuer DN, key sizes, key usage, Subject Directory
  Attributes, validity, policies);
- :mod:`.moica_relying_party`: ``MOICA_FLOW_*``, end-to-end relying-party flows (sign and
  verify, decrypt, chain and revocation validation against the local CRL/OCSP services).
"""
