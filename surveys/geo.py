"""Distances and travel estimates, in the database (for filtering and ordering) and in Python."""

import math
import re

from django.conf import settings
from django.db.models import F, FloatField, Q, Value
from django.db.models.functions import ACos, Cos, Least, Lower, Radians, Sin

from agencies.models import Agency  # the registry is the gazetteer of locate()
from readiness.db import Lookup

EARTH_RADIUS_KM = 6371.0088


def distance_km_expression(latitude: float, longitude: float, *, prefix: str = ""):
    """Great-circle distance from a point to a row's latitude/longitude, as an SQL expression."""
    lat, lon = Radians(F(f"{prefix}latitude")), Radians(F(f"{prefix}longitude"))
    lat0, lon0 = math.radians(latitude), math.radians(longitude)
    cosine = Cos(lat) * Value(math.cos(lat0)) * Cos(lon - Value(lon0)) + Sin(lat) * Value(
        math.sin(lat0)
    )
    # Least(): rounding can push the cosine of a zero distance just above 1, outside acos.
    return ACos(Least(cosine, Value(1.0)), output_field=FloatField()) * Value(EARTH_RADIUS_KM)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), for single values."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def km(distance: float) -> float:
    """The one rounding of a distance: to 0.1 km, as an invitation stores it. The preview before
    sending and the poll after it show this same figure (to the km), never one each."""
    return round(distance, 1)


def travel_minutes(distance: float) -> int:
    """Estimated minutes to drive `distance` km of straight line (see TRAVEL_* settings)."""
    return math.ceil(distance * settings.TRAVEL_ROAD_FACTOR / settings.TRAVEL_SPEED_KMH * 60)


COORDINATES = re.compile(r"^\s*(-?\d{1,2}(?:\.\d+)?)\s*[,;\s]\s*(-?\d{1,3}(?:\.\d+)?)\s*$")


def locate(place: str) -> tuple[float, float] | None:
    """A typed starting place as a point, without a geocoding service: "41.88, -87.63", or the
    name or city of an agency in the registry (e.g. "Naperville" or "Naperville, IL"). None when
    it cannot be placed: the caller falls back to the member's station and says so."""
    text = " ".join((place or "").split())
    if not text:
        return None
    if match := COORDINATES.match(text):
        lat, lon = float(match[1]), float(match[2])
        return (lat, lon) if -90 <= lat <= 90 and -180 <= lon <= 180 else None
    for name in dict.fromkeys([text.lower(), text.split(",")[0].strip().lower()]):
        if found := _PLACE.first(name, name):
            return found.latitude, found.longitude
    return None


# Lower(...) = value: the agencies' case-insensitive indexes on name and city serve it. Compiled
# once per process: a member's answer from home looks its home base up.
_PLACE = Lookup(
    Agency,
    lambda name, city: (
        Agency.objects.alias(lower_name=Lower("name"), lower_city=Lower("city"))
        .filter(Q(lower_name=name) | Q(lower_city=city))
        .order_by("-sworn_officers", "pk")
        .only("latitude", "longitude")[:1]
    ),
    kinds=(str, str),
)
