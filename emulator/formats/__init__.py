"""Data formats shared by the card and the tester: PKCS#15 objects, MOICA's certificate
extensions, the vpcd wire framing. No card state and no card logic."""
