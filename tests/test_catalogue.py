"""Filtering documents by their bibliographic records, from a corpus folder or from a store (no model)."""

from __future__ import annotations

from rag.ingest import metadata
from rag.ingest.catalogue import Catalogue, StoredCatalogue


def test_catalogue_matching_filters_a_folder_by_year_and_tags(tmp_path):
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text("间充质干细胞。", encoding="utf-8")
    metadata.write(tmp_path, "a.txt", {"year": 2019, "tags": ["stroke"]})
    metadata.write(tmp_path, "b.txt", {"year": 2024, "tags": ["stroke", "trial"]})
    catalogue = Catalogue(tmp_path)
    every = ["a.txt", "b.txt", "c.txt"]
    assert catalogue.matching(every) == every
    assert catalogue.matching(every, year_from=2020) == ["b.txt"]  # c.txt has no year: out of any range
    assert catalogue.matching(every, year_to=2020, tags=["stroke"]) == ["a.txt"]
    assert catalogue.matching(every, tags=["stroke", "trial"]) == ["b.txt"]


def test_stored_catalogue_matching_reads_the_store_records():
    records = {"a.txt": {"file": {"title": "A"}, "writer": {"year": 2019}},
               "b.txt": {"file": {"year": 2024}, "writer": {"tags": ["trial"]}}}
    catalogue = StoredCatalogue(lambda: records)
    assert catalogue.matching(["a.txt", "b.txt"], year_from=2020) == ["b.txt"]
    assert catalogue.matching(["a.txt", "b.txt"], tags=["trial"]) == ["b.txt"]
    assert catalogue.get("a.txt").title == "A"
