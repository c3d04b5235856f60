"""Organisations' identifiers, industry codes and names: each check, on codes the demo generator makes
and spoils the way its legal-entity defects do (uscc_checksum, uscc_legacy, entity_name_variant)."""

import pytest
from stdnum.cn import uscc

from jichu.config import load_code_list
from jichu.domains.legal_entities import identifiers as oc
from jichu.demo.legal import make_regno15, make_uscc, org_code, spoil_name_variant, spoil_uscc_checksum

TYPES = frozenset(load_code_list("org_type").codes)
ORG = org_code(12345, modern=False)           # an organisation code from the old register (digits)
MODERN = org_code(12345, modern=True)         # MA + six characters, issued from 2016
CODE = make_uscc("91", "420106", ORG)


def _with_check(first17: str) -> str:
    """A code with a correct MOD 31 check character, so that only the rule under test fails."""
    return first17 + uscc.calc_check_digit(first17)


@pytest.mark.parametrize("value, reason", [
    (CODE, None),
    (make_uscc("12", "420100", MODERN), None),            # a prefecture's office
    (" " + CODE.lower() + " ", None),                      # spacing and case are not errors
    (spoil_uscc_checksum(CODE, 0.3), "USCC_CHECKSUM"),
    (CODE[:17], "USCC_LENGTH"),
    (CODE[:8] + "I" + CODE[9:], "USCC_FORMAT"),            # I is not in GB 32100's alphabet
    (_with_check("94420106" + ORG), "USCC_TYPE"),         # 9 is market regulation, which has no type 4
    (_with_check("91999999" + ORG), "USCC_DIVISION"),     # no such division
    (_with_check("91420106" + ORG[:8] + ("1" if ORG[8] != "1" else "2")), "USCC_ORG_CODE"),
    (ORG, "USCC_LEGACY"),
    (f"{ORG[:8]}-{ORG[8]}", "USCC_LEGACY"),
    ("420106" + ORG, "USCC_LEGACY"),                       # a 税务登记号
    (make_regno15("420106", 12345, "92"), "USCC_LEGACY"),
    ("", None),
])
def test_credit_code_checks(value, reason):
    cleaned, error, candidate = oc.clean_uscc_value(value, TYPES)
    assert error == reason
    if reason is None and value.strip():
        assert cleaned == candidate == value.strip().upper()
    elif reason == "USCC_LEGACY" or not value.strip():
        assert cleaned is None and candidate is None  # the orgcode and regno fields take a legacy code
    else:
        assert cleaned is None and candidate == oc.compact_code(value)  # kept for linkage


@pytest.mark.parametrize("value, expected", [
    (CODE, (ORG, None)),                                    # embedded in a valid credit code
    (spoil_uscc_checksum(CODE, 0.3), (None, None)),         # not from an invalid one
    (f"{ORG[:8]}-{ORG[8]}", (ORG, None)),
    ("420106" + ORG, (ORG, None)),
    (ORG[:8] + ("1" if ORG[8] != "1" else "2"), (None, "ORG_CODE_CHECKSUM")),
    (make_regno15("420106", 777, "92"), (None, None)),
])
def test_organisation_code_from_any_identifier(value, expected):
    assert oc.clean_orgcode_value(value) == expected


def test_registration_numbers():
    regno = make_regno15("420106", 777, "91")
    assert oc.clean_regno_value(regno) == (regno, None)
    wrong = regno[:-1] + str((int(regno[-1]) + 1) % 10)
    assert oc.clean_regno_value(wrong) == (None, "REGNO_CHECKSUM")
    assert oc.clean_regno_value(CODE) == (None, None)


@pytest.mark.parametrize("value, expected", [
    ("F5212", ("5212", None)), ("5212", ("5212", None)), ("o8111", ("8111", None)),
    ("C5212", (None, "INDUSTRY_INVALID")),   # 52 is in section F
    ("9900", (None, "INDUSTRY_INVALID")),    # no division 99
    ("521", (None, "INDUSTRY_INVALID")), ("", (None, None)),
])
def test_industry_classes(value, expected):
    assert oc.clean_industry_value(value) == expected


NAME = "宝亿（武汉）汽车服务有限公司"


@pytest.mark.parametrize("u", [0.1, 0.5, 0.9])
def test_name_variants_of_the_generator(u):
    variant = spoil_name_variant(NAME, u)
    assert variant != NAME
    cleaned = oc.clean_org_name(variant.replace("（", "(").replace("）", ")"))  # as clean_text leaves brackets
    if "有限责任公司" in variant:
        assert cleaned != NAME  # another legal form is a different name: a discrepancy, not a spelling
    else:
        assert cleaned == NAME
    assert oc.org_name_key(cleaned) == oc.org_name_key(NAME)


def test_name_key_drops_form_region_and_brackets_only():
    same = ["武汉市宝亿科技有限公司", "宝亿科技（武汉）有限责任公司", "湖北省武汉市宝亿科技有限公司", "宝亿科技股份有限公司"]
    assert {oc.org_name_key(n) for n in same} == {"宝亿科技"}
    assert oc.org_name_key("宝亿科技有限公司") != oc.org_name_key("宝丰科技有限公司")
    assert oc.org_name_key("市政工程有限公司") == "市政工程"  # a word, not a place
    assert oc.org_name_key("武汉") == "武汉"  # a name that is only a place stays whole


def test_division_table_knows_retired_and_prefecture_codes():
    assert oc.division_exists("420100") and oc.division_exists("420106") and oc.division_exists("420000")
    assert not oc.division_exists("420199") and not oc.division_exists("999999") and not oc.division_exists("4201")


@pytest.mark.parametrize("office, division", [
    ("武汉市江汉区市场监督管理局", "420103"),
    ("湖北省武汉市江汉区市场监督管理局", "420103"),   # the province written too
    ("武汉市市场监督管理局", "420100"),               # a prefecture's office
    ("湖北省民政厅", "420000"),
    ("阳新县民政局", "420222"),                       # a county name alone, unique in the country
    ("仙桃市 市场监督管理局", "429004"),              # directly under the province; spacing ignored
    ("恩施土家族苗族自治州利川市民政局", "422802"),
    ("国家税务总局大冶市税务局", "420281"),
    ("城关区市场监督管理局", None),                   # several counties are called 城关区
    ("江汉区", None),                                 # a place, not an office
    ("市场监督管理局", None),
])
def test_registering_office_reads_as_its_division(office, division):
    assert oc.clean_office_value(office) == (division, None if division else oc.OFFICE_UNKNOWN)
    assert oc.clean_office_value("  ") == (None, None)


def test_every_office_the_generator_names_reads_as_its_county():
    from jichu.demo.legal import county_label
    from jichu.demo.places import Places

    places = Places()
    for county in places.counties:
        for office in ("{}市场监督管理局", "{}民政局", "国家税务总局{}税务局"):
            assert oc.clean_office_value(office.format(county_label(places, county.code))) == (county.code, None)
