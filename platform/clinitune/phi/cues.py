"""Cue words shared by the name and place rules: titles, credentials, relatives, care units."""

from __future__ import annotations

TITLES = frozenset("dr doctor drs mr mrs ms miss mister mssr prof professor sr sister".split()) - {"sister", "sr"}
CREDENTIALS = frozenset(
    "rn md np pa rrt lpn cna crnp aprn msw lcsw licsw pharmd phd rph pt ot slp rd ccrn bsn msn dnp fnp acnp "
    "pa-c mba mph facc facs do crt licsw lsw cns".split()
)
WEAK_CREDENTIALS = frozenset({"pa", "pt", "ot", "do", "rd", "slp", "rph"})
RELATIVES = frozenset(
    """son sons daughter daughters dtr dtrs wife husband hus spouse sister sisters sis brother brothers bro
    mother mom mother-in-law father dad father-in-law niece nieces nephew nephews aunt uncle cousin cousins
    grandson grandsons granddaughter granddaughters grandaughter grandaughters grandchild grandchildren
    grandmother grandfather grandma grandpa stepson stepdaughter step-son step-daughter friend friends
    boyfriend girlfriend fiance fiancee partner companion neighbor neighbour guardian proxy hcp poa
    sil dil in-law in-laws caregiver caretaker significant roommate""".split()
)
# Abbreviations met after "to"/"from" that are services or units, never a facility of its own.
CARE_ABBR = frozenset(
    """icu micu sicu ccu csru cvicu nicu picu tsicu pacu ed er ew eu or ir ep ct mri cath icu's us gi gu id
    snf nh ltac ltach rehab vna ems ccu's pt ot rt sw cm md rn np pa hd dialysis floor unit tele ob
    osh olh pcu vicu nsicu ctic cticu ctsicu csicu mcu imcu sdu bb va vamc mn noc av ng tng pnd pyxis omnicell
    fla calif penn mass conn al ak az ar ca co ct de fl ga hi ia il in ks ky la me md mi mn mo ms mt nc nd ne nh nj nm
    nv ny oh ok or pa ri sc sd tn tx ut va vt wa wi wv wy dc
    ac bipap cpap ps simv imv cmv prvc trach ett ngt ogt peg picc tlc iv po pr sl sq im npo prn""".split()
)
