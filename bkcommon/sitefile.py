"""The YAML site file: regions, sites (canteens), people, sensors, edge boxes and cameras.

One file describes a deployment's registry. Validation errors name the key path
(``sites[0].sensors[2].profile: ...``) so an installer can fix the file without
reading code. ``brightkitchen registry sync`` loads it into the database; the
edge box reads its own cameras from it.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bkcommon.disinfection import (
    CabinetConfig,
    CabinetType,
    CycleOverrides,
    CycleSpec,
    MealSchedule,
    cycle_spec,
)
from bkcommon.errors import ConfigError
from bkcommon.profiles import Profile, RuleParams, params_for
from bkcommon.settings import format_validation_error

ID = r"^[A-Za-z0-9_.\-]{1,64}$"


class Strict(BaseModel):
    """Base of site-file models: unknown keys are errors (typos must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


class Role(StrEnum):
    """Responsibilities a person can hold for a site (包保)."""

    OFFICER = "officer"  # 食品安全员
    DIRECTOR = "director"  # 食品安全总监
    REGULATOR = "regulator"  # 包保 regulator
    INSURER = "insurer"


class ChannelKind(StrEnum):
    """Ways a person can be alerted."""

    WEBHOOK = "webhook"
    EMAIL = "email"
    WECOM = "wecom"
    DINGTALK = "dingtalk"
    SMS = "sms"


class Channel(Strict):
    """One way to reach a person: a kind and an address (URL, e-mail address, phone)."""

    kind: ChannelKind
    address: str = Field(min_length=3, max_length=500)
    secret: str | None = Field(default=None, description="Signing secret (DingTalk) if any")


class Person(Strict):
    """A named person with their alert channels."""

    id: str = Field(pattern=ID)
    name: str = Field(min_length=1, max_length=100)
    channels: list[Channel] = Field(default_factory=list)


class Region(Strict):
    """An administrative region; ``parent`` makes districts part of a prefecture."""

    id: str = Field(pattern=ID)
    name: str
    parent: str | None = None
    disinfection: dict[CabinetType, CycleOverrides] = Field(
        default_factory=dict, description="Valid-cycle thresholds per cabinet type (餐具消毒)"
    )


class Sensor(Strict):
    """A temperature sensor on a piece of equipment; ``rules`` overrides the profile defaults."""

    id: str = Field(pattern=ID)
    name: str = ""
    profile: Profile
    zigbee_name: str | None = Field(
        default=None, max_length=100, description="Zigbee2MQTT friendly name"
    )
    rules: dict[str, Any] = Field(default_factory=dict)
    cabinet: CabinetConfig | None = Field(
        default=None, description="Disinfection cabinet type and thresholds (profile disinfection)"
    )

    def params(self) -> RuleParams:
        """Effective rule parameters: profile defaults plus this sensor's overrides."""
        return params_for(self.profile, self.rules)

    @model_validator(mode="after")
    def _check_rules(self) -> Sensor:
        try:
            self.params()
        except ValidationError as exc:
            raise ValueError("rules: " + format_validation_error(exc).replace("\n", "; ")) from exc
        if self.cabinet is not None and self.profile is not Profile.DISINFECTION:
            raise ValueError("cabinet: only a sensor with profile 'disinfection' has a cabinet")
        return self


class Zone(Strict):
    """A polygon on a camera image (pixel coordinates of the camera's native frame)."""

    id: str = Field(pattern=ID)
    kind: str = Field(
        description="raw_area, cooked_area, prep_room (专间), dish_up, board_station",
        pattern="^(raw_area|cooked_area|prep_room|dish_up|board_station)$",
    )
    polygon: list[tuple[float, float]] = Field(min_length=3)
    mask_required: bool | None = Field(
        default=None, description="Default: true for prep_room and dish_up"
    )
    board_type: str | None = Field(default=None, description="Board type a station must hold")


class SubStream(Strict):
    """A camera's analysis stream (an NVR "sub-stream": smaller, fewer fps) beside its main one.

    The box decodes only this stream continuously; the camera's ``url`` (the main stream)
    is opened for one frame per event, for the evidence photo.
    """

    url: str = Field(description="rtsp:// (e.g. Hikvision .../Channels/102), or a video file path")
    main_size: tuple[int, int] = Field(
        description="Width, height of the main stream: the pixels the camera's zones are drawn in"
    )
    grab_timeout_s: float = Field(
        default=3.0,
        gt=0,
        le=30,
        description="Longest wait for the main stream's evidence frame; then the sub-stream "
        "frame is sent with a note",
    )

    @model_validator(mode="after")
    def _sizes(self) -> SubStream:
        w, h = self.main_size
        if not (16 <= w <= 16384 and 16 <= h <= 16384):
            raise ValueError(f"main_size: {w}x{h} is not a video size (16..16384 each)")
        return self


class Camera(Strict):
    """A camera attached to an edge box."""

    id: str = Field(pattern=ID)
    name: str = ""
    url: str = Field(description="rtsp://, http://, a video file path, or a device index")
    analyse_fps: float = Field(default=5.0, gt=0, le=30)
    substream: SubStream | None = Field(
        default=None, description="Analyse this smaller stream; the main stream gives evidence"
    )
    zones: list[Zone] = Field(default_factory=list)
    rules: dict[str, Any] = Field(
        default_factory=dict, description="Per-rule settings for this camera"
    )

    @model_validator(mode="after")
    def _zones_in_main_stream(self) -> Camera:
        if not self.url.strip():
            raise ValueError(f"url: camera {self.id!r} has no URL")
        seen_zones: set[str] = set()
        for i, z in enumerate(self.zones):
            if z.id in seen_zones:
                raise ValueError(f"zones.{i}.id: duplicate zone id {z.id!r} in camera {self.id!r}")
            seen_zones.add(z.id)
        if self.substream is None:
            return self
        if self.substream.url.strip() == self.url.strip():
            raise ValueError(
                f"substream.url: camera {self.id!r}: the sub-stream is the main stream (url); "
                "give the camera's smaller stream (e.g. .../Channels/102) or drop substream"
            )
        w, h = self.substream.main_size
        for i, z in enumerate(self.zones):
            for j, (x, y) in enumerate(z.polygon):
                if not (0 <= x <= w and 0 <= y <= h):
                    raise ValueError(
                        f"zones.{i}.polygon.{j}: point ({x:g}, {y:g}) lies outside the main "
                        f"stream's {w}x{h} (substream.main_size); zones are drawn in main-stream "
                        "pixels"
                    )
        return self


class EdgeBox(Strict):
    """An edge box in a kitchen and its cameras."""

    id: str = Field(pattern=ID)
    cameras: list[Camera] = Field(default_factory=list)


class Site(Strict):
    """A canteen (食品经营主体) with its people, sensors and edge boxes."""

    id: str = Field(pattern=ID)
    name: str = Field(min_length=1, max_length=200)
    region: str
    address: str = ""
    people: dict[Role, list[str]] = Field(default_factory=dict, description="role → person ids")
    sensors: list[Sensor] = Field(default_factory=list)
    edge_boxes: list[EdgeBox] = Field(default_factory=list)
    meals: MealSchedule | None = Field(
        default=None, description="Meal services after which tableware is disinfected"
    )


class SiteFile(Strict):
    """The whole registry of one deployment."""

    version: int = Field(default=1, ge=1, le=1)
    regions: list[Region] = Field(min_length=1)
    people: list[Person] = Field(default_factory=list)
    sites: list[Site] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> SiteFile:
        region_ids = {r.id for r in self.regions}
        person_ids = {p.id for p in self.people}
        for i, r in enumerate(self.regions):
            if r.parent is not None and r.parent not in region_ids:
                raise ValueError(f"regions.{i}.parent: unknown region {r.parent!r}")
        seen_sensors: set[str] = set()
        seen_sites: set[str] = set()
        seen_boxes: set[str] = set()
        seen_cameras: dict[str, str] = {}
        seen_zigbee: set[str] = set()
        for i, s in enumerate(self.sites):
            if s.id in seen_sites:
                raise ValueError(f"sites.{i}.id: duplicate site id {s.id!r}")
            seen_sites.add(s.id)
            if s.region not in region_ids:
                raise ValueError(f"sites.{i}.region: unknown region {s.region!r}")
            for role, ids in s.people.items():
                for pid in ids:
                    if pid not in person_ids:
                        raise ValueError(f"sites.{i}.people.{role.value}: unknown person {pid!r}")
            for j, b in enumerate(s.edge_boxes):
                if b.id in seen_boxes:
                    raise ValueError(f"sites.{i}.edge_boxes.{j}.id: duplicate edge box id {b.id!r}")
                seen_boxes.add(b.id)
                for k, c in enumerate(b.cameras):
                    if c.id in seen_cameras:
                        raise ValueError(
                            f"sites.{i}.edge_boxes.{j}.cameras.{k}.id: duplicate camera id "
                            f"{c.id!r} (also in edge box {seen_cameras[c.id]!r}); camera ids "
                            "are unique in the whole file"
                        )
                    seen_cameras[c.id] = b.id
            for j, sn in enumerate(s.sensors):
                if sn.id in seen_sensors:
                    raise ValueError(f"sites.{i}.sensors.{j}.id: duplicate sensor id {sn.id!r}")
                seen_sensors.add(sn.id)
                if sn.zigbee_name:
                    if sn.zigbee_name in seen_zigbee:
                        raise ValueError(
                            f"sites.{i}.sensors.{j}.zigbee_name: duplicate {sn.zigbee_name!r}"
                        )
                    seen_zigbee.add(sn.zigbee_name)
                plug = sn.cabinet.plug if sn.cabinet is not None else None
                if plug is not None and plug.zigbee_name:
                    if plug.zigbee_name in seen_zigbee:
                        raise ValueError(
                            f"sites.{i}.sensors.{j}.cabinet.plug.zigbee_name: duplicate "
                            f"{plug.zigbee_name!r} (a Zigbee2MQTT name maps to one device)"
                        )
                    seen_zigbee.add(plug.zigbee_name)
                if sn.profile is Profile.DISINFECTION:
                    try:
                        self.cabinet_spec(s, sn)
                    except ValidationError as exc:
                        msg = format_validation_error(exc).replace("\n", "; ")
                        raise ValueError(f"sites.{i}.sensors.{j}.cabinet: {msg}") from exc
        return self

    def cabinet_spec(self, site: Site, sensor: Sensor) -> tuple[CabinetType, CycleSpec]:
        """A disinfection sensor's type and valid cycle: type defaults, region chain, cabinet."""
        cab = sensor.cabinet or CabinetConfig()
        regions = {r.id: r for r in self.regions}
        chain: list[Region] = []
        rid: str | None = site.region
        while rid is not None and rid in regions and regions[rid] not in chain:
            chain.append(regions[rid])
            rid = regions[rid].parent
        layers = [r.disinfection.get(cab.type) for r in reversed(chain)]
        return cab.type, cycle_spec(cab.type, *layers, cab)

    def sensor_index(self) -> dict[str, tuple[Site, Sensor]]:
        """Map sensor id → (site, sensor)."""
        return {sn.id: (s, sn) for s in self.sites for sn in s.sensors}

    def person(self, person_id: str) -> Person:
        """Return a person by id (KeyError when absent)."""
        for p in self.people:
            if p.id == person_id:
                return p
        raise KeyError(person_id)


def parse_site_file(data: object, source: str = "<site file>") -> SiteFile:
    """Validate parsed YAML; raise ConfigError listing each problem with its key path."""
    try:
        return SiteFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source} is invalid:\n{format_validation_error(exc)}") from exc


def load_site_file(path: str | Path) -> SiteFile:
    """Read and validate a YAML site file; raise ConfigError with the path and key path."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read site file {p}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}") from exc
    return parse_site_file(data, str(p))
