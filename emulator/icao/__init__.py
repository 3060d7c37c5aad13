"""ICAO Doc 9303 eMRTD codec: LDS data groups and their ASN.1 structures (and the protocol crypto).

A codec layer: it imports only :mod:`eidemu.emulator.iso7816`, :mod:`eidemu.emulator.formats`,
asn1crypto and cryptography, so that the card and the terminal side can both use it.
"""
