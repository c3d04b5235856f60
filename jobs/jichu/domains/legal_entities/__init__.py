"""Legal-entity base database (法人单位基础信息库): credit codes (GB 32100), the legacy identifiers other
agencies still hold (GB 11714 organisation codes, registration numbers), industry classes (GB/T 4754),
registering offices and organisations' names."""

from jichu.core import registry
from jichu.domains.legal_entities.types import TYPES

for field_type in TYPES:
    registry.register(field_type)
