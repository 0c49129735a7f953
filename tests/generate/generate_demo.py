"""Shared pieces of the generator tests: the demo's size, the contract, readers."""

from __future__ import annotations

import csv
from pathlib import Path

# Large enough for every assertion (people in several systems, relatives, duplicates in
# three sources, a few rows of each day 2 kind per source), small enough to be quick.
PEOPLE = 150
SEED = 7

CONTRACT = {
    "crm_contacts": ["Id", "AccountId", "Salutation", "FirstName", "LastName", "Email", "Phone",
                     "MobilePhone", "MailingStreet", "MailingCity", "MailingState",
                     "MailingPostalCode", "MailingCountry", "Birthdate", "HasOptedOutOfEmail",
                     "CreatedDate", "LastModifiedDate"],
    "crm_accounts": ["Id", "Name", "Website", "Phone", "BillingStreet", "BillingCity",
                     "BillingPostalCode", "BillingCountry", "Industry", "CreatedDate"],
    "marketing_contacts": ["vid", "properties", "createdAt", "updatedAt"],
    "support_users": ["id", "name", "email", "phone", "organization", "locale", "time_zone",
                      "created_at"],
    "support_tickets": ["id", "requester_id", "subject", "status", "priority", "channel",
                        "created_at", "updated_at"],
    "billing_customers": ["id", "object", "email", "name", "phone", "address", "currency",
                          "created", "metadata", "delinquent"],
    "billing_invoices": ["id", "customer", "amount_due", "amount_paid", "currency", "status",
                         "created"],
    "shop_customers": ["Customer ID", "First Name", "Last Name", "Email",
                       "Accepts Email Marketing", "Default Address Company",
                       "Default Address Address1", "Default Address Address2",
                       "Default Address City", "Default Address Province Code",
                       "Default Address Country Code", "Default Address Zip", "Phone",
                       "Total Spent", "Total Orders", "Tax Exempt", "Created At"],
    "shop_orders": ["Order ID", "Name", "Customer ID", "Email", "Created At", "Currency",
                    "Total", "Subtotal", "Financial Status"],
    "product_events": ["event_id", "event_type", "event_name", "user_id", "anonymous_id",
                       "device_id", "timestamp", "traits", "properties"],
}
KEYS = {"crm_contacts": "Id", "marketing_contacts": "vid", "support_users": "id",
        "billing_customers": "id", "shop_customers": "Customer ID", "product_events": "event_id"}


def read(spark, summary, source, pattern="part-0*"):
    """The main (good) files of one export, read the way its format says."""
    path = f"{summary.raw_dir}/{summary.batch}/{source}/{pattern}"
    if source in ("crm_contacts", "crm_accounts", "shop_customers", "shop_orders"):
        return spark.read.option("header", True).csv(path)
    if source in ("support_users", "support_tickets"):
        return spark.read.option("multiLine", True).json(path)
    if source == "product_events":
        return spark.read.parquet(path)
    return spark.read.json(path)


def truth(spark, summary, batch="day1"):
    """The ground truth of one batch (``part-*`` files are day 1's, ``day2-*`` day 2's)."""
    pattern = "part-*" if batch == "day1" else f"{batch}-*"
    return spark.read.parquet(f"{summary.truth_dir}/person_records/{pattern}")


def planted_csv_rows(summary, source, truth_file="malformed.csv"):
    """(kind or None, parsed row) per data line of a CSV source's malformed file."""
    folder = f"{summary.raw_dir}/{summary.batch}/{source}"
    lines = Path(f"{folder}/part-99999-malformed.csv").read_bytes().decode("latin-1").split("\n")
    with open(f"{summary.truth_dir}/{truth_file}", newline="") as fh:
        kinds = {int(r["line_or_row"]): r["kind"] for r in csv.DictReader(fh) if r["source"] == source}
    return [(kinds.get(n), next(csv.reader([line]), []))
            for n, line in enumerate(lines, start=1) if n > 1 and line]

