"""UNHCR's regions, and the region of each country of asylum (where a case's family lives now)."""

from __future__ import annotations

from rdn.core.i18n import N_

REGIONS: dict[str, str] = {
    "east_horn_great_lakes": N_("East and Horn of Africa, and the Great Lakes"),
    "southern_africa": N_("Southern Africa"),
    "west_central_africa": N_("West and Central Africa"),
    "americas": N_("The Americas"),
    "asia_pacific": N_("Asia and the Pacific"),
    "europe": N_("Europe"),
    "mena": N_("Middle East and North Africa"),
}
OTHER = "other"
OTHER_NAME = N_("Other or not recorded")

_MEMBERS: dict[str, str] = {
    "east_horn_great_lakes": "BI DJ ER ET KE RW SO SS SD TZ UG",
    "southern_africa": "AO BW CD KM LS MG MW MU MZ NA SC SZ ZA ZM ZW",
    "west_central_africa": "BJ BF CM CV CF TD CG CI GA GM GH GN GW GQ LR ML MR NE NG ST SN SL TG",
    "americas": "AG AR BS BB BZ BO BR CA CL CO CR CU DM DO EC SV GD GT GY HT HN JM MX NI PA PY PE KN LC VC SR TT "
                "US UY VE AW CW PR",
    "asia_pacific": "AF AU IR BD BT BN KH CN FJ IN ID JP KZ KI KG LA MY MV MH FM MN MM NR NP NZ KP PK PW PG PH WS SG "
                    "SB KR LK TJ TH TL TO TM TV UZ VU VN HK MO TW",
    "europe": "AL AD AM AT AZ BY BE BA BG HR CY CZ DK EE FI FR GE DE GR HU IS IE IT XK LV LI LT LU MT MD MC ME NL "
              "MK NO PL PT RO RU SM RS SK SI ES SE CH TR UA GB",
    "mena": "DZ BH EG IQ IL JO KW LB LY MA OM PS QA SA SY TN AE YE",
}
COUNTRY_REGION: dict[str, str] = {code: region for region, codes in _MEMBERS.items() for code in codes.split()}


def region_of(country: str | None) -> str:
    return COUNTRY_REGION.get((country or "").upper(), OTHER)


def region_name(key: str) -> str:
    return REGIONS.get(key, OTHER_NAME)
