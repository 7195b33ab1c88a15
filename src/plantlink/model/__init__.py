"""The plant model: ISA-95 hierarchy in YAML, validated up front."""

from plantlink.model.loader import load_plant, parse_plant
from plantlink.model.plant import DeviceInfo, Plant, TagInfo, site_plant

__all__ = ["DeviceInfo", "Plant", "TagInfo", "load_plant", "parse_plant", "site_plant"]
