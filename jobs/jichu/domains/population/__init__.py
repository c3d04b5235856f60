"""Population base database (人口基础信息库): citizen ID numbers (GB 11643) and persons' names."""

from jichu.core import registry
from jichu.domains.population.identity import NAME, RIC

registry.register(RIC)
registry.register(NAME)
