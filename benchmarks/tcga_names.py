"""TCGA-style column names for a benchmark matrix: the same values, the names TCGA-LIHC uses.

TCGA's RSEM matrices carry older symbols (``A2BP1`` for ``RBFOX1``), several names that
harmonise to one approved gene (``AKAP2``, ``PALM2``, ``PALM2-AKAP2``) and names that
resolve to nothing. :func:`tcga_style` renames a list of approved symbols the way TCGA-LIHC
(``../shared/data/tcga_lihc_tpm10``) names them:

* every gene that TCGA lists under an older symbol gets that symbol;
* for every TCGA group of names that harmonise to one gene present here, the extra names
  are put on "donor" columns (genes in no benchmark set, taken from the end of the list),
  so those columns merge into the gene's column as they would in TCGA;
* TCGA's unresolvable names go on further donor columns (dropped at harmonisation).

So scoring the renamed matrix takes sigscore's duplicate-merge and renaming paths, while
the set genes and their values stay the same as under the approved symbols.
"""

from __future__ import annotations

import collections
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TCGA = REPO.parent / "shared" / "data" / "tcga_lihc_tpm10" / "LIHC_TPM_10samples.tsv.gz"


def available() -> str | None:
    """None if the TCGA-LIHC names can be read here, else why not."""
    return None if TCGA.exists() else f"{TCGA} not found (../shared/data is absent)"


def tcga_style(genes: list[str], protected: set[str]) -> tuple[list[str], dict[str, int]]:
    """TCGA-LIHC's names for ``genes`` (approved symbols); ``protected`` genes (the sets')
    are never used as donors. Returns the new names and counts of what was changed."""
    import gzip

    from sigscore.genes.harmonise import harmonise

    with gzip.open(TCGA, "rt") as fh:
        next(fh)
        raw = [line.split("\t", 1)[0].split("|", 1)[0] for line in fh]
    raw = [n for n in dict.fromkeys(raw) if n != "?"]
    h = harmonise(raw)
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for name, symbol in zip(h.queries, h.symbols, strict=True):
        if symbol is not None:
            groups[symbol].append(name)
    unresolved = [q for q, s in zip(h.queries, h.symbols, strict=True) if s is None]
    index = {g: j for j, g in enumerate(genes)}
    names = list(genes)
    taken = set()  # columns renamed (or kept as a merge target) already
    extra: list[str] = []  # TCGA names that must go on donor columns
    counts = {"renamed": 0, "merged": 0, "unresolved": 0}
    for symbol, members in groups.items():
        j = index.get(symbol)
        if j is None:
            continue
        first = symbol if symbol in members else members[0]
        if first != symbol:
            names[j] = first
            counts["renamed"] += 1
        taken.add(j)
        extra += [m for m in members if m != first]
    donors = (
        j for j in range(len(genes) - 1, -1, -1) if j not in taken and genes[j] not in protected
    )
    for name in extra:
        names[next(donors)] = name
        counts["merged"] += 1
    for name in unresolved:
        j = next(donors, None)
        if j is None:
            break
        names[j] = name
        counts["unresolved"] += 1
    return names, counts
