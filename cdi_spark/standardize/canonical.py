"""The canonical customer record: the columns of ``silver.customer_records``.

Every person-bearing source maps its fields onto :data:`MAPPABLE_FIELDS` in its YAML; the
standardize stage derives the cleaned and matching-key columns from them. The README's
"Canonical schema" table is this module in prose.
"""

from __future__ import annotations

from pyspark.sql.types import (
    BooleanType,
    DateType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

# Fields a source mapping may fill (raw text, before cleaning).
MAPPABLE_FIELDS = (
    "full_name",  # one field holding the whole name (support desk), split by the stage
    "given_name",
    "family_name",
    "email",
    "phone",
    "phone_alt",  # a second number (mobile); cleaned like phone
    "birth_date",
    "street",  # address lines, joined
    "city",
    "region",
    "postcode",
    "country",  # any spelling; cleaned to ISO 3166-1 alpha-2
    "company",
    "email_opt_out",  # true when the person opted out of email in that system
    "created_at",
    "updated_at",
)

TIME_FIELDS = ("birth_date", "created_at", "updated_at")

# Lineage columns every canonical row carries.
LINEAGE = StructType(
    [
        StructField("record_key", StringType(), False),  # "<source>:<source_record_id>", unique
        StructField("source", StringType(), False),  # bronze table name
        StructField("system", StringType(), False),  # crm, marketing, ...
        StructField("source_record_id", StringType(), False),
        StructField("batch_id", StringType(), False),
        StructField("bronze_version", LongType(), False),  # Delta version of bronze that was read
        StructField("run_id", StringType(), False),
    ]
)

CLEAN = StructType(
    [
        StructField("full_name", StringType()),  # display form: "Robert O'Brien"
        StructField("given_name", StringType()),  # display form
        StructField("family_name", StringType()),
        StructField("given_name_key", StringType()),  # accent-free lower case, nickname-canonical
        StructField("family_name_key", StringType()),
        StructField("email", StringType()),  # lower case, trimmed
        StructField("email_key", StringType()),  # plus-tag and provider-dot free
        StructField("email_valid", BooleanType()),
        StructField("email_is_role", BooleanType()),  # info@, sales@ ...: never a match key
        StructField("phone_raw", StringType()),
        StructField("phone_e164", StringType()),
        StructField("phone_valid", BooleanType()),
        StructField("phone_alt_e164", StringType()),
        StructField("birth_date", DateType()),
        StructField("street", StringType()),  # abbreviations canonical: "12 Main Street"
        StructField("street_number", StringType()),
        StructField("city", StringType()),
        StructField("region", StringType()),
        StructField("postcode", StringType()),  # normalised per country
        StructField("country", StringType()),  # ISO 3166-1 alpha-2
        StructField("company", StringType()),
        StructField("email_opt_out", BooleanType()),
        StructField("created_at", TimestampType()),
        StructField("updated_at", TimestampType()),
        StructField("ref_record_key", StringType()),  # record_key of a record this one names
    ]
)

SCHEMA = StructType(LINEAGE.fields + CLEAN.fields)
COLUMNS = tuple(f.name for f in SCHEMA.fields)
