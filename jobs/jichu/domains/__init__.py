"""One package per base database, for what its conf/domains/<domain>.yaml cannot say: field types
(identifier checks, names), code-list quirks and rules. Each registers into `jichu.core.registry` when
imported; the registry imports every package here on its first lookup."""
