"""The card operating system: transmission, channels, dispatch to applications, the file
system and the security objects (PINs, keys, access conditions)."""
