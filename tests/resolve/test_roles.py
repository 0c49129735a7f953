"""Column roles of ad-hoc people files: headers, content, reading, the match frame, matching.yml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from chispa import assert_df_equality

from cdi_spark.config import MatchingConfig, parse
from cdi_spark.errors import MissingColumnError
from cdi_spark.resolve.roles import (
    ROLES,
    ColumnRole,
    DuplicateIdError,
    InputError,
    format_roles,
    guess_id_column,
    header_role,
    infer_roles,
    match_frame,
    matching_config_for,
    override_roles,
    read_people_csv,
    render_matching_yaml,
)

DATA = Path(__file__).parent / "data"


def _roles(roles: list[ColumnRole]) -> dict[str, str]:
    return {r.column: r.role for r in roles}


def _csv(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# header, (role, sure) or None
HEADERS = [
    ("First Name ", ("given_name", True)),
    ("FNAME", ("given_name", True)),
    ("firstName", ("given_name", True)),
    ("Prénom", ("given_name", True)),
    ("SURNAME", ("family_name", True)),
    ("last_nm", ("family_name", True)),
    ("Full Name", ("full_name", True)),
    ("cust_name", ("full_name", False)),
    ("D.O.B.", ("birth_date", True)),
    ("date_of_birth", ("birth_date", True)),
    ("BirthDate", ("birth_date", True)),
    ("date", ("birth_date", False)),
    ("street_number", ("street_number", True)),
    ("House No.", ("street_number", True)),
    ("address_1", ("street", True)),
    ("addr_line_2", ("street", True)),
    ("Street Address", ("street", True)),
    ("suburb", ("locality", True)),
    ("address_city", ("locality", True)),
    ("Zip/Postal", ("postcode", True)),
    ("post code", ("postcode", True)),
    ("state", ("region", True)),
    ("Tel#", ("phone", True)),
    ("home_phone", ("phone", True)),
    ("E-Mail", ("email", True)),
    ("email address", ("email", True)),
    ("soc_sec_id", ("national_id", True)),
    ("SSN", ("national_id", True)),
    ("National Insurance No", ("national_id", True)),
    ("customer_id", ("other", True)),
    ("country", ("other", True)),
    ("birth_country", ("other", True)),
    ("middle_name", ("other", True)),
    ("signup_date", ("other", True)),
    ("number", ("street_number", False)),
    ("postal_address", ("street", True)),
    ("state_of_birth", ("other", True)),
    ("date_of_death", ("other", True)),
    ("customer_number", ("other", True)),
    ("customer_first_name", ("given_name", True)),
    ("MobilePhone", ("phone", True)),
    ("HasOptedOutOfEmail", ("other", True)),
    ("col7", None),
    ("field_7", None),
    ("x", None),
]


@pytest.mark.parametrize("header,expected", HEADERS)
def test_header_words_name_a_role_or_hint_at_one(header, expected):
    assert header_role(header) == expected


def test_the_record_id_column_is_guessed_from_headers_not_national_ids():
    assert guess_id_column(["given_name", "soc_sec_id", "rec_id", "customer_id"]) == "rec_id"
    assert guess_id_column(["First Name", "Customer ID"]) == "Customer ID"
    assert guess_id_column(["name", "SSN", "phone number"]) is None


def test_odd_headers_and_meaningless_ones_get_roles_from_header_and_content(spark):
    people = spark.createDataFrame(
        [
            ("1", "Robert", "Smith", "1985-03-12", "12 Main St", "Apt 4", "02134", "bob@example.com",
             "12/31/1985", "(202) 456-1111", "123-45-6789", "M"),
            ("2", "Mary", "Jones", "1990-07-01", "4 Elm Road", None, "10115", "mary.j@example.org",
             "01/15/1990", "202-456-1414", "987-65-4321", "F"),
            ("3", "Bill", "Nguyen", "1979-11-23", "77 Ocean Drive", "Suite 2", "94105", "bill@example.net",
             "03/02/1979", "(617) 253-1000", "555-12-3456", "M"),
            ("4", "Jennifer", "Okafor", "2001-01-05", "9 Hill Lane", None, "60601", "jen.okafor@example.com",
             "11/20/2001", "312 744 5000", "321-54-9876", "F"),
        ],
        "id string, `First Name ` string, SURNAME string, `D.O.B.` string, addr_line_1 string, "
        "addr_line_2 string, `Zip/Postal` string, col7 string, x string, `Tel#` string, field_7 string, "
        "Gender string",
    )  # fmt: skip
    roles = infer_roles(people, "id")
    assert _roles(roles) == {
        "First Name ": "given_name",
        "SURNAME": "family_name",
        "D.O.B.": "birth_date",
        "addr_line_1": "street",
        "addr_line_2": "street",
        "Zip/Postal": "postcode",
        "col7": "email",
        "x": "birth_date",
        "Tel#": "phone",
        "field_7": "national_id",
        "Gender": "other",
    }
    by_column = {r.column: r for r in roles}
    assert "month first" in by_column["x"].reason  # 12/31 and 01/15 tell the order
    assert "default region US" in by_column["Tel#"].reason
    assert by_column["col7"].confidence >= 0.8 and by_column["D.O.B."].confidence >= 0.9


def test_a_header_that_lies_is_overturned_by_clear_content(spark):
    people = spark.createDataFrame(
        [
            ("a", "ann@example.com", "+44 20 7946 0958", "Ann Lee", "12/03/85"),
            ("b", "bob.ray@example.org", "+44 161 496 0734", "Bob Ray", "01/11/79"),
            ("c", "cy@example.net", None, "Cy Tan", "30/06/90"),
        ],
        "ref string, phone string, notes string, name string, dob string",
    )
    roles = {r.column: r for r in infer_roles(people, "ref")}
    assert roles["phone"].role == "email"
    assert "header 'phone'" in roles["phone"].reason and "email addresses" in roles["phone"].reason
    assert roles["notes"].role == "other"  # a strong "not for matching" header is kept
    assert roles["name"].role == "full_name"
    # Two-digit years do not parse: the header is kept, with a doubt that says why.
    assert (roles["dob"].role, roles["dob"].confidence) == ("birth_date", 0.5)
    assert "only 0% of 3 parse as dates" in roles["dob"].reason


def test_febrl_file_is_read_trimmed_and_its_roles_inferred(spark):
    people = read_people_csv(spark, [str(DATA / "febrl_style.csv")], "rec_id")
    assert people.columns[0] == "rec_id" and people.columns[-1] == "_input"
    first = people.filter("rec_id = 'rec-0-org'").first()
    assert (first["given_name"], first["postcode"], first["soc_sec_id"]) == ("thomas", "3182", "4410261")
    roles = infer_roles(people, "rec_id")
    assert _roles(roles) == {
        "given_name": "given_name",
        "surname": "family_name",
        "street_number": "street_number",
        "address_1": "street",
        "address_2": "street",
        "suburb": "locality",
        "postcode": "postcode",
        "state": "region",
        "date_of_birth": "birth_date",
        "soc_sec_id": "national_id",
    }
    assert all(r.confidence >= 0.75 for r in roles)
    frame = match_frame(people, "rec_id", roles).filter("record_key like 'rec-0-%'")
    got = {r["record_key"]: (r["street"], r["birth_date"], r["given_name_key"]) for r in frame.collect()}
    assert got == {
        "rec-0-org": ("Banksia Street Rosedale", "1975-03-14", "thomas"),  # address lines joined in order
        "rec-0-dup-0": ("Banksia Street", "1975-03-14", "thomas"),  # tom -> thomas
    }


def test_duplicate_ids_across_inputs_name_the_ids_and_files(spark, tmp_path):
    a = _csv(tmp_path, "a.csv", "rec_id,given_name\nA1,ann\nA2,bob\nA3,cy\n")
    b = _csv(tmp_path, "b.csv", "rec_id,surname\nA2,ray\nA3,tan\nB1,kim\n")
    with pytest.raises(DuplicateIdError) as error:
        read_people_csv(spark, [a, b], "rec_id")
    message = str(error.value)
    assert "2 id value(s)" in message and "'A2' x2" in message and "'A3' x2" in message
    assert "a.csv and" in message and "b.csv" in message


def test_inputs_with_different_columns_are_unioned_by_name_and_all_profiled(spark, tmp_path):
    a = _csv(tmp_path, "a.csv", "rec_id,given_name,surname\n" + "".join(f"A{i},ann,lee\n" for i in range(6)))
    b = _csv(tmp_path, "b.csv", "surname,rec_id,email\nray,B1,bob@x.com\nkim,B2,kim@y.org\n")
    people = read_people_csv(spark, [a, b], "rec_id")
    assert people.columns == ["rec_id", "given_name", "surname", "email", "_input"]
    rows = {r["rec_id"]: r for r in people.collect()}
    assert rows["B1"]["given_name"] is None and rows["B1"]["surname"] == "ray" and rows["B1"]["_input"] == b
    # The first 5 rows (all from a.csv) hold no email; the sample is topped up from b.csv.
    roles = {r.column: r for r in infer_roles(people, "rec_id", sample_rows=5)}
    assert roles["email"].role == "email" and "of 2 sampled values" in roles["email"].reason


def test_a_missing_id_column_names_the_file_and_its_columns(spark, tmp_path):
    good = _csv(tmp_path, "good.csv", "rec_id,name\n1,ann\n")
    bad = _csv(tmp_path, "bad.csv", "id,name,dob\n2,bob,1980-01-01\n")
    with pytest.raises(MissingColumnError) as error:
        read_people_csv(spark, [good, bad], "rec_id")
    assert "bad.csv" in str(error.value) and "rec_id" in str(error.value) and "id, name, dob" in str(error.value)


def test_match_frame_standardizes_each_role_with_the_project_cleaners(spark):
    people = spark.createDataFrame(
        [
            ("1", "Dr. Robert O'Brien Jr.", "31/01/1985", "12 n main st.", "Apt 4", "boston", "02134",
             "(202) 456-1111", "Bob.Smith+news@GoogleMail.com", "123-45-6789"),
            ("2", "Smith, Anne-Marie", "05/02/1990", "Hauptstr. 5", None, "berlin", "10115",
             "+49 30 901820", "INFO@acme.com", "ab 12 34 56 c"),
            (" 3 ", None, None, None, None, None, None, None, None, None),
        ],
        "id string, name string, dob string, line1 string, line2 string, town string, zip string, "
        "tel string, mail string, ssn string",
    )  # fmt: skip
    roles = [
        ColumnRole(c, role, 1.0, "test")
        for c, role in [
            ("name", "full_name"), ("dob", "birth_date"), ("line1", "street"), ("line2", "street"),
            ("town", "locality"), ("zip", "postcode"), ("tel", "phone"), ("mail", "email"), ("ssn", "national_id"),
        ]
    ]  # fmt: skip
    expected = spark.createDataFrame(
        [
            ("1", "robert", "obrien", "1985-01-31", "12", "12 North Main Street Unit 4", "Boston", "02134",
             "+12024561111", "bobsmith@gmail.com", True, False, "123456789"),
            ("2", "annemarie", "smith", "1990-02-05", "5", "Hauptstrasse 5", "Berlin", "10115",
             "+4930901820", "info@acme.com", True, True, "AB123456C"),
            ("3", None, None, None, None, None, None, None, None, None, None, None, None),
        ],
        "record_key string, given_name_key string, family_name_key string, birth_date string, "
        "street_number string, street string, city string, postcode string, phone_e164 string, "
        "email_key string, email_valid boolean, email_is_role boolean, national_id string",
    )  # fmt: skip
    # Day order (31/01 -> day first) and phone region (US) are inferred from the rows.
    actual = match_frame(people, "id", roles)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_rendered_yaml_parses_as_matching_config_with_only_keys_and_rules_that_fit(spark):
    file_roles = [
        ColumnRole(c, role, 0.9, "test")
        for c, role in [
            ("given", "given_name"), ("family", "family_name"), ("dob", "birth_date"), ("zip", "postcode"),
            ("mail", "email"), ("ssn", "national_id"), ("gender", "other"),
        ]
    ]  # fmt: skip
    text = render_matching_yaml(file_roles)
    data = yaml.safe_load(text)
    assert data == matching_config_for(file_roles)
    cfg = parse(MatchingConfig, data, file="inferred.yml")
    fields = {f.name for f in cfg.fields}
    assert fields == {"given_name_key", "family_name_key", "birth_date", "postcode", "email_key", "national_id"}
    assert all("NULL_OR_BLANK" in f.match_type for f in cfg.fields)
    assert set(cfg.columns) <= fields  # every blocking key reads existing columns only
    assert {"names", "family_birth", "national_id", "email", "postcode_family"} <= {k.name for k in cfg.blocking.keys}
    assert cfg.rules == ("email",)  # no phone column, never reference
    assert "#   dob     birth_date" in text  # the roles head the file as comments

    names_only = parse(MatchingConfig, yaml.safe_load(render_matching_yaml(file_roles[:1])), file="x")
    assert [k.name for k in names_only.blocking.keys] == ["given_name_key"] and names_only.rules == ()


def test_roles_with_nothing_to_compare_are_refused():
    with pytest.raises(InputError, match="no column has a role"):
        matching_config_for([ColumnRole("notes", "other", 0.9, "header")])


def test_roles_can_be_set_by_hand_and_are_shown_as_a_table():
    roles = [ColumnRole("col7", "other", 0.5, "no pattern"), ColumnRole("x", "birth_date", 0.9, "dates")]
    edited = override_roles(roles, {"col7": "email"})
    assert [(r.column, r.role, r.confidence) for r in edited] == [("col7", "email", 1.0), ("x", "birth_date", 0.9)]
    assert format_roles(edited).splitlines() == [
        "column  role        confidence  reason",
        "col7    email             1.00  set by hand",
        "x       birth_date        0.90  dates",
    ]
    with pytest.raises(InputError, match="no column 'col8'"):
        override_roles(roles, {"col8": "email"})
    with pytest.raises(ValueError, match="not one of"):
        ColumnRole("x", "dob", 1.0, "")
    assert len(ROLES) == 13 and ROLES[-1] == "other"
