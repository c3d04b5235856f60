"""The generic core shared by every domain: session, I/O, landing, standardization, resolution,
statements, authority, verification and the publishing gate."""
