"""eidemu's tester side: talk to any card (emulated or real) and check its behaviour."""
